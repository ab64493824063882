import t, { type Test as Tap } from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { parseRegistry } from '../src/registry/parse.js';
import { listenGateway, startGateway } from './helpers/gateway.js';
import { RedisServer } from './helpers/redis.js';

const ADMIN = 'admin-key-for-tests';
const auth = { authorization: `Bearer ${ADMIN}` };

// A task no demo task resembles: prompts about knitting patterns.
const KNITTING = {
  domain: 'crafts',
  description: 'Explain knitting patterns',
  examples: [
    'Explain this knitting pattern: cast on 40 stitches, knit 2 purl 2 ribbing for 10 rows',
    'What does k2tog mean in a knitting pattern with yarn over and slip stitch?',
    'How do I read this knitting chart: purl the wrong side rows, cable every sixth row',
    'Knitting pattern help: the sock heel turn says slip 1 purl wise, knit to gap',
  ],
  targets: ['ribbing', 'knit two together', null, 'heel'],
};
const KNITTING_PROMPT = 'In this knitting pattern, what does purl 2 together and yarn over mean for the cable stitches?';

type Gw = Awaited<ReturnType<typeof startGateway>>;

const put = (gw: Gw, path: string, payload: unknown, headers: Record<string, string> = auth) =>
  gw.app.inject({ method: 'PUT', url: path, payload: payload as object, headers });
const topTask = async (gw: Gw, input: string) => (await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input } })).json().tasks[0].id as string;
const taskIds = async (gw: Gw) => ((await gw.app.inject({ method: 'GET', url: '/v1/tasks' })).json().data as { id: string }[]).map((task) => task.id);

/** Two gateways with the admin API sharing a fresh Redis registry under `keyPrefix`. */
async function twoReplicas(t: Tap, keyPrefix: string) {
  const redis = await RedisServer.start();
  t.teardown(() => redis.stop());
  const shared = { adminApiKey: ADMIN, cache: { redisUrl: redis.url }, registry: { keyPrefix } };
  const a = await startGateway(shared);
  t.teardown(a.close);
  const b = await startGateway(shared);
  t.teardown(b.close);
  return { a, b, shared };
}

/** Polls until `check` holds; the time it took, or a failure after `limitMs`. */
async function within(limitMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    if (await check()) return performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`not within ${limitMs} ms`);
}

t.test('without LORAUTER_ADMIN_API_KEY the admin paths do not exist (404), and never reach the upstream', async (t) => {
  const gw = await startGateway({ apiKeys: ['client-key-123'] });
  t.teardown(gw.close);
  for (const [method, url] of [['PUT', '/v1/tasks/x'], ['GET', '/v1/tasks/sentiment'], ['DELETE', '/v1/tasks/sentiment'], ['GET', '/v1/adapters'], ['PUT', '/v1/adapters/a']] as const) {
    const response = await gw.app.inject({ method, url, payload: method === 'PUT' ? {} : undefined, headers: { authorization: 'Bearer client-key-123' } });
    t.equal(response.statusCode, 404, `${method} ${url}`);
    t.equal(response.json().error.code, 'unknown_url');
  }
});

t.test('admin API: only the admin key opens it; client keys do not', async (t) => {
  const gw = await startGateway({ adminApiKey: ADMIN, apiKeys: ['client-key-123'] });
  t.teardown(gw.close);
  const none = await gw.app.inject({ method: 'GET', url: '/v1/tasks/sentiment' });
  t.equal(none.statusCode, 401);
  t.equal(none.json().error.code, 'missing_api_key');
  const client = await gw.app.inject({ method: 'GET', url: '/v1/tasks/sentiment', headers: { authorization: 'Bearer client-key-123' } });
  t.equal(client.statusCode, 401);
  t.equal(client.json().error.code, 'invalid_api_key');
  const admin = await gw.app.inject({ method: 'GET', url: '/v1/tasks/sentiment', headers: auth });
  t.equal(admin.statusCode, 200);
  t.equal(admin.json().examples.length, 5);
  // The client key still serves the client API, and the admin key is not a client key.
  t.equal((await gw.app.inject({ method: 'GET', url: '/v1/tasks', headers: { authorization: 'Bearer client-key-123' } })).statusCode, 200);
  t.equal((await gw.app.inject({ method: 'GET', url: '/v1/tasks', headers: auth })).statusCode, 401);
});

