import t, { type Test as Tap } from 'tap';
import { request as httpRequest } from 'node:http';
import { startFakeLlamaCpp } from './fakes/llamacpp.js';
import { FLAN_TASKS, listenGateway, startGateway } from './helpers/gateway.js';
import { freePort } from './helpers/redis.js';

const chat = (stream: boolean) => JSON.stringify({ model: 'lorauter', messages: [{ role: 'user', content: 'Translate to English: Guten Morgen' }], stream });
const post = (url: string, body: string) => fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

async function setup(t: Tap, upstream: Record<string, unknown> = {}) {
  const fake = await startFakeLlamaCpp(['/m/wmt16_translate_deen.gguf', '/m/sst2.gguf']);
  const gw = await listenGateway({ tasks: FLAN_TASKS, upstream: { url: fake.url, kind: 'llamacpp', ...upstream } });
  t.teardown(async () => {
    await gw.close();
    await fake.stop();
  });
  return { fake, gw };
}

t.test('chunks are forwarded as they arrive, not buffered', async (t) => {
  const { fake, gw } = await setup(t);
  fake.behaviour = { chunkDelayMs: 300, words: ['one', 'two', 'three', 'four'] };
  const started = Date.now();
  const response = await post(gw.url, chat(true));
  const reader = response.body!.getReader();
  const first = await reader.read();
  const firstAt = Date.now() - started;
  t.match(new TextDecoder().decode(first.value), /"content":"one"/);
  let rest = '';
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
  const totalAt = Date.now() - started;
  t.ok(firstAt < totalAt - 600, `first chunk at ${firstAt} ms, end at ${totalAt} ms`);
  t.match(rest, /data: \[DONE\]/);
});

t.test('a client that disconnects mid-stream aborts the upstream request', async (t) => {
  const { fake, gw } = await setup(t);
  fake.behaviour = { chunkDelayMs: 100, words: Array.from({ length: 50 }, (_, i) => `w${i}`) };
  const { port } = new URL(gw.url);
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => {});
    req.once('error', reject);
    req.end(chat(true));
  });
  let aborted = false;
  for (let i = 0; i < 100 && !aborted; i++) {
    await new Promise((r) => setTimeout(r, 20));
    aborted = fake.last('/v1/chat/completions').aborted;
  }
  t.ok(aborted, 'upstream saw the request aborted');
});

t.test('upstream failure mid-stream ends with an OpenAI error event and [DONE]', async (t) => {
  const { fake, gw } = await setup(t);
  fake.behaviour = { failAfterChunks: 2, chunkDelayMs: 10, words: ['a', 'b', 'c', 'd', 'e'] };
  const response = await post(gw.url, chat(true));
  t.equal(response.status, 200);
  const body = await response.text();
  const events = body.split('\n\n').filter(Boolean);
  t.equal(events.length, 4, 'two chunks, the error, [DONE]');
  const error = JSON.parse(events[2].replace(/^data: /, ''));
  t.match(error, { error: { message: String, type: 'upstream_error' } });
  t.ok('param' in error.error && 'code' in error.error);
  t.equal(events[3], 'data: [DONE]');
});

t.test('upstream down: 502 in the OpenAI shape, quickly', async (t) => {
  const port = await freePort();
  const gw = await listenGateway({ tasks: FLAN_TASKS, upstream: { url: `http://127.0.0.1:${port}`, kind: 'vllm' } });
  t.teardown(() => gw.close());
  const started = Date.now();
  const response = await post(gw.url, chat(false));
  t.equal(response.status, 502);
  t.match(await response.json(), { error: { type: 'upstream_error', code: 'upstream_unavailable', param: null } });
  t.ok(Date.now() - started < 3000, 'retries are bounded');
  const models = await fetch(`${gw.url}/v1/models`);
  t.equal(models.status, 200, '/v1/models degrades to the local list');
  t.ok((await models.json()).data.some((m: { id: string }) => m.id === 'lorauter'));
});

t.test('upstream slow: 504 after the configured timeout', async (t) => {
  const { fake, gw } = await setup(t, { headersTimeoutMs: 300 });
  fake.behaviour = { headersDelayMs: 2000 };
  const started = Date.now();
  const response = await post(gw.url, chat(false));
  const elapsed = Date.now() - started;
  t.equal(response.status, 504);
  t.match(await response.json(), { error: { type: 'timeout_error', code: 'upstream_timeout' } });
  t.ok(elapsed < 1800, `answered after ${elapsed} ms, not after the upstream's 2000`);
  const streamed = await post(gw.url, chat(true));
  t.equal(streamed.status, 504, 'also for streams before the first byte');
});

