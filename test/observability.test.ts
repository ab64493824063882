import t from 'tap';
import { startGateway } from './helpers/gateway.js';
import { withoutCredentials } from '../src/gateway.js';

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