t.test('admin API validates everything, in the OpenAI error shape', async (t) => {
  const gw = await startGateway({ adminApiKey: ADMIN });
  t.teardown(gw.close);
  const initial = await taskIds(gw);
  const cases: [string, string, unknown, number, string | null][] = [
    ['unsafe id', '/v1/tasks/bad%20id', KNITTING, 400, null],
    ['id too long', `/v1/tasks/${'a'.repeat(201)}`, KNITTING, 400, null],
    ['no examples', '/v1/tasks/k', { examples: [] }, 400, 'examples'],
    ['empty example', '/v1/tasks/k', { examples: [''] }, 400, 'examples.0'],
    ['examples not a list', '/v1/tasks/k', { examples: 'x' }, 400, 'examples'],
    ['unknown field', '/v1/tasks/k', { examples: ['x'], colour: 'red' }, 400, 'colour'],
    ['score not a number', '/v1/tasks/k', { examples: ['x'], adapters: { a: 'high' } }, 400, 'adapters.a'],
    ['targets not one per example', '/v1/tasks/k', { examples: ['x', 'y'], targets: ['a'] }, 400, 'targets'],
    ['unsafe adapter id in scores', '/v1/tasks/k', { examples: ['x'], adapters: { 'a b': 1 } }, 400, 'adapters.a b'],
    ['unknown metric', '/v1/tasks/k', { examples: ['x'], metric: 'f1' }, 400, 'metric'],
    ['adapter rank not an integer', '/v1/adapters/a', { rank: 8.5 }, 400, 'rank'],
    ['adapter unknown field', '/v1/adapters/a', { weights: 'x' }, 400, 'weights'],
  ];
  for (const [name, url, body, status, param] of cases) {
    const response = await put(gw, url, body);
    t.equal(response.statusCode, status, name);
    const error = response.json().error;
    t.same(Object.keys(error).sort(), ['code', 'message', 'param', 'type'], `${name}: OpenAI shape`);
    if (param !== null) t.equal(error.param, param, `${name}: param`);
  }
  const missing = await gw.app.inject({ method: 'DELETE', url: '/v1/tasks/nope', headers: auth });
  t.equal(missing.statusCode, 404);
  t.equal(missing.json().error.code, 'task_not_found');
  t.equal((await gw.app.inject({ method: 'GET', url: '/v1/adapters/nope', headers: auth })).statusCode, 404);
  // An adapter a task routes to cannot go; a task's own adapter counts.
  const inUse = await gw.app.inject({ method: 'DELETE', url: '/v1/adapters/sentiment', headers: auth });
  t.equal(inUse.statusCode, 409);
  t.equal(inUse.json().error.code, 'adapter_in_use');
  t.match(inUse.json().error.message, /task sentiment/);
  t.same(await taskIds(gw), initial, 'nothing changed');
  t.equal(gw.gateway.liveRegistry.version, 1);
});