t.test('no upstream configured: 503; bad proxy requests: 400', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.close());
  const none = await gw.app.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: 'lorauter', messages: [{ role: 'user', content: 'hi' }] } });
  t.equal(none.statusCode, 503);
  t.match(none.json(), { error: { code: 'no_upstream' } });
  const cases: [unknown, string][] = [
    [{ messages: [{ role: 'user', content: 'hi' }] }, 'model'],
    [{ model: 'lorauter' }, 'messages'],
    [{ model: 'lorauter', messages: [] }, 'messages'],
    [{ model: 'lorauter', messages: [{ role: 'user', content: 'hi' }], lorauter: { top_k: 0 } }, 'lorauter.top_k'],
  ];
  for (const [payload, param] of cases) {
    const response = await gw.app.inject({ method: 'POST', url: '/v1/chat/completions', payload: payload as object });
    t.equal(response.statusCode, 400, param);
    t.equal(response.json().error.param, param);
  }
  const completion = await gw.app.inject({ method: 'POST', url: '/v1/completions', payload: { model: 'lorauter' } });
  t.equal(completion.statusCode, 400);
  t.equal(completion.json().error.param, 'prompt');
});

t.test('an upstream API key replaces the client\'s Authorization', async (t) => {
  const { fake, gw } = await setup(t, { apiKey: 'upstream-secret' });
  await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer client' }, body: chat(false) });
  t.equal(fake.last('/v1/chat/completions').headers.authorization, 'Bearer upstream-secret');
});

t.test('a stream that ends cleanly without [DONE] gets an error event and [DONE]', async (t) => {
  const { fake, gw } = await setup(t);
  fake.behaviour = { omitDone: true, words: ['one', 'two'] };
  const text = await (await post(gw.url, chat(true))).text();
  t.match(text, /"content":"one"[\s\S]*"content":" two"/, 'what came is relayed');
  t.match(text, /data: \{"error":\{"message":"The upstream ended the stream before data: \[DONE\]\."/);
  t.match(text, /data: \[DONE\]\n\n$/);
});

t.test('an upstream 200 that is not JSON is a 502; a redirect is a 502; cookies, auth challenges and CORS headers stay upstream', async (t) => {
  const { fake, gw } = await setup(t);
  fake.behaviour = { respond: (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('<html>oops</html>') };
  const broken = await post(gw.url, chat(false));
  t.equal(broken.status, 502);
  t.match(await broken.json(), { error: { code: 'bad_upstream_response', message: /not JSON/ } });
  fake.behaviour = { respond: (res) => res.writeHead(302, { location: 'http://elsewhere.example/' }).end() };
  const redirected = await post(gw.url, chat(false));
  t.equal(redirected.status, 502);
  t.equal(redirected.headers.get('location'), null);
  fake.behaviour = {
    respond: (res) =>
      res
        .writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'session=upstream', 'www-authenticate': 'Basic', 'access-control-allow-origin': '', 'access-control-allow-credentials': 'true', 'x-upstream-ok': '1' })
        .end(JSON.stringify({ id: 'x', object: 'chat.completion', model: 'm', choices: [] })),
  };
  const answered = await post(gw.url, chat(false));
  t.equal(answered.status, 200);
  t.equal(answered.headers.get('set-cookie'), null);
  t.equal(answered.headers.get('www-authenticate'), null);
  t.equal(answered.headers.get('access-control-allow-origin'), null, "the upstream's CORS policy stays with it");
  t.equal(answered.headers.get('access-control-allow-credentials'), null);
  t.equal(answered.headers.get('x-upstream-ok'), '1', 'other headers still pass');
});

t.test('an upstream answer beyond LORAUTER_UPSTREAM_MAX_ANSWER_BYTES is a 502, its length declared or chunked; one within it passes whole', async (t) => {
  const { fake, gw } = await setup(t, { maxAnswerBytes: 2048 });
  const answer = (content: string) => JSON.stringify({ id: 'x', object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] });
  const big = answer('a'.repeat(5000));
  // Without a content-length, Node's server sends the writes as chunks.
  const inChunks = (text: string, status = 200) => (res: import('node:http').ServerResponse) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    for (let at = 0; at < text.length; at += 700) res.write(text.slice(at, at + 700));
    res.end();
  };
  // The driver's adapter table is read first, while the fake still answers as llama.cpp does.
  t.equal((await post(gw.url, chat(false))).status, 200);
  const tooLarge = { error: { type: 'upstream_error', code: 'upstream_answer_too_large', message: /more than 2048 bytes \(LORAUTER_UPSTREAM_MAX_ANSWER_BYTES\)/ } };
  fake.behaviour = { respond: (res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(big)) }).end(big) };
  const declared = await post(gw.url, chat(false));
  t.equal(declared.status, 502, 'declared too large');
  t.match(await declared.json(), tooLarge);
  fake.behaviour = { respond: inChunks(big) };
  const chunked = await post(gw.url, chat(false));
  t.equal(chunked.status, 502, 'chunked, too large as it comes');
  t.match(await chunked.json(), tooLarge);
  fake.behaviour = { respond: inChunks(JSON.stringify({ error: { message: 'x'.repeat(5000) } }), 500) };
  const error = await post(gw.url, chat(false));
  t.equal(error.status, 502, 'an error answer is bounded too');
  t.match(await error.json(), tooLarge);
  const within = answer('b'.repeat(1500));
  fake.behaviour = { respond: inChunks(within) };
  const whole = await post(gw.url, chat(false));
  t.equal(whole.status, 200, 'chunked within the bound');
  t.match(await whole.json(), { model: 'lorauter', choices: [{ message: { content: 'b'.repeat(1500) } }] }, 'read whole, model renamed');
  fake.behaviour = {};
  t.equal((await post(gw.url, chat(false))).status, 200, 'later requests are served');
});

