// An example Hono app: `npm start` serves it with 2 workers on http://127.0.0.1:8000.
import { Hono } from 'hono';

const app = new Hono();

app.get('/', (c) => c.text(`Hello from tsgunicorn worker ${process.env.TSGUNICORN_WORKER_ID} (pid ${process.pid})\n`));
app.get('/json', (c) => c.json({ pid: process.pid, worker: process.env.TSGUNICORN_WORKER_ID }));
app.post('/echo', async (c) => c.body(await c.req.arrayBuffer()));

export default app;
