import t from 'tap';
import { connect } from 'node:net';
import pino from 'pino';
import { loadConfig } from '../src/config/load.js';
import { createGateway } from '../src/gateway.js';
import { buildApp } from '../src/http/app.js';
import { GatewayMetrics } from '../src/observability/metrics.js';
import { startFakeVllm } from './fakes/vllm.js';
import { listenGateway, startGateway } from './helpers/gateway.js';
import { RedisServer } from './helpers/redis.js';

/** Sends the start of a request, never the rest; resolves with what the server answered and when it closed. */
function slowClient(url: string, start: string): Promise<{ answer: string; closedAfterMs: number }> {
  const { port } = new URL(url);
  const started = performance.now();
  return new Promise((resolve) => {
    let answer = '';
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(start));
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('close', () => resolve({ answer, closedAfterMs: performance.now() - started }));
  });
}

t.test('a client that never finishes its body gets 408 in the OpenAI shape within the request timeout', async (t) => {
  const gw = await listenGateway({ requestTimeoutMs: 500 });
  t.teardown(gw.close);
  const { answer, closedAfterMs } = await slowClient(gw.url, 'POST /v1/route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"input": "hel');
  t.match(answer, /^HTTP\/1\.1 408 /);
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
  t.same(body, { error: { message: 'The request was not received in time (LORAUTER_REQUEST_TIMEOUT_MS).', type: 'invalid_request_error', param: null, code: 'request_timeout' } });
  t.ok(closedAfterMs < 2000, `closed after ${Math.round(closedAfterMs)} ms`);
  // Headers that never end are cut off too.
  const headers = await slowClient(gw.url, 'POST /v1/route HTTP/1.1\r\nHost: x\r\nX-Slow: 1');
  t.match(headers.answer, /^HTTP\/1\.1 408 /);
  t.ok(headers.closedAfterMs < 2000);
});

t.test('the request timeout bounds receiving the request only: a slow upstream answer still arrives', async (t) => {
  const vllm = await startFakeVllm({ baseModel: 'base', staticAdapters: ['sentiment'] });
  t.teardown(() => vllm.stop());
  vllm.behaviour.headersDelayMs = 1500;
  const gw = await listenGateway({ requestTimeoutMs: 500, upstream: { url: vllm.url, kind: 'vllm' } });
  t.teardown(gw.close);
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sentiment', messages: [{ role: 'user', content: 'hi' }] }),
  });
  t.equal(response.status, 200);
});

t.test('rate limit per API key (else per address): 429 with Retry-After in the OpenAI shape; probes never limited', async (t) => {
  const gw = await startGateway({ apiKeys: ['key-one-12345', 'key-two-12345'], rateLimit: { max: 3, windowMs: 60_000 } });
  t.teardown(gw.close);
  const route = (key: string) => gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'hello' }, headers: { authorization: `Bearer ${key}` } });
  for (let i = 0; i < 3; i++) t.equal((await route('key-one-12345')).statusCode, 200);
  const limited = await route('key-one-12345');
  t.equal(limited.statusCode, 429);
  t.equal(limited.json().error.code, 'rate_limit_exceeded');
  t.equal(limited.json().error.type, 'rate_limit_error');
  t.ok(Number(limited.headers['retry-after']) >= 1 && Number(limited.headers['retry-after']) <= 60, `retry-after ${limited.headers['retry-after']}`);
  t.equal((await route('key-two-12345')).statusCode, 200, 'another key has its own budget');
  for (let i = 0; i < 5; i++) t.equal((await gw.app.inject({ url: '/healthz' })).statusCode, 200);
  t.equal((await gw.app.inject({ url: '/metrics' })).statusCode, 200);
  // Without a key, the address is the client.
  const open = await startGateway({ rateLimit: { max: 1, windowMs: 60_000 } });
  t.teardown(open.close);
  t.equal((await open.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'a' }, remoteAddress: '10.0.0.1' })).statusCode, 200);
  t.equal((await open.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'a' }, remoteAddress: '10.0.0.1' })).statusCode, 429);
  t.equal((await open.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'a' }, remoteAddress: '10.0.0.2' })).statusCode, 200);
});

t.test('with Redis the rate limit holds across replicas; with Redis down requests pass', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.stop());
  const settings = { rateLimit: { max: 4, windowMs: 60_000 }, cache: { redisUrl: redis.url } };
  const a = await startGateway(settings);
  t.teardown(a.close);
  const b = await startGateway(settings);
  t.teardown(b.close);
  const route = (gw: typeof a) => gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'hello' }, remoteAddress: '10.1.1.1' });
  const statuses = [await route(a), await route(b), await route(a), await route(b), await route(a), await route(b)].map((response) => response.statusCode);
  t.same(statuses, [200, 200, 200, 200, 429, 429], 'four in all, whichever replica');
  await redis.stop();
  const during = await route(a);
  t.equal(during.statusCode, 200, 'a Redis failure does not fail requests');
});

t.test('load shedding: the loop busy while the gateway starts is not load', async (t) => {
  const config = loadConfig({ env: {}, overrides: { logLevel: 'silent', maxEventLoopDelayMs: 300 } });
  const gateway = await createGateway(config, pino({ level: 'silent' }), { metrics: new GatewayMetrics() });
  const app = await buildApp(gateway);
  t.teardown(async () => {
    await app.close();
    await gateway.close();
  });
  // As a slow start on a busy machine: the loop blocked for 1.5 s after the shedding plugin began measuring.
  busy(1500);
  await app.ready();
  const statuses = new Set<number>();
  for (let i = 0; i < 30; i++) {
    statuses.add((await app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'hello' } })).statusCode);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.same([...statuses], [200], 'served through the reading that covers the start');
});

t.test('load shedding: while the event loop lags, 503 with Retry-After; probes still answer', async (t) => {
  const gw = await startGateway({ maxEventLoopDelayMs: 20 });
  t.teardown(gw.close);
  // Block the loop repeatedly across the plugin's sampling interval.
  let shed: Awaited<ReturnType<typeof gw.app.inject>> | undefined;
  for (let i = 0; i < 40 && !shed; i++) {
    busy(150);
    await new Promise((resolve) => setImmediate(resolve));
    const response = await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'hello' } });
    if (response.statusCode === 503) shed = response;
  }
  t.ok(shed, 'shed while lagging');
  t.equal(shed?.json().error.code, 'overloaded');
  t.equal(shed?.headers['retry-after'], '1');
  t.equal((await gw.app.inject({ url: '/healthz' })).statusCode, 200, 'liveness is not shed');
  // Once the loop is idle again, requests are served (within a few samples, however busy the machine).
  let served = false;
  for (let i = 0; i < 50 && !served; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    served = (await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'hello' } })).statusCode === 200;
  }
  t.ok(served, 'served again');
});

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}
