// The hello-world app that scripts/bench.mjs serves through tsgunicorn on every runtime.
export default { fetch: () => new Response('Hello, World!') };
