import t from 'tap';
import { FLAN_TASKS, startGateway } from './helpers/gateway.js';

const gw = await startGateway({ tasks: FLAN_TASKS, bodyLimitBytes: 64 * 1024 });
t.teardown(() => gw.close());
const post = (payload: unknown, headers: Record<string, string> = {}) =>
  gw.app.inject({ method: 'POST', url: '/v1/route', payload: payload as string, headers: { 'content-type': 'application/json', ...headers } });

const sst2 = 'Is the sentiment of the following sentence positive or negative? a gorgeous, witty, seductive movie. OPTIONS: - negative - positive';

t.test('POST /v1/route with input', async (t) => {
  const response = await post({ input: sst2 });
  t.equal(response.statusCode, 200);
  const body = response.json();
  t.equal(body.object, 'lorauter.route');
  t.equal(body.tasks.length, 3);
  t.equal(body.tasks[0].domain, 'sentiment');
  t.ok(Math.abs(body.adapters.reduce((s: number, a: { weight: number }) => s + a.weight, 0) - 1) < 1e-9, 'weights sum to 1');
  t.same(body.adapters.map((a: { weight: number }) => a.weight), [...body.adapters.map((a: { weight: number }) => a.weight)].sort((a: number, b: number) => b - a), 'sorted by weight');
  t.equal(body.encoder, gw.gateway.encoder.fingerprint);
  t.equal(body.top_k, 3);
  t.equal(body.temperature, 0.2);
  t.match(body.timings_ms, { embed: Number, search: Number });
  t.ok(response.headers['x-request-id'], 'request id generated');
});

t.test('messages route on the last user message unless told otherwise', async (t) => {
  const messages = [
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: 'Translate to German: good morning' },
    { role: 'assistant', content: 'Guten Morgen' },
    { role: 'user', content: [{ type: 'text', text: sst2 }] },
  ];
  const last = (await post({ messages })).json();
  const direct = (await post({ input: sst2 })).json();
  t.same(last.tasks.map((x: { id: string }) => x.id), direct.tasks.map((x: { id: string }) => x.id));
  const all = (await post({ messages, route_on: 'all_user' })).json();
  t.not(JSON.stringify(all.tasks), JSON.stringify(last.tasks), 'all_user routes on more text');
  const noUser = await post({ messages: [{ role: 'system', content: 'hi' }] });
  t.equal(noUser.statusCode, 400);
  t.equal(noUser.json().error.code, 'no_user_message');
});

t.test('top_k, temperature and exclude_tasks', async (t) => {
  const body = (await post({ input: sst2, top_k: 5, temperature: 0.05, exclude_tasks: ['sst2'] })).json();
  t.equal(body.tasks.length, 5);
  t.notOk(body.tasks.some((x: { id: string }) => x.id === 'sst2'));
  t.ok(body.tasks[0].weight > 0.5, 'low temperature sharpens');
  const everything = (await post({ input: sst2, exclude_tasks: gw.gateway.registry.tasks.map((task) => task.id) })).json();
  t.match(everything, { adapters: [], abstained: true, abstain_reason: 'all_excluded' }, 'every task excluded: the base model, and why');
  const unknown = await post({ input: sst2, exclude_tasks: ['no_such_task'] });
  t.equal(unknown.statusCode, 400);
  t.same(unknown.json().error.param, 'exclude_tasks');
});

t.test('batch input answers results in order', async (t) => {
  const translate = 'Translate "Ich habe Hunger" from German to English.';
  const response = await post({ input: [sst2, translate, sst2] });
  t.equal(response.statusCode, 200);
  const body = response.json();
  t.equal(body.object, 'list');
  t.equal(body.results.length, 3);
  t.equal(body.results[0].tasks[0].domain, 'sentiment');
  t.equal(body.results[1].tasks[0].domain, 'translation');
  t.same(body.results[2].tasks, body.results[0].tasks);
  const many = await post({ input: Array.from({ length: 256 }, (_, i) => `prompt ${i}`) });
  t.equal(many.statusCode, 200);
  t.equal(many.json().results.length, 256);
});