t.test('PUT, GET and DELETE a task: routing picks it up without a restart and never stops serving', async (t) => {
  const gw = await startGateway({ adminApiKey: ADMIN });
  t.teardown(gw.close);
  const before = await topTask(gw, KNITTING_PROMPT);
  t.not(before, 'knitting');

  // Requests in flight during the change are all answered.
  const background = Promise.all(Array.from({ length: 40 }, () => gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: `${Math.random()} knitting` } })));
  const created = await put(gw, '/v1/tasks/knitting', { ...KNITTING, adapters: { 'knit-lora': 0.9, knitting: 0.4 } });
  t.equal(created.statusCode, 201);
  t.equal(created.json().id, 'knitting');
  t.equal(created.json().version, 2);
  t.same(created.json().targets, KNITTING.targets);
  t.ok((await background).every((response) => response.statusCode === 200), 'routing served throughout');

  await gw.gateway.liveRouter.settled();
  t.equal(gw.gateway.liveRouter.version, 2);
  t.same((await gw.app.inject({ url: '/readyz' })).json().registry, { store: 'memory', version: 2, routed_version: 2 }, '/readyz says where the replica is');
  t.equal(await topTask(gw, KNITTING_PROMPT), 'knitting');
  const routed = (await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: KNITTING_PROMPT } })).json();
  t.equal(routed.adapters[0].id, 'knit-lora', 'the best-scored adapter');

  const fetched = await gw.app.inject({ method: 'GET', url: '/v1/tasks/knitting', headers: auth });
  t.same(fetched.json().examples, KNITTING.examples);
  t.same(fetched.json().adapters, { 'knit-lora': 0.9, knitting: 0.4 });
  // The adapters it names became known.
  const adapters = (await gw.app.inject({ method: 'GET', url: '/v1/adapters', headers: auth })).json();
  t.ok(adapters.data.some((adapter: { id: string }) => adapter.id === 'knit-lora'));

  const replaced = await put(gw, '/v1/tasks/knitting', { examples: KNITTING.examples.slice(0, 2) });
  t.equal(replaced.statusCode, 200, 'replacing answers 200');
  t.equal(replaced.json().version, 3);

  const adapter = await put(gw, '/v1/adapters/knit-lora', { path: '/adapters/knit', rank: 16, alpha: 32, llamacpp_name: 'knit' });
  t.equal(adapter.statusCode, 200, 'it existed (implied by the task)');
  t.same((await gw.app.inject({ method: 'GET', url: '/v1/adapters/knit-lora', headers: auth })).json(), {
    object: 'adapter', id: 'knit-lora', path: '/adapters/knit', llamacpp_name: 'knit', rank: 16, alpha: 32, version: 4,
  });
  t.equal(gw.gateway.liveRegistry.adapters.get('knit-lora')?.path, '/adapters/knit', 'the live adapter table (upstream drivers) sees it');

  // Clients that send `content-type: application/json` on every request: an empty DELETE is fine, a body is refused.
  const withBody = await gw.app.inject({ method: 'DELETE', url: '/v1/tasks/knitting', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"force":true}' });
  t.equal(withBody.statusCode, 400);
  t.same([withBody.json().error.code, withBody.json().error.message], ['unexpected_body', 'DELETE takes no body; send the request without one.']);
  const deleted = await gw.app.inject({ method: 'DELETE', url: '/v1/tasks/knitting', headers: { ...auth, 'content-type': 'application/json' } });
  t.same(deleted.json(), { object: 'task', id: 'knitting', deleted: true, version: 5 });
  await gw.gateway.liveRouter.settled();
  t.notOk((await taskIds(gw)).includes('knitting'));
  t.not(await topTask(gw, KNITTING_PROMPT), 'knitting');
  t.equal((await gw.app.inject({ method: 'GET', url: '/v1/tasks/knitting', headers: auth })).statusCode, 404);
  // Now unused, the adapter can go.
  t.equal((await gw.app.inject({ method: 'DELETE', url: '/v1/adapters/knit-lora', headers: auth })).statusCode, 200);
  const metrics = (await gw.app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /lorauter_registry_version 6/);
  t.match(metrics, /lorauter_registry_rebuild_seconds_count [1-9]/);
});

t.test('deleting down to one task is allowed; the last one is not', async (t) => {
  const gw = await startGateway({ adminApiKey: ADMIN });
  t.teardown(gw.close);
  const ids = gw.gateway.registry.tasks.map((task) => task.id);
  for (const id of ids.slice(1)) t.equal((await gw.app.inject({ method: 'DELETE', url: `/v1/tasks/${id}`, headers: auth })).statusCode, 200);
  const last = await gw.app.inject({ method: 'DELETE', url: `/v1/tasks/${ids[0]}`, headers: auth });
  t.equal(last.statusCode, 409);
  t.equal(last.json().error.code, 'last_task');
  await gw.gateway.liveRouter.settled();
  t.equal(gw.gateway.router.taskCount, 1);
});

