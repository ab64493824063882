// The fault suite: the gateway as a real process under load while its upstream fails 10% of calls
// and Redis goes away and comes back, then a storm of hostile requests at every endpoint.
// `npm test` runs a short form; `npm run test:faults` (LORAUTER_FAULTS=full) the full one.
import t from 'tap';
import autocannon from 'autocannon';
import { connect } from 'node:net';
import { Agent, request } from 'undici';
import { startDemoStack } from './helpers/gateway-process.js';

const FULL = process.env.LORAUTER_FAULTS === 'full';
const LOAD_REQUESTS = FULL ? 12_000 : 1_500;
const HOSTILE_REQUESTS = FULL ? 10_500 : 1_500;
const ADMIN = 'fault-suite-admin-key';
const REQUEST_TIMEOUT_MS = 2000;
const HEADERS_TIMEOUT_MS = 1000;
const BODY_LIMIT = 1_048_576;

const { vllm, redis, gateway, stop } = await startDemoStack(ADMIN, {
  LORAUTER_UPSTREAM_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
  LORAUTER_UPSTREAM_BODY_TIMEOUT_MS: '3000',
  LORAUTER_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
});
t.teardown(stop);
const { port, url: gatewayUrl } = gateway;
const isOpenAIError = (body: unknown) => {
  const error = (body as { error?: Record<string, unknown> })?.error;
  return (
    typeof error === 'object' && error !== null && typeof error.message === 'string' && typeof error.type === 'string' &&
    'param' in error && 'code' in error && Object.keys(body as object).length === 1
  );
};

const baseline = await gateway.memory();

t.test(`load: ${LOAD_REQUESTS} requests (route with new prompts, chat, streamed chat) while the upstream fails 10% and Redis restarts`, async (t) => {
  let call = 0;
  vllm.behaviour.fault = () => {
    call++;
    const roll = (call * 7919) % 100;
    return roll < 4 ? 'error' : roll < 7 ? 'stall' : roll < 10 ? 'drop' : undefined;
  };
  t.teardown(() => void (vllm.behaviour.fault = undefined));
  let prompt = 0;
  let responses = 0;
  const statuses = new Map<number, number>();
  const redisOutage = { stopped: false, restarted: false };
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: gatewayUrl,
        connections: 16,
        amount: LOAD_REQUESTS,
        timeout: 10,
        headers: { 'content-type': 'application/json' },
        requests: [
          { method: 'POST', path: '/v1/route', setupRequest: (req) => ({ ...req, body: JSON.stringify({ input: `never seen prompt ${prompt++}: translate this sentence about the weather` }) }) },
          { method: 'POST', path: '/v1/chat/completions', body: JSON.stringify({ model: 'lorauter', messages: [{ role: 'user', content: 'Is this review positive or negative? great film' }] }) },
          { method: 'POST', path: '/v1/chat/completions', body: JSON.stringify({ model: 'lorauter', stream: true, messages: [{ role: 'user', content: 'Summarize this article: the council voted' }] }) },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('response', (_client, statusCode) => {
      responses++;
      statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
      if (!redisOutage.stopped && responses >= LOAD_REQUESTS / 3) {
        redisOutage.stopped = true;
        void redis.stop();
      }
      if (redisOutage.stopped && !redisOutage.restarted && responses >= (2 * LOAD_REQUESTS) / 3) {
        redisOutage.restarted = true;
        void redis.restart();
      }
    });
  });
  const summary = Object.fromEntries([...statuses].sort(([a], [b]) => a - b));
  t.comment(`statuses ${JSON.stringify(summary)}, latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms, ${Math.round(result.requests.average)} req/s`);
  t.ok(redisOutage.stopped && redisOutage.restarted, 'Redis was stopped and restarted during the load');
  t.equal(result.errors, 0, 'no connection errors');
  t.equal(result.timeouts, 0, 'every request answered within its timeout');
  t.equal(responses, LOAD_REQUESTS, 'every request answered');
  t.equal(gateway.exitCode(), undefined, 'the gateway is still running');
  for (const status of statuses.keys()) t.ok([200, 500, 502, 504].includes(status), `status ${status} is a success or the upstream's fault`);
  const failed = LOAD_REQUESTS - (statuses.get(200) ?? 0);
  t.ok(failed <= 0.1 * ((2 * LOAD_REQUESTS) / 3) * 1.2 + 10, `${failed} failures: only the upstream's (10% of the chat calls)`);
  t.ok(result.latency.max < HEADERS_TIMEOUT_MS + 4000, `max latency ${result.latency.max} ms: stalls are cut at the upstream headers timeout`);
});