t.test('x-request-id is honoured and echoed', async (t) => {
  const response = await post({ input: sst2 }, { 'x-request-id': 'req-42' });
  t.equal(response.headers['x-request-id'], 'req-42');
  const bad = await post({ input: sst2 }, { 'x-request-id': 'has spaces and <tags>' });
  t.not(bad.headers['x-request-id'], 'has spaces and <tags>', 'unsafe ids replaced');
});

t.test('bad requests: 4xx in the OpenAI error shape, never 500', async (t) => {
  const cases: [string, () => ReturnType<typeof post>, number, string | null][] = [
    ['malformed JSON', () => post('{"input": '), 400, null],
    ['empty body', () => post(''), 400, null],
    ['not an object', () => post('[1,2]'), 400, null],
    ['input wrong type', () => post({ input: 42 }), 400, 'input'],
    ['empty input', () => post({ input: '' }), 400, 'input'],
    ['whitespace input', () => post({ input: '   ' }), 400, 'input'],
    ['empty array', () => post({ input: [] }), 400, 'input'],
    ['empty string in array', () => post({ input: ['ok', ''] }), 400, 'input.1'],
    ['too many inputs', () => post({ input: Array.from({ length: 257 }, () => 'x') }), 400, 'input'],
    ['neither input nor messages', () => post({ top_k: 3 }), 400, 'input'],
    ['both input and messages', () => post({ input: 'x', messages: [{ role: 'user', content: 'x' }] }), 400, 'messages'],
    ['unknown field', () => post({ input: 'x', colour: 'red' }), 400, 'colour'],
    ['top_k zero', () => post({ input: 'x', top_k: 0 }), 400, 'top_k'],
    ['top_k fraction', () => post({ input: 'x', top_k: 1.5 }), 400, 'top_k'],
    ['top_k string', () => post({ input: 'x', top_k: '3' }), 400, 'top_k'],
    ['temperature zero', () => post({ input: 'x', temperature: 0 }), 400, 'temperature'],
    ['temperature negative', () => post({ input: 'x', temperature: -1 }), 400, 'temperature'],
    ['a blank last user turn', () => post({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }, { role: 'user', content: '  ' }] }), 400, 'messages'],
    ['route_on unknown', () => post({ messages: [{ role: 'user', content: 'x' }], route_on: 'first' }), 400, 'route_on'],
    ['message without role', () => post({ messages: [{ content: 'x' }] }), 400, 'messages.0.role'],
    ['exclude_tasks not array', () => post({ input: 'x', exclude_tasks: 'sst2' }), 400, 'exclude_tasks'],
    ['body too large', () => post({ input: 'x'.repeat(70 * 1024) }), 413, null],
    ['wrong content type', () => gw.app.inject({ method: 'POST', url: '/v1/route', payload: 'input=x', headers: { 'content-type': 'text/plain' } }), 415, null],
  ];
  for (const [name, send, status, param] of cases) {
    const response = await send();
    t.equal(response.statusCode, status, `${name}: status`);
    const body = response.json();
    t.match(body, { error: { message: String, type: 'invalid_request_error' } }, `${name}: shape`);
    t.ok('param' in body.error && 'code' in body.error, `${name}: param and code present`);
    if (param !== null) t.equal(body.error.param, param, `${name}: param`);
  }
  // The message says what is allowed.
  const messages: [string, unknown, RegExp][] = [
    ['empty batch', { input: [] }, /'input': must have at least 1 item\./],
    ['batch too large', { input: Array.from({ length: 257 }, () => 'x') }, /'input': must have at most 256 items\./],
    ['input of no allowed type', { input: 42 }, /'input': must be a string or an array\./],
    ['route_on', { input: 'x', route_on: 'first' }, /'route_on': must be one of "last_user", "all_user", "all"\./],
    ['role', { messages: [{ role: 'wizard', content: 'x' }] }, /'messages\.0\.role': must be one of "system", "developer", "user", "assistant", "tool", "function"\./],
    ['body not an object', ['hi'], /^The request body must be an object\.$/],
    ['a __proto__ key in valid JSON', '{"__proto__": {"x": 1}, "input": "hi"}', /"__proto__" key.*rename the key/],
  ];
  for (const [name, payload, message] of messages) {
    const response = await post(typeof payload === 'string' ? payload : JSON.stringify(payload));
    t.equal(response.statusCode, 400, `${name}: 400`);
    t.match(response.json().error.message, message, `${name}: ${response.json().error.message}`);
  }
  const missing = await gw.app.inject({ method: 'GET', url: '/v1/nothing' });
  t.equal(missing.statusCode, 404);
  t.match(missing.json(), { error: { type: 'not_found_error', code: 'unknown_url' } });
});

