import t from 'tap';
import { startGateway } from './helpers/gateway.js';
import pino, { type Logger } from 'pino';
import { loadConfig } from '../src/config/load.js';
import { createGateway, withoutCredentials } from '../src/gateway.js';
import { buildApp } from '../src/http/app.js';
import { GatewayMetrics } from '../src/observability/metrics.js';

t.test('metrics: route duration observed; no Redis gauge without Redis', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.close());
  await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'Translate to English: Guten Morgen' } });
  const metrics = (await gw.app.inject({ url: '/metrics' })).body;
  t.match(metrics, /lorauter_route_duration_seconds_count 1/);
  t.notMatch(metrics, /lorauter_redis_up/, 'no false "Redis down" without Redis');
});

t.test('logs: probes at debug, a rejected request id is never logged, upstream credentials redacted', async (t) => {
  const gw = await startGateway({ upstream: { url: 'http://user:s3cret@127.0.0.1:9', kind: 'llamacpp' } });
  t.teardown(() => gw.close());
  const before = gw.logs.length;
  await gw.app.inject({ url: '/healthz' });
  await gw.app.inject({ url: '/readyz' });
  await gw.app.inject({ url: '/metrics' });
  t.equal(gw.logs.length, before, 'probes and scrapes add no info lines');
  const long = 'a'.repeat(10_000);
  const response = await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'hello' }, headers: { 'x-request-id': long } });
  t.match(response.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'a fresh id replaces a rejected one');
  t.notOk(JSON.stringify(gw.logs).includes('aaaaaaaaaa'), 'the rejected id is never logged');
  const kept = await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'hello' }, headers: { 'x-request-id': 'req-42' } });
  t.equal(kept.headers['x-request-id'], 'req-42');
  t.ok(gw.logs.some((line) => line.reqId === 'req-42'), 'a sane id is used in the logs');
  t.notOk(JSON.stringify(gw.logs).includes('s3cret'), 'credentials in the upstream URL are not logged');
  t.equal(withoutCredentials('http://user:pw@h:1/v1'), 'http://***@h:1/v1');
  t.equal(withoutCredentials('http://h:1'), 'http://h:1');
});

t.test('logs: a child logger a request while something can be logged, none at level silent', async (t) => {
  for (const level of ['silent', 'error', 'info'] as const) {
    const logger = pino({ level }, { write: () => {} });
    const gateway = await createGateway(loadConfig({ env: {}, overrides: { logLevel: level } }), logger, { metrics: new GatewayMetrics() });
    const app = await buildApp(gateway);
    const seen: unknown[] = [];
    app.addHook('onRequest', async (request) => void seen.push(request.log));
    await app.ready();
    await app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'hello' }, headers: { 'x-request-id': `req-${level}` } });
    if (level === 'silent') {
      t.equal(seen[0], app.log, 'silent: the request logs through the gateway logger itself');
    } else {
      t.not(seen[0], app.log, `${level}: a child of its own`);
      t.match((seen[0] as Logger).bindings(), { reqId: `req-${level}` }, `${level}: bound to the request id`);
    }
    await app.close();
    await gateway.close();
  }
});

t.test('upstream health: an active check, lorauter_upstream_up, /readyz reports it and can gate on it', async (t) => {
  const { startFakeLlamaCpp } = await import('./fakes/llamacpp.js');
  const fake = await startFakeLlamaCpp(['/m/sst2.gguf']);
  const url = fake.url;
  const gw = await startGateway({ upstream: { url, kind: 'llamacpp', healthIntervalMs: 100, readyRequiresUpstream: true } });
  t.teardown(() => gw.close());
  const ready = async () => (await gw.app.inject({ url: '/readyz' })).json();
  let body = await ready();
  for (let i = 0; i < 50 && body.upstream !== 'up'; i++) body = (await new Promise((r) => setTimeout(r, 20)), await ready());
  t.match(body, { status: 'ready', upstream: 'up' });
  t.ok(fake.received.some((request) => request.path === '/health'), "the upstream's /health was asked");
  t.match((await gw.app.inject({ url: '/metrics' })).body, /lorauter_upstream_up 1/);
  t.match((await gw.app.inject({ url: '/metrics' })).body, /lorauter_ready 1/, 'ready, as /readyz says');
  await fake.stop();
  for (let i = 0; i < 50 && body.upstream !== 'down'; i++) body = (await new Promise((r) => setTimeout(r, 20)), await ready());
  t.match(body, { status: 'not_ready', upstream: 'down' });
  t.equal((await gw.app.inject({ url: '/readyz' })).statusCode, 503, 'LORAUTER_READY_REQUIRES_UPSTREAM: not ready while it is down');
  t.match((await gw.app.inject({ url: '/metrics' })).body, /lorauter_upstream_up 0/);
  t.match((await gw.app.inject({ url: '/metrics' })).body, /lorauter_ready 0/);
  t.ok(gw.logs.some((line) => line.msg === 'upstream health changed'));

  const relaxed = await startGateway({ upstream: { url, kind: 'llamacpp', healthIntervalMs: 100 } });
  t.teardown(() => relaxed.close());
  let relaxedBody = (await relaxed.app.inject({ url: '/readyz' })).json();
  for (let i = 0; i < 100 && relaxedBody.upstream !== 'down'; i++) relaxedBody = (await new Promise((r) => setTimeout(r, 20)), (await relaxed.app.inject({ url: '/readyz' })).json());
  t.match(relaxedBody, { status: 'ready', upstream: 'down' }, 'by default readiness only reports it');
});

t.test('HTTP request metrics by route pattern and status; routing time split into embedding and search', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.close());
  await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'Translate to English: Guten Morgen' } });
  await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'Translate to English: Guten Morgen' } });
  await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { nope: 1 } });
  await gw.app.inject({ url: '/no/such/path/123' });
  const metrics = (await gw.app.inject({ url: '/metrics' })).body;
  t.match(metrics, /lorauter_http_requests_total\{route="\/v1\/route",method="POST",status="200"\} 2/);
  t.match(metrics, /lorauter_http_requests_total\{route="\/v1\/route",method="POST",status="400"\} 1/);
  t.match(metrics, /lorauter_http_requests_total\{route="unmatched",method="GET",status="404"\} 1/, 'unknown URLs share one label');
  t.notMatch(metrics, /no\/such\/path/);
  t.match(metrics, /lorauter_http_request_duration_seconds_count\{route="\/v1\/route"\} 3/);
  t.match(metrics, /lorauter_route_embed_seconds_count\{source="encoder"\} 1/, 'the repeat was a cached decision');
  t.match(metrics, /lorauter_route_search_seconds_count 1/);
});