t.test('without Redis a change is written back to the task file atomically, in its own format', async (t) => {
  for (const [name, text] of [
    ['tasks.yaml', YAML.stringify({ tasks: [{ id: 'alpha', examples: ['first alpha example', 'second alpha example'] }, { id: 'beta', examples: ['a beta example'] }] })],
    ['tasks.jsonl', '{"task":"alpha","inputs":"first alpha example","targets":"A"}\n{"task":"beta","inputs":"a beta example"}\n'],
  ]) {
    const dir = t.testdir({ [name]: text });
    const file = join(dir, name);
    const gw = await startGateway({ adminApiKey: ADMIN, tasks: file, registry: { fileCheckMs: 100 } });
    t.teardown(gw.close);
    t.equal((await put(gw, '/v1/tasks/gamma', { examples: ['a gamma example'], targets: ['G'] })).statusCode, 201);
    const checksAfterWrite = gw.gateway.liveRegistry.fileChecks;
    const written = parseRegistry(readFileSync(file, 'utf8'), file);
    t.same(written.tasks.map((task) => task.id), ['alpha', 'beta', 'gamma'], `${name}: the new task is in the file`);
    t.same(written.tasks[2].targets, ['G']);
    t.same(readdirSync(dir), [name], `${name}: no temporary file left`);
    // The gateway's own write is not taken for an outside change, by the checks that follow it.
    await within(5000, async () => gw.gateway.liveRegistry.fileChecks >= checksAfterWrite + 2);
    t.notOk(gw.logs.some((line) => line.msg === 'task file reloaded'), `${name}: no reload of its own write`);
    t.equal(gw.gateway.liveRegistry.version, 2);
  }
  // A change a .jsonl file cannot hold is kept in memory, with a warning.
  const dir = t.testdir({ 'tasks.jsonl': '{"task":"alpha","inputs":"an alpha example"}\n{"task":"beta","inputs":"a beta example"}\n' });
  const gw = await startGateway({ adminApiKey: ADMIN, tasks: join(dir, 'tasks.jsonl') });
  t.teardown(gw.close);
  t.equal((await put(gw, '/v1/tasks/gamma', { examples: ['x'], adapters: { a: 1, b: 0.5 } })).statusCode, 201);
  t.ok(gw.logs.some((line) => line.msg === 'registry change applied but not written back to the task file'));
  t.ok(gw.gateway.registry.tasks.some((task) => task.id === 'gamma'));
});

t.test('the task file is reloaded when it changes on disk; a bad file is rejected and the registry stays', async (t) => {
  const dir = t.testdir({ 'tasks.yaml': YAML.stringify({ tasks: [{ id: 'alpha', examples: ['an alpha example'] }, { id: 'beta', examples: ['a beta example'] }] }) });
  const file = join(dir, 'tasks.yaml');
  const gw = await startGateway({ tasks: file, registry: { fileCheckMs: 200 } });
  t.teardown(gw.close);
  writeFileSync(file, YAML.stringify({ tasks: [{ id: 'alpha', examples: ['an alpha example'] }, { id: 'knitting', examples: KNITTING.examples }] }));
  await within(3000, async () => (await taskIds(gw)).includes('knitting'));
  t.same(await taskIds(gw), ['alpha', 'knitting']);
  t.equal(await topTask(gw, KNITTING_PROMPT), 'knitting');

  writeFileSync(file, 'tasks:\n  - id: alpha\n    examples: not-a-list\n');
  await within(3000, async () => gw.logs.some((line) => line.msg === 'task file rejected: the running registry stays'));
  t.same(await taskIds(gw), ['alpha', 'knitting'], 'the running registry stays');
  const rejected = gw.logs.find((line) => line.msg === 'task file rejected: the running registry stays')!;
  t.match(rejected.err, /tasks\.yaml:3: tasks\.0\.examples/);

  // A Kubernetes ConfigMap update: the file is replaced by a rename.
  writeFileSync(`${file}.new`, YAML.stringify({ tasks: [{ id: 'gamma', examples: ['a gamma example'] }, { id: 'delta', examples: ['a delta example'] }] }));
  const { renameSync } = await import('node:fs');
  renameSync(`${file}.new`, file);
  await within(3000, async () => (await taskIds(gw)).includes('gamma'));
  const metrics = (await gw.app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /lorauter_registry_reloads_total\{result="applied"\} 2/);
  t.match(metrics, /lorauter_registry_reloads_total\{result="rejected"\} [1-9]/);
});

