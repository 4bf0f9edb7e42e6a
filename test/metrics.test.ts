// Integration tests of the metrics: /metrics after known traffic, counters across a worker's death, /readyz during
// a graceful stop, and the statsd lines, on every target.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { defaultSettings } from '../src/config.ts';
import { Logger } from '../src/glogging.ts';
import { ServerMetrics } from '../src/metrics.ts';
import { RequestStats } from '../src/request-stats.ts';
import { StatsdReporter } from '../src/statsd.ts';
import { describeEachTarget, fetchText, fixture, runCli, Server, sleep, waitFor, withRunningServer } from './helpers.ts';

const LOCAL = ['-b', '127.0.0.1:0', '--metrics-bind', '127.0.0.1:0'];

/** The metrics server's base URL, from the master's log. */
function metricsUrl(server: Server): string {
  return server.matches(/Metrics at: (http:\/\/\S+)/)[0][1];
}

/** A scrape parsed: each sample by its name and labels as written (`name{a="1"}`), after checking the format. */
async function scrape(server: Server): Promise<Map<string, number>> {
  const reply = await fetchText(`${metricsUrl(server)}/metrics`);
  assert.equal(reply.status, 200);
  assert.equal(reply.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  const samples = new Map<string, number>();
  const typed = new Map<string, string>();
  for (const line of reply.body.split('\n').filter(Boolean)) {
    const type = /^# TYPE (tsgunicorn_\w+) (counter|gauge|histogram)$/.exec(line);
    if (type) typed.set(type[1], type[2]);
    if (line.startsWith('#')) continue;
    const match = /^(tsgunicorn_\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    assert.ok(match, `a sample line: ${line}`);
    const family = match[1].replace(/_(bucket|sum|count)$/, (suffix) => (typed.get(match[1]) ? suffix : ''));
    assert.ok(typed.has(family), `${match[1]} has a TYPE line before it`);
    if (typed.get(family) === 'counter') assert.match(family, /_total$/);
    samples.set(match[1] + (match[2] ?? ''), Number(match[3]));
  }
  return samples;
}

/** Sends the known traffic: 7 GETs answered 200, 3 POSTs answered 404, 2 HEADs answered 200. */
async function knownTraffic(url: string): Promise<void> {
  for (let i = 0; i < 7; i++) assert.equal((await fetchText(`${url}/`)).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await fetchText(`${url}/missing`, { method: 'POST', body: 'x' })).status, 404);
  for (let i = 0; i < 2; i++) assert.equal((await fetchText(`${url}/`, { method: 'HEAD' })).status, 200);
}

const DURATION = 'tsgunicorn_request_duration_seconds';

describeEachTarget('metrics', (target) => {
  describe(`${target.name}: metrics`, () => {
    let statsd: dgram.Socket;
    const received: string[] = [];

    before(async () => {
      statsd = dgram.createSocket('udp4');
      statsd.on('message', (packet) => received.push(...packet.toString().split('\n')));
      await new Promise<void>((resolve) => statsd.bind(0, '127.0.0.1', resolve));
    });
    after(() => statsd.close());

    it('counts known traffic exactly, keeps its counters across a worker\'s death, and sends statsd lines', async () => {
      const { port } = statsd.address() as AddressInfo;
      const args = [...LOCAL, '--statsd-host', `127.0.0.1:${port}`, '--statsd-prefix', 'app', '--dogstatsd-tags', 'env:test,team:web'];
      await withRunningServer(Server.start(target, [...args, fixture('app.ts')]), async (server) => {
        await knownTraffic(server.url);
        const counted = await poll(server, 'the 12 requests', (s) => s.get(`${DURATION}_count`) === 12);
        assert.equal(counted.get('tsgunicorn_requests_total{method="GET",code="200",class="2xx"}'), 7);
        assert.equal(counted.get('tsgunicorn_requests_total{method="POST",code="404",class="4xx"}'), 3);
        assert.equal(counted.get('tsgunicorn_requests_total{method="HEAD",code="200",class="2xx"}'), 2);
        const buckets = [...counted].filter(([name]) => name.startsWith(`${DURATION}_bucket`)).map(([, value]) => value);
        assert.equal(buckets.length, 12);
        for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i] >= buckets[i - 1], `cumulative buckets: ${buckets}`);
        assert.equal(counted.get(`${DURATION}_bucket{le="+Inf"}`), 12);
        assert.ok(counted.get(`${DURATION}_sum`)! > 0);
        assert.equal(counted.get('tsgunicorn_workers{state="ready"}'), 1);
        assert.ok(counted.get('tsgunicorn_master_uptime_seconds')! > 0);
        assert.ok([...counted.keys()].some((name) => name.startsWith('tsgunicorn_worker_resident_memory_bytes{slot="0"')));

        // statsd: Gunicorn's names with the prefix and the tags, summing to the traffic
        const tags = '|#env:test,team:web';
        const sum = (name: string) => received.filter((line) => line.startsWith(`${name}:`) && line.endsWith(`|c${tags}`))
          .reduce((total, line) => total + Number(line.slice(name.length + 1).split('|')[0]), 0);
        await waitFor('statsd lines for the 12 requests', () => (sum('app.gunicorn.requests') === 12 ? true : undefined));
        assert.equal(sum('app.gunicorn.request.status.200'), 9);
        assert.equal(sum('app.gunicorn.request.status.404'), 3);
        const timed = received.filter((line) => line.startsWith('app.gunicorn.request.duration:'));
        for (const line of timed) assert.match(line, /^app\.gunicorn\.request\.duration:[\d.]+\|ms(\|@[\d.e-]+)?\|#env:test,team:web$/);
        const timedCount = timed.reduce((total, line) => total + Math.round(1 / Number(/\|@([\d.e-]+)/.exec(line)?.[1] ?? 1)), 0);
        assert.equal(timedCount, 12);
        assert.ok(received.includes(`app.gunicorn.workers:1|g${tags}`), received.join('\n'));

        // a worker killed: the counters stay, the restart is counted, the new worker's requests add up
        const [pid] = server.liveWorkers();
        process.kill(pid, 'SIGKILL');
        await server.waitForLine(new RegExp(`Worker \\(pid:${pid}\\) was sent SIGKILL`));
        await server.waitForReady(1);
        const afterDeath = await poll(server, 'the crash counted', (s) => s.get('tsgunicorn_worker_restarts_total{reason="crash"}') === 1);
        assert.equal(afterDeath.get(`${DURATION}_count`), 12);
        assert.equal(afterDeath.get('tsgunicorn_requests_total{method="GET",code="200",class="2xx"}'), 7);
        assert.ok(afterDeath.get('tsgunicorn_log_messages_total{level="error"}')! >= 1);
        assert.equal((await fetchText(`${server.url}/`)).status, 200);
        const more = await poll(server, '13 requests', (s) => s.get(`${DURATION}_count`) === 13);
        assert.equal(more.get('tsgunicorn_requests_total{method="GET",code="200",class="2xx"}'), 8);
        await waitFor('statsd error log line', () => (sum('app.gunicorn.log.error') >= 1 ? true : undefined));

        // a HUP replaces the worker: counted as a reload, the sums stay
        server.signal('SIGHUP');
        const reloaded = await poll(server, 'the reload counted', (s) => s.get('tsgunicorn_worker_restarts_total{reason="reload"}') === 1);
        assert.equal(reloaded.get(`${DURATION}_count`), 13);
      });
    });

    it('hands over the last counts of a worker that retires at --max-requests', async () => {
      await withRunningServer(Server.start(target, [...LOCAL, '--max-requests', '4', fixture('app.ts')]), async (server) => {
        for (let i = 0; i < 10; i++) assert.equal((await fetchText(`${server.url}/`)).status, 200);
        const counted = await poll(server, 'the 10 requests', (s) => s.get(`${DURATION}_count`) === 10);
        assert.equal(counted.get('tsgunicorn_requests_total{method="GET",code="200",class="2xx"}'), 10);
        assert.ok(counted.get('tsgunicorn_worker_restarts_total{reason="max-requests"}')! >= 1);
      });
    });

    it('answers /readyz 503 during a graceful stop while /healthz still answers 200', async () => {
      await withRunningServer(Server.start(target, [...LOCAL, '--graceful-timeout', '20', fixture('app.ts')]), async (server) => {
        const base = metricsUrl(server);
        assert.equal((await fetchText(`${base}/readyz`)).status, 200);
        assert.equal((await fetchText(`${base}/healthz`)).status, 200);
        assert.equal((await fetchText(`${base}/nothing`)).status, 404);
        const slow = fetchText(`${server.url}/slow?ms=4000`, { timeoutMs: 20000 });
        await poll(server, 'the slow request in flight', (s) => s.get('tsgunicorn_requests_in_flight') === 1);
        server.signal('SIGTERM');
        assert.equal(await statusUntil(`${base}/readyz`, 503), 503);
        const health = await fetchText(`${base}/healthz`);
        assert.equal(health.status, 200);
        assert.equal((await slow).status, 200);
        assert.equal((await server.waitForExit(20000)).code, 0);
      });
    });

    it('lets the new master of a binary upgrade take the metrics address once the old master exits', async () => {
      const port = await freePort();
      const args = ['-b', '127.0.0.1:0', '--metrics-bind', `127.0.0.1:${port}`, fixture('app.ts')];
      await withRunningServer(Server.start(target, args), async (server) => {
        const oldMaster = server.pid;
        server.signal('SIGUSR2');
        const newMaster = Number((await server.waitForLine(/started a new master \(pid:(\d+)\)/))[1]);
        await server.waitForLine(new RegExp(`\\[${newMaster}\\] \\[INFO\\] Metrics: 127\\.0\\.0\\.1:${port} is taken`), 20000);
        process.kill(oldMaster, 'SIGTERM');
        await server.waitForLine(new RegExp(`\\[${newMaster}\\] \\[INFO\\] Metrics at: http://127\\.0\\.0\\.1:${port} `), 20000);
        assert.equal(await statusUntil(`http://127.0.0.1:${port}/readyz`, 200), 200);
        assert.equal(server.matches(/Metrics at: /).length, 2, 'one line per master');
      });
    });
  });
});