interface Hostile {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

/** A deterministic stream of hostile requests across every endpoint. */
function hostileRequests(count: number): Hostile[] {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
  const json = { 'content-type': 'application/json' };
  const admin = { ...json, authorization: `Bearer ${ADMIN}` };
  const endpoints: { method: 'POST' | 'PUT'; path: string; valid: Record<string, unknown>; headers?: Record<string, string> }[] = [
    { method: 'POST', path: '/v1/route', valid: { input: 'Translate to English: Guten Morgen', top_k: 2 } },
    { method: 'POST', path: '/v1/route', valid: { messages: [{ role: 'user', content: 'hi' }] } },
    { method: 'POST', path: '/v1/chat/completions', valid: { model: 'lorauter', messages: [{ role: 'user', content: 'hello' }], max_tokens: 5 } },
    { method: 'POST', path: '/v1/completions', valid: { model: 'lorauter', prompt: 'hello', max_tokens: 5 } },
    { method: 'POST', path: '/v1/embeddings', valid: { model: 'base', input: 'hello' } },
    { method: 'PUT', path: '/v1/tasks/fuzz-task', valid: { examples: ['a fuzzing example'], adapters: { sentiment: 0.5 } }, headers: admin },
    { method: 'PUT', path: '/v1/adapters/fuzz-adapter', valid: { path: '/adapters/x', rank: 8 }, headers: admin },
  ];
  const wrongValues: unknown[] = [null, 0, -1, 1e308, 'text', '', true, [], {}, [1, 'a', null], { nested: { deep: [] } }, 'x'.repeat(70_000)];
  const deep = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
  const mutations: ((endpoint: (typeof endpoints)[number]) => Omit<Hostile, 'method' | 'path'>)[] = [
    (e) => {
      const key = pick([...Object.keys(e.valid), 'unknown_field', 'lorauter']);
      return { name: `wrong type for ${key}`, body: JSON.stringify({ ...e.valid, [key]: pick(wrongValues) }) };
    },
    (e) => ({ name: 'deep nesting', body: `{"${Object.keys(e.valid)[0]}": ${deep(pick([130, 500, 5000]))}}` }),
    () => ({ name: 'huge string', body: JSON.stringify({ input: 'y'.repeat(pick([600_000, 1_200_000])), model: 'lorauter', prompt: 'z', messages: [] }) }),
    (e) => ({ name: 'huge array', body: JSON.stringify({ ...e.valid, input: Array.from({ length: pick([257, 5000]) }, () => 'a'), messages: Array.from({ length: pick([10, 20_000]) }, () => ({ role: 'user', content: 'a' })) }) }),
    (e) => ({ name: 'invalid UTF-8', body: Buffer.concat([Buffer.from(JSON.stringify(e.valid).slice(0, -1) + ',"x":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"}')]) }),
    (e) => ({ name: 'prototype keys', body: JSON.stringify(e.valid).replace(/^\{/, pick(['{"__proto__":{"polluted":1},', '{"constructor":{"prototype":{"polluted":1}},'])) }),
    () => ({ name: 'bad JSON', body: pick(['{', '{"input":', 'null', '[]', '"str"', '42', '{"a":1}}', '{"input": "a",}', '', '\u0000']) }),
    (e) => ({ name: 'wrong content type', body: JSON.stringify(e.valid), headers: { 'content-type': pick(['text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16']) } }),
    (e) => ({ name: 'wrong admin key', body: JSON.stringify(e.valid), headers: { ...json, authorization: pick(['Bearer wrong-key-123', 'Basic abc', 'Bearer ']) } }),
  ];
  const gets = ['/v1/models', '/v1/tasks', '/v1/tasks/%00', `/v1/tasks/${'a'.repeat(300)}`, '/v1/adapters/..%2F..%2Fetc', '/v1/route', '/healthz', '/nope', `/v1/${'x'.repeat(8000)}`, '/v1/tasks/sentiment?x=%ff'];
  const requests: Hostile[] = [];
  while (requests.length < count) {
    const roll = random();
    if (roll < 0.1) {
      const path = pick(gets);
      requests.push({ name: `GET ${path.slice(0, 40)}`, method: 'GET', path, headers: pick<Record<string, string>>([{}, { authorization: `Bearer ${ADMIN}` }]) });
      continue;
    }
    if (roll < 0.13) {
      requests.push({ name: 'DELETE', method: 'DELETE', path: pick(['/v1/tasks/nope', '/v1/adapters/sentiment', '/v1/tasks/%ff']), headers: { authorization: `Bearer ${ADMIN}` } });
      continue;
    }
    const endpoint = pick(endpoints);
    const mutation = pick(mutations)(endpoint);
    requests.push({ method: endpoint.method, path: endpoint.path, ...mutation, headers: { ...(endpoint.headers ?? json), ...mutation.headers }, name: `${endpoint.path}: ${mutation.name}` });
  }
  return requests;
}

/** Requests HTTP clients refuse to send: bad header bytes, huge headers, bad request lines, slow bodies. */
const RAW_HOSTILE: { name: string; data: string; expect: number }[] = [
  { name: 'header with a control character', data: 'POST /v1/route HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\nContent-Length: 2\r\n\r\n{}', expect: 400 },
  { name: 'two Content-Length headers', data: 'POST /v1/route HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', expect: 400 },
  { name: 'headers too large', data: `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, expect: 431 },
  { name: 'bad request line', data: 'POST /v1/route HTTP/9.9 extra\r\n\r\n', expect: 400 },
  { name: 'header without a colon', data: 'GET /healthz HTTP/1.1\r\nHost x\r\n\r\n', expect: 400 },
  { name: 'slow body', data: 'POST /v1/route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"input": "sl', expect: 408 },
  { name: 'slow headers', data: 'POST /v1/route HTTP/1.1\r\nHost: x\r\n', expect: 408 },
];

function sendRaw(data: string): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(data));
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
      resolve({ status, body: answer.slice(answer.indexOf('\r\n\r\n') + 4), ms: performance.now() - started });
    });
    socket.setTimeout(REQUEST_TIMEOUT_MS + 5000, () => socket.destroy());
  });
}

t.test(`hostile: ${HOSTILE_REQUESTS} generated bad requests at every endpoint, and raw protocol abuse`, async (t) => {
  const requests = hostileRequests(HOSTILE_REQUESTS);
  const dispatcher = new Agent({ connections: 16, headersTimeout: 10_000, bodyTimeout: 10_000 });
  t.teardown(() => dispatcher.close());
  const statuses = new Map<number, number>();
  const problems: string[] = [];
  let slowest = 0;
  let refusedWhileSending = 0;
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const item = requests[next++];
      const started = performance.now();
      try {
        const response = await request(`${gatewayUrl}${item.path}`, { method: item.method, headers: item.headers, body: item.body, dispatcher });
        const text = await response.body.text();
        slowest = Math.max(slowest, performance.now() - started);
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        if (response.statusCode >= 500) problems.push(`${item.name}: ${response.statusCode} ${text.slice(0, 200)}`);
        if (response.statusCode >= 400) {
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = text;
          }
          if (!isOpenAIError(body)) problems.push(`${item.name}: ${response.statusCode} not in the OpenAI error shape: ${text.slice(0, 200)}`);
        }
      } catch (error) {
        // A body over the limit is refused (413) before it is all sent, and the connection closed: a
        // client still writing may see the close before the answer. That is HTTP, not a lost request.
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (Buffer.byteLength(item.body ?? '') > BODY_LIMIT && ['EPIPE', 'ECONNRESET', 'UND_ERR_SOCKET'].includes(code)) refusedWhileSending++;
        else problems.push(`${item.name}: no answer (${(error as Error).message})`);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const raw = await Promise.all(RAW_HOSTILE.flatMap((item) => Array.from({ length: FULL ? 20 : 3 }, async () => ({ item, answer: await sendRaw(item.data) }))));
  for (const { item, answer } of raw) {
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    if (answer.status !== item.expect) problems.push(`${item.name}: ${answer.status}, expected ${item.expect}`);
    else if (!isOpenAIError(JSON.parse(answer.body || 'null'))) problems.push(`${item.name}: not in the OpenAI error shape: ${answer.body.slice(0, 200)}`);
    if (item.expect === 408 && answer.ms > REQUEST_TIMEOUT_MS + 1500) problems.push(`${item.name}: cut off after ${Math.round(answer.ms)} ms`);
  }
  t.comment(`statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}, slowest ${Math.round(slowest)} ms, ${requests.length + raw.length} requests, ${refusedWhileSending} bodies over the limit cut off while being sent`);
  t.same(problems.slice(0, 20), [], 'no 5xx, no unanswered request, every error OpenAI-shaped');
  t.ok((statuses.get(400) ?? 0) > requests.length / 3, 'most were refused as bad input');
  t.equal(gateway.exitCode(), undefined, 'the gateway is still running');
  t.equal((await fetch(`${gatewayUrl}/healthz`)).status, 200);
  const routed = await fetch(`${gatewayUrl}/v1/route`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'Translate to English: Guten Morgen' }) });
  t.equal(routed.status, 200, 'still routing');
});

t.test('memory is back near its baseline', async (t) => {
  // Heap in use counts garbage not yet collected: V8's memory reducer collects it once the process is idle, so the
  // check allows it up to 20 s to do so.
  const limit = baseline.heap * 2 + 64 * 2 ** 20;
  let after = await gateway.memory();
  for (const started = Date.now(); after.heap >= limit && Date.now() - started < 20_000; after = await gateway.memory()) await new Promise((resolve) => setTimeout(resolve, 1000));
  const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;
  t.comment(`RSS ${mb(baseline.rss)} before, ${mb(after.rss)} after; heap ${mb(baseline.heap)} before, ${mb(after.heap)} after`);
  t.ok(after.heap < limit, 'heap near baseline');
  t.ok(after.rss < baseline.rss + 256 * 2 ** 20, 'RSS near baseline');
});
