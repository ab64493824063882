import t from 'tap';
import OpenAI from 'openai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { startFakeVllm } from './fakes/vllm.js';
import { listenGateway, startGateway, tinyLlamaRegistry } from './helpers/gateway.js';

t.test('with LORAUTER_API_KEYS, /v1/* needs a Bearer key; probes stay open; metrics take their own key', async (t) => {
  const gw = await startGateway({ apiKeys: ['key-one-123', 'key-two-456'], metricsApiKey: 'metrics-789' });
  t.teardown(() => gw.close());
  const route = (headers: Record<string, string>) => gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'hello there' }, headers });
  const missing = await route({});
  t.equal(missing.statusCode, 401);
  t.match(missing.json(), { error: { type: 'invalid_request_error', code: 'missing_api_key', param: null } });
  const wrong = await route({ authorization: 'Bearer key-one-12' });
  t.equal(wrong.statusCode, 401);
  t.match(wrong.json(), { error: { message: 'Incorrect API key provided.', code: 'invalid_api_key' } });
  t.equal((await route({ authorization: 'Bearer key-one-123' })).statusCode, 200);
  t.equal((await route({ authorization: 'bearer key-two-456' })).statusCode, 200, 'any configured key, scheme case-insensitive');
  t.equal((await gw.app.inject({ url: '/v1/tasks' })).statusCode, 401);
  t.equal((await gw.app.inject({ url: '/healthz' })).statusCode, 200);
  t.equal((await gw.app.inject({ url: '/readyz' })).statusCode, 200);
  t.equal((await gw.app.inject({ url: '/metrics' })).statusCode, 401);
  t.equal((await gw.app.inject({ url: '/metrics', headers: { authorization: 'Bearer key-one-123' } })).statusCode, 401, 'an API key is not the metrics key');
  t.equal((await gw.app.inject({ url: '/metrics', headers: { authorization: 'Bearer metrics-789' } })).statusCode, 200);
  t.notOk(JSON.stringify(gw.logs).includes('key-one-123'), 'keys are never logged');
});

t.test('the gateway key is not forwarded upstream; the upstream key is', async (t) => {
  const fake = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'] });
  t.teardown(() => fake.stop());
  for (const [upstreamKey, expected] of [[undefined, undefined], ['upstream-secret', 'Bearer upstream-secret']] as const) {
    const gw = await listenGateway(
      { apiKeys: ['gateway-key-1'], upstream: { url: fake.url, kind: 'vllm', vllmMode: 'top1', baseModel: 'tiny-llama', ...(upstreamKey ? { apiKey: upstreamKey } : {}) }, minConfidence: 0 },
      { registry: await tinyLlamaRegistry() },
    );
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'gateway-key-1', maxRetries: 0 });
    await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: 'Translate to English: Guten Morgen' }] });
    t.equal(fake.last('/v1/chat/completions').headers.authorization, expected, `upstream key ${upstreamKey ?? 'unset'}`);
    const refused = await new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'nope-nope', maxRetries: 0 }).chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: 'hi' }] }).catch((error) => error);
    t.equal(refused.status, 401);
    await gw.close();
  }
});

t.test('keys from a file (a mounted Secret), one a line', async (t) => {
  const dir = t.testdir({});
  writeFileSync(join(dir, 'keys'), 'first-key-aaa\nsecond-key-bbb\n');
  t.same(loadConfig({ env: { LORAUTER_API_KEYS_FILE: join(dir, 'keys') } }).apiKeys, ['first-key-aaa', 'second-key-bbb']);
  t.same(loadConfig({ env: { LORAUTER_API_KEYS: 'a-long-key-1, a-long-key-2' } }).apiKeys, ['a-long-key-1', 'a-long-key-2']);
  t.throws(() => loadConfig({ env: { LORAUTER_API_KEYS_FILE: join(dir, 'missing') } }), /LORAUTER_API_KEYS_FILE: cannot read/);
  t.throws(() => loadConfig({ env: { LORAUTER_API_KEYS: 'short' } }), /apiKeys\.0/);
});