t.test('two gateways sharing one Redis: changes reach the other, concurrent writers lose nothing', async (t) => {
  const { a, b, shared } = await twoReplicas(t, 'test:registry:');
  t.equal(a.gateway.liveRegistry.version, b.gateway.liveRegistry.version, 'the second replica read the stored registry');

  t.equal((await put(a, '/v1/tasks/knitting', KNITTING)).statusCode, 201);
  const addedMs = await within(10_000, async () => (await topTask(b, KNITTING_PROMPT)) === 'knitting');
  t.pass(`added through A, routed to by B after ${Math.round(addedMs)} ms`);
  t.same((await b.app.inject({ method: 'GET', url: '/v1/tasks/knitting', headers: auth })).json().targets, KNITTING.targets);

  t.equal((await b.app.inject({ method: 'DELETE', url: '/v1/tasks/knitting', headers: auth })).statusCode, 200);
  const deletedMs = await within(10_000, async () => !(await taskIds(a)).includes('knitting') && !(await taskIds(b)).includes('knitting'));
  t.pass(`deleted through B, gone from both after ${Math.round(deletedMs)} ms`);
  t.not(await topTask(a, KNITTING_PROMPT), 'knitting');

  // 20 writers at once, half through each replica.
  const writes = await Promise.all(
    Array.from({ length: 20 }, (_, i) => put(i % 2 ? a : b, `/v1/tasks/concurrent-${i}`, { examples: [`concurrent example number ${i}`] })),
  );
  t.ok(writes.every((response) => response.statusCode === 201));
  t.same(new Set(writes.map((response) => response.json().version)).size, 20, 'each write got its own version');
  for (const gw of [a, b]) {
    await within(10_000, async () => (await taskIds(gw)).filter((id) => id.startsWith('concurrent-')).length === 20);
  }
  await within(10_000, async () => a.gateway.liveRegistry.version === b.gateway.liveRegistry.version);
  t.equal(a.gateway.liveRegistry.version, b.gateway.liveRegistry.version);

  // A replica that starts later, with a task file of its own, gets the shared registry.
  const dir = t.testdir({ 'other.yaml': YAML.stringify({ tasks: [{ id: 'unrelated', examples: ['unrelated'] }] }) });
  const c = await startGateway({ ...shared, tasks: join(dir, 'other.yaml') });
  t.teardown(c.close);
  t.equal((await taskIds(c)).filter((id) => id.startsWith('concurrent-')).length, 20);
  t.notOk((await taskIds(c)).includes('unrelated'));
});

t.test('Redis registry: routing goes on while Redis is down, writes fail cleanly, a restarted empty Redis is re-seeded', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.stop());
  const shared = { adminApiKey: ADMIN, cache: { redisUrl: redis.url }, registry: { keyPrefix: 'outage:registry:', pollMs: 100, timeoutMs: 300 } };
  const a = await listenGateway(shared);
  t.teardown(a.close);
  t.equal((await put(a, '/v1/tasks/knitting', KNITTING)).statusCode, 201);
  await a.gateway.liveRouter.settled();
  await redis.stop();
  t.equal(await topTask(a, KNITTING_PROMPT), 'knitting', 'routing serves the registry it has');
  const write = await put(a, '/v1/tasks/other', { examples: ['x'] });
  t.equal(write.statusCode, 503);
  t.equal(write.json().error.code, 'registry_unavailable');
  await redis.restart();
  // The restarted Redis has no registry: the replica stores the one it runs, and a new replica reads it.
  const { Redis } = await import('ioredis');
  const probe = new Redis(redis.url);
  t.teardown(() => probe.disconnect());
  await within(5000, async () => Number(await probe.get('outage:registry:version')) > a.gateway.liveRegistry.version - 1);
  t.ok(Number(await probe.get('outage:registry:version')) > 2, 'the version went on from the replica\'s');
  const b = await startGateway(shared);
  t.teardown(b.close);
  await within(3000, async () => (await taskIds(b)).includes('knitting'));
  t.pass('re-seeded from the running replica');
});