t.test('every error is in the OpenAI shape: deep JSON nesting, HTTP parser errors', async (t) => {
  const { gw } = await setup(t);
  let nested: unknown = 'x';
  for (let i = 0; i < 4100; i++) nested = [nested];
  const deep = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'lorauter', messages: [{ role: 'user', content: nested }] }) });
  t.equal(deep.status, 400);
  t.match(await deep.json(), { error: { type: 'invalid_request_error', code: 'too_deep' } });
  const ok = await fetch(`${gw.url}/v1/route`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'a normal prompt' }) });
  t.equal(ok.status, 200, 'ordinary bodies are untouched');

  const { connect } = await import('node:net');
  const raw = (payload: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
      let answer = '';
      socket.on('data', (chunk) => (answer += chunk));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
      socket.write(payload);
    });
  const garbage = await raw('THIS IS NOT HTTP\r\n\r\n');
  t.match(garbage, /^HTTP\/1\.1 400 Bad Request/);
  t.match(JSON.parse(garbage.split('\r\n\r\n')[1]), { error: { type: 'invalid_request_error', code: 'bad_request' } });
  const huge = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`);
  t.match(huge, /^HTTP\/1\.1 431 /);
  t.match(JSON.parse(huge.split('\r\n\r\n')[1]), { error: { code: 'headers_too_large' } });
});

t.test('a huge prompt is routed on a bounded part of it', async (t) => {
  const { boundedText } = await import('../src/router/router.js');
  t.equal(boundedText('abcdef', 10), 'abcdef');
  t.equal(boundedText('0123456789', 4), '01\n89', 'first and last halves');
  const gw = await listenGateway({ tasks: FLAN_TASKS, maxRoutedChars: 2048 });
  t.teardown(() => gw.close());
  const prompt = `Translate to English: Guten Morgen. ${'filler words here '.repeat(50_000)} Translate to English: Guten Morgen.`;
  const started = Date.now();
  const huge = await fetch(`${gw.url}/v1/route`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: prompt }) });
  const tookMs = Date.now() - started;
  t.equal(huge.status, 200);
  const expected = await gw.gateway.router.route(boundedText(prompt, 2048));
  t.same((await huge.json()).tasks.map((task: { id: string }) => task.id), expected.tasks.map((task) => task.id), 'the same decision as for the bounded text');
  t.ok(tookMs < 3000, `a 900 kB prompt routed in ${tookMs} ms`);

});

t.test('shutdown: /readyz says 503 while still serving (drain), then open streams end with an error event and [DONE]', async (t) => {
  const { startServer } = await import('../src/server.js');
  const { loadConfig } = await import('../src/config/load.js');
  const fake = await startFakeLlamaCpp(['/m/wmt16_translate_deen.gguf']);
  t.teardown(() => fake.stop());
  fake.behaviour = { chunkDelayMs: 100, words: Array.from({ length: 100 }, (_, i) => `w${i}`) };
  const config = loadConfig({ env: {}, overrides: { logLevel: 'silent', port: 0, host: '127.0.0.1', tasks: FLAN_TASKS, shutdownDrainSeconds: 0.4, shutdownGraceSeconds: 0.6, upstream: { url: fake.url, kind: 'llamacpp' } } });
  const server = await startServer(config);
  const streaming = await post(server.url, chat(true));
  // The stream has begun once its first word arrived; the rest is read as it comes.
  const reader = streaming.body!.getReader();
  let body = '';
  while (!body.includes('"content":"w0"')) {
    const part = await reader.read();
    if (part.done) break;
    body += new TextDecoder().decode(part.value);
  }
  const rest = (async () => {
    for (let part = await reader.read(); !part.done; part = await reader.read()) body += new TextDecoder().decode(part.value);
    return body;
  })();
  const started = Date.now();
  const stopped = server.stop();
  let ready = await fetch(`${server.url}/readyz`);
  for (const deadline = Date.now() + 5000; ready.status !== 503 && Date.now() < deadline; ) ready = await fetch(`${server.url}/readyz`);
  t.equal(ready.status, 503, 'not ready while draining');
  t.equal((await post(server.url, chat(false))).status, 200, 'still serving while draining');
  await stopped;
  const elapsed = Date.now() - started;
  // The stream alone would take 10 s: it was cut at drain + grace (1 s), with room for a busy machine.
  t.ok(elapsed >= 900 && elapsed < 8000, `stopped after drain and grace: ${elapsed} ms`);
  await rest;
  t.match(body, /"content":"w0"/);
  t.match(body, /data: \{"error":\{"message":"The gateway is shutting down; the answer was cut short\.","type":"service_unavailable","param":null,"code":"shutting_down"\}\}\n\ndata: \[DONE\]\n\n$/);
});

t.test('shutdown: a pass-through answer still open at the grace deadline is ended too', async (t) => {
  const { startServer } = await import('../src/server.js');
  const { loadConfig } = await import('../src/config/load.js');
  const fake = await startFakeLlamaCpp(['/m/wmt16_translate_deen.gguf']);
  t.teardown(() => fake.stop());
  // /tokenize passes through untouched; this one sends its headers and a first part, then nothing more.
  fake.behaviour = { respond: (res) => void (res.writeHead(200, { 'content-type': 'text/plain' }), res.write('first part')) };
  const config = loadConfig({ env: {}, overrides: { logLevel: 'silent', port: 0, host: '127.0.0.1', tasks: FLAN_TASKS, shutdownDrainSeconds: 0, shutdownGraceSeconds: 0.3, upstream: { url: fake.url, kind: 'llamacpp' } } });
  const server = await startServer(config);
  const response = await fetch(`${server.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"content":"hi"}' });
  t.equal(response.headers.get('x-lorauter-composition'), 'passthrough');
  const reader = response.body!.getReader();
  t.equal(new TextDecoder().decode((await reader.read()).value), 'first part', 'the first part arrived');
  t.equal(server.gateway.inflight.size, 1, 'registered as in flight');
  const started = Date.now();
  const stop = await Promise.race([server.stop().then(() => 'stopped'), new Promise((resolve) => setTimeout(() => resolve('still stopping after 5 s'), 5000))]);
  t.equal(stop, 'stopped');
  const ended = await Promise.race([reader.read().then(() => 'ended', () => 'ended'), new Promise((resolve) => setTimeout(() => resolve('still open'), 5000))]);
  t.equal(ended, 'ended', 'the client sees the answer end');
  t.ok(Date.now() - started < 5000, `stopped at the grace deadline, not at the upstream's pace: ${Date.now() - started} ms`);
});

