import t from 'tap';
import { createServer } from 'node:http';
import { UpstreamClient } from '../src/upstreams/client.js';
import { freePort } from './helpers/redis.js';

const timeouts = { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000 };

t.test('connection refused before anything was sent is retried', async (t) => {
  const port = await freePort();
  const server = createServer((_req, res) => res.end('{"ok":true}'));
  t.teardown(() => server.close());
  const client = new UpstreamClient({ url: `http://127.0.0.1:${port}`, ...timeouts });
  t.teardown(() => client.close());
  setTimeout(() => server.listen(port, '127.0.0.1'), 80);
  const { status, data } = await client.json<{ ok: boolean }>('POST', '/v1/chat/completions', { model: 'x' });
  t.equal(status, 200);
  t.same(data, { ok: true });
});

t.test('a POST whose connection breaks after it was sent is not retried', async (t) => {
  let received = 0;
  const server = createServer((req) => {
    received++;
    req.socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const client = new UpstreamClient({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, ...timeouts });
  t.teardown(() => client.close());
  await t.rejects(client.request({ method: 'POST', path: '/v1/completions', body: { prompt: 'x' } }), { name: 'GatewayError', statusCode: 502 });
  t.equal(received, 1, 'sent once');
  received = 0;
  await t.rejects(client.request({ method: 'GET', path: '/v1/models' }));
  t.equal(received, 3, 'an idempotent GET is retried');
});

t.test('a base path in the upstream URL is kept', async (t) => {
  let path = '';
  const server = createServer((req, res) => {
    path = req.url!;
    res.end('[]');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const client = new UpstreamClient({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}/proxy/`, ...timeouts });
  t.teardown(() => client.close());
  await client.json('GET', '/lora-adapters');
  t.equal(path, '/proxy/lora-adapters');
});