t.test('Redis registry: a change that reaches a Redis emptied by a restart before the re-seed keeps every other task', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.stop());
  // A poll far away: the change comes first, as it may in production between two polls.
  const shared = { adminApiKey: ADMIN, cache: { redisUrl: redis.url }, registry: { keyPrefix: 'emptied:registry:', pollMs: 600_000, timeoutMs: 300 } };
  const a = await listenGateway(shared);
  t.teardown(a.close);
  t.equal((await put(a, '/v1/tasks/knitting', KNITTING)).statusCode, 201);
  await a.gateway.liveRouter.settled();
  const before = await taskIds(a);
  await redis.stop();
  await redis.restart();
  await within(5000, async () => (await put(a, '/v1/tasks/other', { examples: ['an other example prompt'] })).statusCode === 201);
  await a.gateway.liveRouter.settled();
  t.same((await taskIds(a)).sort(), [...before, 'other'].sort(), 'the running registry plus the change, nothing lost');
  const b = await startGateway(shared);
  t.teardown(b.close);
  t.same((await taskIds(b)).sort(), [...before, 'other'].sort(), 'and that is what Redis now holds');
});

t.test('Redis registry: a replica that starts while Redis is down routes on its own registry and stores it once Redis is up', async (t) => {
  const { freePort } = await import('./helpers/redis.js');
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const gw = await startGateway({ adminApiKey: ADMIN, cache: { redisUrl: url, redisTimeoutMs: 50 }, registry: { keyPrefix: 'late:registry:', pollMs: 100, timeoutMs: 200 } });
  t.teardown(gw.close);
  t.ok(gw.logs.some((line) => String(line.msg).startsWith('registry store unavailable at start-up')), 'says so');
  t.equal((await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'Translate to English: Guten Morgen' } })).statusCode, 200, 'routes meanwhile');
  t.equal((await put(gw, '/v1/tasks/knitting', KNITTING)).statusCode, 503, 'changes wait for the store');
  const redis = await RedisServer.start(port);
  t.teardown(() => redis.stop());
  const { Redis } = await import('ioredis');
  const probe = new Redis(url);
  t.teardown(() => probe.disconnect());
  await within(5000, async () => (await probe.hlen('late:registry:entries')) > 0);
  t.pass('the registry was stored when Redis came up');
  await within(3000, async () => (await put(gw, '/v1/tasks/knitting', KNITTING)).statusCode === 201);
  await gw.gateway.liveRouter.settled();
  t.equal(await topTask(gw, KNITTING_PROMPT), 'knitting');
});

