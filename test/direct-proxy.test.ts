// The direct path (src/http/direct-proxy.ts) answers the OpenAI prompt endpoints outside Fastify's request
// lifecycle. These tests send the same requests, good and bad, to a gateway with it and to one without it, and
// compare what comes back, what is logged and what is counted; and check which requests it takes.
import t, { type Test as Tap } from 'tap';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { startFakeVllm } from './fakes/vllm.js';
import { listenGateway, tinyLlamaRegistry } from './helpers/gateway.js';
import { until } from './helpers/wait.js';

const registry = await tinyLlamaRegistry();
const base = 'tiny-llama';
const sentiment = 'Is the sentiment of the following sentence positive or negative? a gorgeous, witty, seductive movie. OPTIONS: - negative - positive';
const BODY_LIMIT = 4096;

interface Sent {
  url?: string;
  headers?: Record<string, string>;
  body: string | Buffer;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request as the bytes given: the content length is the body's unless a header says otherwise. */
function send(url: string, sent: Sent): Promise<Answer> {
  const body = typeof sent.body === 'string' ? Buffer.from(sent.body) : sent.body;
  return new Promise((resolve, reject) => {
    const length = sent.headers?.['transfer-encoding'] ? {} : { 'content-length': String(body.length) };
    const request = httpRequest(`${url}${sent.url ?? '/v1/chat/completions'}`, { method: 'POST', headers: { 'content-type': 'application/json', ...length, ...sent.headers } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

// What differs between two answers to the same request whoever gives it: the clock, and the fake upstream's ids.
const normalBody = (body: string) => body.replace(/"created":\d+/g, '"created":0').replace(/"id":"(chatcmpl|cmpl|chunk)-\d+"/g, '"id":"$1"');
function normalHeaders(headers: IncomingHttpHeaders) {
  const { date: _date, ...rest } = headers;
  return rest;
}
const normalLine = (line: Record<string, unknown>): Record<string, unknown> => {
  const { time: _time, pid: _pid, hostname: _hostname, responseTime, req, ...rest } = line;
  return {
    ...rest,
    ...(responseTime === undefined ? {} : { responseTime: typeof responseTime }),
    // The two gateways listen on two ports.
    ...(req === undefined ? {} : { req: { ...(req as object), host: String((req as { host: unknown }).host).replace(/:\d+$/, ':port'), remotePort: typeof (req as { remotePort: unknown }).remotePort } }),
  };
};

async function gatewayPair(t: Tap) {
  const fake = await startFakeVllm({ baseModel: base, staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'], maxLoraRank: 64 });
  const start = async (directProxy: boolean) => {
    const seen = { byFastify: 0 };
    const countFastify = (app: FastifyInstance) => app.addHook('onRequest', (_request, _reply, done) => {
      seen.byFastify++;
      done();
    });
    const gateway = await listenGateway({ upstream: { url: fake.url, kind: 'vllm', baseModel: base, vllmMode: 'top1' }, temperature: 1, minConfidence: 0, defaultBaseExamples: false, bodyLimitBytes: BODY_LIMIT, directProxy }, { registry }, countFastify);
    return { ...gateway, seen };
  };
  const direct = await start(true);
  const fastify = await start(false);
  t.teardown(async () => {
    await direct.close();
    await fastify.close();
    await fake.stop();
  });
  return { fake, direct, fastify };
}

const chat = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'lorauter', messages: [{ role: 'user', content: sentiment }], ...extra });
const completion = (extra: Record<string, unknown>) => ({ url: '/v1/completions', body: JSON.stringify({ model: 'lorauter', ...extra }) });

// [what, the request, whether the direct path takes it]
const CASES: [string, Sent, boolean][] = [
  ['a routed chat', { body: chat() }, true],
  ['a routed chat, streamed', { body: chat({ stream: true }) }, true],
  ['a routed chat with routing options', { body: chat({ lorauter: { top_k: 2, temperature: 0.5 } }) }, true],
  ['a routed completion', completion({ prompt: sentiment }), true],
  ['a routed completion, streamed', completion({ prompt: sentiment, stream: true }), true],
  ['a routed completion of a prompt list', completion({ prompt: [sentiment, 'and again'] }), true],
  ['a chat to a named adapter', { body: chat({ model: 'sst2' }) }, true],
  ['a model the upstream does not know (its 404, reshaped)', { body: chat({ model: 'nope' }) }, true],
  ['a routed completion of token ids', completion({ prompt: [1, 2, 3] }), true],
  ['an empty prompt', completion({ prompt: '   ' }), true],
  ['messages with only whitespace', { body: chat({ messages: [{ role: 'user', content: ' \n ' }] }) }, true],
  ['an unknown task excluded', { body: chat({ lorauter: { exclude_tasks: ['no-such-task'] } }) }, true],
  ['an unknown routing option', { body: chat({ lorauter: { shortcut: true } }) }, true],
  ['no messages', { body: JSON.stringify({ model: 'lorauter' }) }, true],
  ['an empty message list', { body: chat({ messages: [] }) }, true],
  ['a model that is not a string', { body: chat({ model: 5 }) }, true],
  ['a stream flag that is not a boolean', { body: chat({ stream: 'yes' }) }, true],
  ['a body that is an array', { body: '[]' }, true],
  ['a body that is null', { body: 'null' }, true],
  ['JSON cut short', { body: '{"model":' }, true],
  ['an empty body', { body: '' }, true],
  ['a key that could reach a prototype', { body: '{"model":"lorauter","__proto__":{"polluted":true},"messages":[]}' }, true],
  ['JSON nested too deep', { body: `{"model":"lorauter","messages":[],"x":${'['.repeat(200)}${']'.repeat(200)}}` }, true],
  ['bytes that are not UTF-8 in a prompt', { body: Buffer.concat([Buffer.from('{"model":"lorauter","messages":[{"role":"user","content":"caf'), Buffer.from([0xe9, 0xff]), Buffer.from('"}]}')]) }, true],
  ['a content type with its charset', { body: chat(), headers: { 'content-type': 'application/json; charset=utf-8' } }, true],
  ['a request id of the client', { body: chat(), headers: { 'x-request-id': 'client-id.1:2' } }, true],
  ['a content type spelled otherwise', { body: chat(), headers: { 'content-type': 'Application/JSON' } }, false],
  ['a content type that is not JSON', { body: chat(), headers: { 'content-type': 'text/plain' } }, false],
  ['a body over the limit', { body: chat({ padding: 'x'.repeat(BODY_LIMIT) }) }, false],
  ['a query string', { body: chat(), url: '/v1/chat/completions?x=1' }, false],
  ['a trailing slash', { body: chat(), url: '/v1/chat/completions/' }, false],
  ['a body sent in chunks, with no length', { body: chat(), headers: { 'transfer-encoding': 'chunked' } }, false],
];

t.test('every request the direct path takes is answered, logged and counted as through Fastify; the others go through Fastify', async (t) => {
  const { direct, fastify } = await gatewayPair(t);
  for (const [what, sent, taken] of CASES) {
    // Each request its own id (unless the case is about the id), so that its log lines can be found.
    const id = `case-${CASES.findIndex(([name]) => name === what)}`;
    const headers = { 'x-request-id': id, ...sent.headers };
    const before = direct.seen.byFastify;
    const got = await send(direct.url, { ...sent, headers });
    const expected = await send(fastify.url, { ...sent, headers });
    t.equal(direct.seen.byFastify - before, taken ? 0 : 1, `${what}: ${taken ? 'taken by the direct path' : 'left to Fastify'}`);
    t.equal(got.status, expected.status, `${what}: the status (${expected.status})`);
    t.same(normalHeaders(got.headers), normalHeaders(expected.headers), `${what}: the headers`);
    t.equal(normalBody(got.body), normalBody(expected.body), `${what}: the body`);
    const requestId = headers['x-request-id'];
    const linesOf = (logs: Record<string, unknown>[]) => logs.filter((line) => line.reqId === requestId).map(normalLine);
    await until(() => linesOf(direct.logs).length === linesOf(fastify.logs).length && linesOf(fastify.logs).some((line) => line.msg === 'request completed'), `${what}: the last log line of both`);
    t.same(linesOf(direct.logs), linesOf(fastify.logs), `${what}: the log lines`);
  }
  // Every answer above counted alike (the route and status of each, the decisions, the upstream's answers).
  const counted = async (url: string) => (await (await fetch(`${url}/metrics`)).text()).split('\n').filter((line) => /^lorauter_(http_requests_total|route_decisions_total|upstream_requests_total|adapter_decisions_total)\{/.test(line) && !line.includes('/metrics'));
  const directCounts = await counted(direct.url);
  t.ok(directCounts.some((line) => line.startsWith('lorauter_http_requests_total{route="/v1/chat/completions",method="POST",status="400"}')), 'the direct path counts its answers');
  t.same(directCounts, await counted(fastify.url), 'the same counts');
});

t.test('a request without an id, or with one that is not a sane token, gets a new one, either way', async (t) => {
  const { direct, fastify } = await gatewayPair(t);
  for (const headers of [{}, { 'x-request-id': 'not a token\u00e9' }] as Record<string, string>[]) {
    for (const gateway of [direct, fastify]) {
      const before = gateway.seen.byFastify;
      const answer = await send(gateway.url, { body: chat(), headers });
      t.equal(answer.status, 200);
      t.match(answer.headers['x-request-id'], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a new UUID');
      t.equal(gateway.seen.byFastify - before, gateway === direct ? 0 : 1);
    }
  }
});

t.test('while the app closes, a request that still comes on an open connection goes through Fastify (503, connection closed)', async (t) => {
  const { fake, direct } = await gatewayPair(t);
  const { port } = direct.app.server.address() as { port: number };
  const body = chat();
  const raw = `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const socket = connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const ended = new Promise((resolve) => socket.on('close', resolve));
  // The first request is slow upstream: the app starts closing while it is in flight, the connection still open.
  fake.behaviour = { headersDelayMs: 300 };
  socket.write(raw);
  await until(() => fake.received.some((request) => request.path === '/v1/chat/completions'), 'the first request to reach the upstream');
  const closing = direct.app.close();
  await until(() => !direct.app.server.listening, 'the app to stop listening');
  // Pipelined on the same connection: it comes in while the first is answered.
  socket.write(raw);
  await ended;
  await closing;
  // The second answer follows the first body on the wire.
  const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
  t.same(statuses, [200, 503], 'the request in flight answered, the late one refused');
  const late = received.slice(received.lastIndexOf('HTTP/1.1'));
  t.match(late, /^connection: close\r$/im, 'and the connection closed');
  // Fastify answers it before any hook runs, with its own body.
  t.match(late, /\r\n\r\n\{"error":"Service Unavailable","message":"Service Unavailable","statusCode":503\}$/, 'by Fastify');
});