t.test('health, readiness, tasks, metrics', async (t) => {
  t.same((await gw.app.inject({ url: '/healthz' })).json(), { status: 'ok' });
  const ready = await gw.app.inject({ url: '/readyz' });
  t.equal(ready.statusCode, 200);
  t.match(ready.json(), { status: 'ready', tasks: 66, redis: 'disabled' });
  const tasks = (await gw.app.inject({ url: '/v1/tasks' })).json();
  t.equal(tasks.data.length, 66);
  t.match(tasks.data.find((x: { id: string }) => x.id === 'sst2'), { domain: 'sentiment', examples: 20, adapter: 'sst2' });
  const metrics = (await gw.app.inject({ url: '/metrics' })).body;
  t.match(metrics, /lorauter_route_decisions_total\{endpoint="route"\} \d+/);
  t.match(metrics, /lorauter_tasks 66/);
  t.match(metrics, /lorauter_embedding_lookups_total\{source="memory"\} \d+/);

  gw.gateway.accepting = false;
  const draining = await gw.app.inject({ url: '/readyz' });
  t.equal(draining.statusCode, 503, 'not ready while shutting down');
  gw.gateway.accepting = true;
});

t.test('docs UI and OpenAPI document', async (t) => {
  const doc = (await gw.app.inject({ url: '/openapi.json' })).json();
  t.equal(doc.openapi, '3.0.3');
  t.ok(doc.paths['/v1/route'].post);
  t.ok(doc.components.schemas.RouteDecision);
  t.ok(doc.paths['/v1/route'].post.requestBody.content['application/json'].schema.properties.input);
  const ui = await gw.app.inject({ url: '/docs/' });
  t.equal(ui.statusCode, 200);
  t.match(ui.body, /swagger/i);
});

t.test('a repeated prompt answers its cached decision: the same body on every hit, its own for each prompt and options', async (t) => {
  const translation = 'Translate to German: the weather is lovely today';
  const answers = async (payload: Record<string, unknown>) => {
    const first = await post(payload);
    const hits = [await post(payload), await post(payload)];
    for (const hit of hits) t.equal(hit.headers['content-type'], 'application/json; charset=utf-8');
    return { first: first.json(), hits: hits.map((hit) => hit.body) };
  };
  const review = await answers({ input: `${sst2} (cached answers)` });
  const other = await answers({ input: translation });
  const fewer = await answers({ input: `${sst2} (cached answers)`, top_k: 2, temperature: 0.5 });
  for (const { first, hits } of [review, other, fewer]) {
    t.equal(hits[0], hits[1], 'every hit answers the same body');
    t.same(JSON.parse(hits[0]), { ...first, cache: 'decision', timings_ms: { embed: 0, search: 0 } }, "the first answer's decision, from the cache");
  }
  t.not(JSON.parse(other.hits[0]).tasks[0].id, JSON.parse(review.hits[0]).tasks[0].id, 'another prompt: its own decision');
  t.match(JSON.parse(fewer.hits[0]), { top_k: 2, temperature: 0.5, tasks: { length: 2 } }, 'other options: their own decision');
  t.match(JSON.parse(review.hits[0]), { top_k: 3, temperature: 0.2, tasks: { length: 3 } });
});