t.test('with an encoder that does not depend on the registry, a change encodes and calibrates only the tasks it touched, and routes as a fresh build does', async (t) => {
  const { BuiltinEncoder } = await import('../src/encoders/builtin/builtin-encoder.js');
  const { demoRegistry } = await import('../src/registry/demo.js');
  // A fixed encoder (fitted once, like a neural one) that counts what it is asked to encode.
  const fitted = BuiltinEncoder.fit([...demoRegistry().tasks, { examples: KNITTING.examples }]);
  let encoded = 0;
  const counting = { kind: 'counting', fingerprint: fitted.fingerprint, dimensions: fitted.dimensions, encode: async (texts: readonly string[]) => ((encoded += texts.length), fitted.encode(texts)) };
  const settings = { adminApiKey: ADMIN, cache: { maxEntries: 0, decisionEntries: 0 } };
  const gw = await startGateway(settings, { encoder: counting });
  t.teardown(gw.close);
  const atStart = encoded;

  encoded = 0;
  t.equal((await put(gw, '/v1/tasks/knitting', KNITTING)).statusCode, 201);
  await gw.gateway.liveRouter.settled();
  // 4 examples, plus 3 held-out folds of them (kept + held out: 4 each).
  t.equal(encoded, 4 + 3 * 4, `a new task: ${encoded} texts encoded, not the ${atStart} of a full build`);
  t.ok(gw.logs.some((line) => line.msg === 'routing index rebuilt' && line.derivedTasks === 1));

  encoded = 0;
  t.equal((await put(gw, '/v1/tasks/knitting', { ...KNITTING, adapters: { 'knit-lora': 1 } })).statusCode, 200);
  await gw.gateway.liveRouter.settled();
  t.equal(encoded, 0, 'new scores, same examples: nothing encoded');
  t.equal((await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: KNITTING_PROMPT } })).json().adapters[0].id, 'knit-lora');

  // The incrementally built router decides exactly as one built from scratch on the same registry.
  const fresh = await startGateway(settings, { encoder: counting, registry: gw.gateway.registry });
  t.teardown(fresh.close);
  for (const input of [KNITTING_PROMPT, 'Translate to English: Guten Morgen', 'hello there', 'What is the capital of France?']) {
    const [a, b] = await Promise.all([gw, fresh].map(async (g) => (await g.app.inject({ method: 'POST', url: '/v1/route', payload: { input } })).json()));
    t.same(a.tasks, b.tasks, `same tasks and similarities: ${input}`);
    t.equal(a.confidence, b.confidence);
    t.equal(a.abstained, b.abstained);
  }
});

t.test('replicas sharing Redis and one task file (a ConfigMap): a changed file is stored once, and every replica routes on it', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.stop());
  const dir = t.testdir({ 'tasks.yaml': YAML.stringify({ tasks: [{ id: 'alpha', examples: ['an alpha example'] }, { id: 'beta', examples: ['a beta example'] }] }) });
  const file = join(dir, 'tasks.yaml');
  const shared = { tasks: file, cache: { redisUrl: redis.url }, registry: { keyPrefix: 'configmap:registry:', fileCheckMs: 100 } };
  const replicas = [await startGateway(shared), await startGateway(shared), await startGateway(shared)];
  for (const gw of replicas) t.teardown(gw.close);
  const { Redis } = await import('ioredis');
  const probe = new Redis(redis.url);
  t.teardown(() => probe.disconnect());
  const before = Number(await probe.get('configmap:registry:version'));
  t.equal(before, 1, 'seeded once');
  writeFileSync(file, YAML.stringify({ tasks: [{ id: 'alpha', examples: ['an alpha example'] }, { id: 'knitting', examples: KNITTING.examples }] }));
  for (const gw of replicas) await within(3000, async () => (await taskIds(gw)).includes('knitting'));
  // Every replica checked the file again since: a second write would have been made by now.
  const checks = replicas.map((gw) => gw.gateway.liveRegistry.fileChecks);
  for (const [i, gw] of replicas.entries()) await within(3000, async () => gw.gateway.liveRegistry.fileChecks >= checks[i] + 2);
  t.equal(Number(await probe.get('configmap:registry:version')), before + 1, 'three replicas saw the change; one stored it');
  for (const gw of replicas) t.equal(await topTask(gw, KNITTING_PROMPT), 'knitting');
});