/** GETs `url` every 50 ms until it answers `wanted`, at most 200 times; returns the last status. */
async function statusUntil(url: string, wanted: number): Promise<number> {
  let status = 0;
  for (let i = 0; i < 200 && status !== wanted; i++) {
    status = (await fetchText(url)).status;
    if (status !== wanted) await sleep(50);
  }
  return status;
}

/** A loopback port nobody listens on (bound, then let go). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Scrapes every 200 ms until `done` holds (heartbeats bring counts about once a second), for at most 15 s. */
async function poll(server: Server, what: string, done: (samples: Map<string, number>) => boolean): Promise<Map<string, number>> {
  let last = new Map<string, number>();
  for (let i = 0; i < 75; i++) {
    last = await scrape(server);
    if (done(last)) return last;
    await sleep(200);
  }
  throw new Error(`no scrape showed ${what} within 15 s; the last one: ${JSON.stringify([...last])}`);
}

describe('statsd lines', () => {
  it('carry one prefix dot, the tags, and per bucket the mean duration with a 1/count sample rate', async () => {
    const listener = dgram.createSocket('udp4');
    const lines: string[] = [];
    listener.on('message', (packet) => lines.push(...packet.toString().split('\n')));
    await new Promise<void>((resolve) => listener.bind(0, '127.0.0.1', resolve));
    const metrics = new ServerMetrics();
    const settings = { statsdHost: `127.0.0.1:${(listener.address() as AddressInfo).port}`, statsdPrefix: 'app..', dogstatsdTags: 'env:test' };
    const logger = new Logger({ ...defaultSettings({}), logLevel: 'critical' });
    const reporter = new StatsdReporter(settings, metrics, () => 2, () => logger);
    try {
      const stats = new RequestStats();
      for (const ms of [1, 2, 3]) stats.record('GET', 200, ms);
      stats.record('PUT', 503, 30);
      metrics.addHeartbeat({ type: 'heartbeat', requests: 4, active: 0, rss: 0, stats: stats.takeDelta() });
      reporter.flush();
      await waitFor('the datagram', () => (lines.some((line) => line.startsWith('app.gunicorn.workers')) ? true : undefined));
      assert.deepEqual(lines.sort(), [
        'app.gunicorn.request.duration:2|ms|@0.333333|#env:test',
        'app.gunicorn.request.duration:30|ms|#env:test',
        'app.gunicorn.request.status.200:3|c|#env:test',
        'app.gunicorn.request.status.503:1|c|#env:test',
        'app.gunicorn.requests:4|c|#env:test',
        'app.gunicorn.workers:2|g|#env:test',
      ]);
    } finally {
      reporter.close();
      logger.close();
      listener.close();
    }
  });
});

describe('metrics settings', () => {
  it('refuses a statsd unix socket and an fd:// metrics address', async () => {
    const statsd = await runCli('node', ['--check-config', '--statsd-host', 'unix:///run/statsd.sock', fixture('app.ts')]);
    assert.equal(statsd.code, 1);
    assert.match(statsd.stderr, /invalid value "unix:\/\/\/run\/statsd.sock" for --statsd-host/);
    const metrics = await runCli('node', ['--check-config', '--metrics-bind', 'fd://3', fixture('app.ts')]);
    assert.equal(metrics.code, 1);
    assert.match(metrics.stderr, /invalid value "fd:\/\/3" for --metrics-bind/);
  });
});