t.test('bounded upstream concurrency: a burst beyond slots and queue gets 503 with Retry-After, never an unbounded wait', async (t) => {
  const { fake, gw } = await setup(t, { maxConcurrency: 2, maxQueue: 1, queueTimeoutMs: 300 });
  fake.behaviour = { headersDelayMs: 800 };
  const started = Date.now();
  const answers = await Promise.all(Array.from({ length: 5 }, () => post(gw.url, chat(false))));
  const statuses = answers.map((answer) => answer.status).sort();
  t.same(statuses, [200, 200, 503, 503, 503], 'two slots served; the queued one timed out; two refused at once');
  const refused = answers.find((answer) => answer.status === 503)!;
  t.equal(refused.headers.get('retry-after'), '1');
  t.match(await refused.json(), { error: { type: 'service_unavailable', code: 'upstream_busy' } });
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  t.match(metrics, /lorauter_upstream_requests_total\{upstream="llamacpp",endpoint="chat",outcome="busy"\} 3/, 'counted as busy (what the upstream_busy alert reads)');
  // The fake delays every answer, /lora-adapters included: two delays for the served ones.
  t.ok(Date.now() - started < 4000, 'nobody waited past the queue timeout and the upstream answers');
  fake.behaviour = {};
  t.equal((await post(gw.url, chat(false))).status, 200, 'slots are released afterwards');
  t.equal((await post(gw.url, chat(true))).status, 200);
  t.equal((await post(gw.url, chat(true))).status, 200, 'a finished stream released its slot');
  t.equal((await post(gw.url, chat(true))).status, 200);
});

t.test('bounded upstream concurrency: a queued request is served when a slot frees; only the overflow is refused', async (t) => {
  const { fake, gw } = await setup(t, { maxConcurrency: 2, maxQueue: 1, queueTimeoutMs: 5000 });
  fake.behaviour = { headersDelayMs: 400 };
  const answers = await Promise.all(Array.from({ length: 5 }, () => post(gw.url, chat(false))));
  t.same(answers.map((answer) => answer.status).sort(), [200, 200, 200, 503, 503], 'two slots, one queued then served, two refused at once');
});