t.test('a rebuild that fails (the encoder is down) keeps the router in service, and is retried until it succeeds', async (t) => {
  const { BuiltinEncoder } = await import('../src/encoders/builtin/builtin-encoder.js');
  const { demoRegistry } = await import('../src/registry/demo.js');
  const fitted = BuiltinEncoder.fit([...demoRegistry().tasks, { examples: KNITTING.examples }]);
  let down = false;
  const flaky = {
    kind: 'flaky',
    fingerprint: fitted.fingerprint,
    dimensions: fitted.dimensions,
    encode: async (texts: readonly string[]) => {
      if (down && texts.some((text) => text.includes('knitting'))) throw new Error('embeddings server unreachable');
      return fitted.encode(texts);
    },
  };
  const gw = await startGateway({ adminApiKey: ADMIN, cache: { maxEntries: 0, decisionEntries: 0 } }, { encoder: flaky });
  t.teardown(gw.close);
  down = true;
  t.equal((await put(gw, '/v1/tasks/knitting', KNITTING)).statusCode, 201, 'the change is stored');
  await gw.gateway.liveRouter.settled();
  t.equal(gw.gateway.liveRouter.version, 1, 'the previous router stays in service');
  t.ok(gw.logs.some((line) => line.msg === 'routing index rebuild failed: the previous one stays in service'));
  t.equal((await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'Translate to English: Guten Morgen' } })).statusCode, 200, 'routing goes on');
  // Back up: the failed build is retried by itself.
  down = false;
  await within(5000, async () => gw.gateway.liveRouter.version === 2);
  t.equal(await topTask(gw, KNITTING_PROMPT), 'knitting', 'the task the failed build missed is in');
  t.equal((await put(gw, '/v1/adapters/knit-lora', { rank: 8 })).statusCode, 201);
  await gw.gateway.liveRouter.settled();
  t.equal(gw.gateway.liveRouter.version, 3);
});

t.test('If-Match: a writer that read an older version gets 412 instead of overwriting a change (memory and Redis)', async (t) => {
  const etagOf = async (gw: Gw, url: string) => (await gw.app.inject({ method: 'GET', url, headers: auth })).headers.etag as string;
  const memory = await startGateway({ adminApiKey: ADMIN });
  t.teardown(memory.close);
  const tag = await etagOf(memory, '/v1/tasks/sentiment');
  t.match(tag, /^"[0-9a-f]{40}"$/);
  const body = { examples: ['Is this review positive? great film'] };
  const stale = await put(memory, '/v1/tasks/sentiment', body, { ...auth, 'if-match': '"0000000000000000000000000000000000000000"' });
  t.equal(stale.statusCode, 412);
  t.equal(stale.json().error.code, 'precondition_failed');
  const fresh = await put(memory, '/v1/tasks/sentiment', body, { ...auth, 'if-match': tag });
  t.equal(fresh.statusCode, 200);
  t.not(fresh.headers.etag, tag, 'a new tag');
  t.equal(fresh.headers.etag, await etagOf(memory, '/v1/tasks/sentiment'));
  t.equal((await memory.app.inject({ method: 'DELETE', url: '/v1/tasks/sentiment', headers: { ...auth, 'if-match': tag } })).statusCode, 412, 'delete with the old tag');
  t.equal((await put(memory, '/v1/tasks/brand-new', body, { ...auth, 'if-match': '*' })).statusCode, 412, 'If-Match: * needs it to exist');
  t.equal((await put(memory, '/v1/adapters/sentiment', { rank: 8 }, { ...auth, 'if-match': await etagOf(memory, '/v1/adapters/sentiment') })).statusCode, 200);

  // Two replicas read the same task, then both write: one wins, the other is told.
  const { a, b } = await twoReplicas(t, 'ifmatch:registry:');
  const read = await etagOf(a, '/v1/tasks/sentiment');
  t.equal(await etagOf(b, '/v1/tasks/sentiment'), read, 'the same tag on every replica');
  const [first, second] = await Promise.all([
    put(a, '/v1/tasks/sentiment', { examples: ['written through A'] }, { ...auth, 'if-match': read }),
    put(b, '/v1/tasks/sentiment', { examples: ['written through B'] }, { ...auth, 'if-match': read }),
  ]);
  t.same([first.statusCode, second.statusCode].sort(), [200, 412], 'one wins, one is refused');
  const winner = first.statusCode === 200 ? 'written through A' : 'written through B';
  // Each replica is waited for on its own: seeing the write on one says nothing of when the other catches up.
  for (const gw of [a, b]) {
    await within(10_000, async () => (await gw.app.inject({ method: 'GET', url: '/v1/tasks/sentiment', headers: auth })).json().examples[0] === winner);
    t.same((await gw.app.inject({ method: 'GET', url: '/v1/tasks/sentiment', headers: auth })).json().examples, [winner]);
  }
});
