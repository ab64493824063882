import t, { type Test as Tap } from 'tap';
import OpenAI from 'openai';
import { startFakeLlamaCpp } from './fakes/llamacpp.js';
import { startFakeLorax } from './fakes/lorax.js';
import { startFakeVllm } from './fakes/vllm.js';
import { listenGateway, tinyLlamaRegistry } from './helpers/gateway.js';

const mixedPrompt = 'Translate to English and say whether it is positive: Das Restaurant The Eagle ist ein schönes Café.';

async function gatewayOver(t: Tap, fake: { url: string; stop(): Promise<void> }, upstream: Record<string, unknown>) {
  const gw = await listenGateway({ upstream: { url: fake.url, ...upstream }, temperature: 1, minConfidence: 0, defaultBaseExamples: false }, { registry: await tinyLlamaRegistry() });
  t.teardown(async () => {
    await gw.close();
    await fake.stop();
  });
  return { gw, client: new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'client-key', maxRetries: 0 }) };
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer client-key', ...headers }, body: JSON.stringify(body) });

t.test('vLLM: embeddings, responses (stream too), tokenize and detokenize pass through untouched', async (t) => {
  const fake = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2'] });
  const { gw, client } = await gatewayOver(t, fake, { kind: 'vllm', vllmMode: 'top1', baseModel: 'tiny-llama' });
  const embeddings = await client.embeddings.create({ model: 'tiny-llama', input: ['ab', 'abcd'] });
  t.same(embeddings.data.map((row) => row.embedding), [[2, 0, 1], [4, 1, 1]]);
  t.same(fake.last('/v1/embeddings').body, { model: 'tiny-llama', input: ['ab', 'abcd'], encoding_format: 'base64' } , 'the body arrives as the client sent it');
  t.equal(fake.last('/v1/embeddings').headers.authorization, 'Bearer client-key');

  const response = await post(`${gw.url}/v1/responses`, { model: 'sst2', input: 'hello' });
  t.equal(response.status, 200);
  t.equal(response.headers.get('x-lorauter-composition'), 'passthrough');
  t.match(await response.json(), { object: 'response', model: 'sst2', output: [{ content: [{ text: 'response from sst2' }] }] });
  const streamed = await post(`${gw.url}/v1/responses`, { model: 'sst2', input: 'hello', stream: true });
  t.match(streamed.headers.get('content-type'), /text\/event-stream/);
  const events = await streamed.text();
  t.match(events, /response\.output_text\.delta[\s\S]*response\.completed/, 'stream relayed as it came');

  const tokenized = await (await post(`${gw.url}/tokenize`, { prompt: 'hello brave world' })).json();
  t.equal(tokenized.count, 3);
  const detokenized = await (await post(`${gw.url}/detokenize`, { tokens: tokenized.tokens })).json();
  t.same(detokenized, { prompt: 'hello brave world' });

  const missing = await post(`${gw.url}/v1/responses`, { model: 'nope', input: 'x' });
  t.equal(missing.status, 404, "the upstream's error status is kept");
  const unknown = await post(`${gw.url}/v1/unknown-endpoint`, {});
  t.equal(unknown.status, 404);
  t.match(await unknown.json(), { error: { message: /no route POST \/v1\/unknown-endpoint/ } }, "the upstream's own 404");
});

t.test('a routed answer reports the model the client asked for, not the merged adapter', async (t) => {
  const fake = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'], maxLoraRank: 64 });
  const { client } = await gatewayOver(t, fake, { kind: 'vllm', vllmMode: 'merge', mergeDir: t.testdir({}), maxLoraRank: 64, baseModel: 'tiny-llama', mergeMinWeight: 0, mergeWaitMs: 30_000, mergeWarmStart: false });
  const { data, response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }] }).withResponse();
  t.match(response.headers.get('x-lorauter-composition'), /^merge; adapter=lorauter-merge-/);
  t.match(fake.last('/v1/chat/completions').body.model, /^lorauter-merge-/);
  t.equal(data.model, 'lorauter');
  const stream = await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: mixedPrompt }], stream: true });
  const models = new Set<string>();
  for await (const chunk of stream) models.add(chunk.model);
  t.same([...models], ['auto'], 'every streamed chunk says the name the client used');
});

t.test('llama.cpp: a request naming an adapter gets that adapter at scale 1; other paths pass through', async (t) => {
  const fake = await startFakeLlamaCpp(['/models/sst2.gguf', '/models/wmt16_translate_deen.gguf', '/models/e2e_nlg.gguf']);
  const { gw, client } = await gatewayOver(t, fake, { kind: 'llamacpp', baseModel: 'tiny-llama' });
  const { data, response } = await client.chat.completions.create({ model: 'sst2', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  const sent = fake.last('/v1/chat/completions').body;
  t.same(sent.lora, [{ id: 0, scale: 1 }], 'the named adapter alone, at scale 1');
  t.equal(sent.model, 'tiny-llama');
  t.equal(response.headers.get('x-lorauter-composition'), 'adapter; id=sst2');
  t.equal(data.model, 'sst2');
  await client.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: 'hi' }] });
  t.notOk('lora' in fake.last('/v1/chat/completions').body, 'the base model name passes through untouched');
  const tokens = await (await post(`${gw.url}/tokenize`, { content: 'a b c' })).json();
  t.equal(tokens.tokens.length, 3);
  t.same(await (await post(`${gw.url}/detokenize`, { tokens: tokens.tokens })).json(), { content: 'a b c' });
});

t.test('LoRAX: /tokenize passes through; a non-JSON body goes as bytes', async (t) => {
  const fake = await startFakeLorax();
  const { gw } = await gatewayOver(t, fake, { kind: 'lorax' });
  const tokens = await (await post(`${gw.url}/tokenize`, { inputs: 'one two' })).json();
  t.same(tokens.map((token: { text: string }) => token.text), ['one', 'two']);
  const raw = await fetch(`${gw.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'not json' });
  t.equal(raw.status, 422, "LoRAX's answer to a body it cannot read, relayed");
  t.equal(fake.last('/tokenize').body, 'not json', 'the bytes reached the upstream unchanged');
});

t.test('without an upstream, other paths are a 404 in the OpenAI shape', async (t) => {
  const { startGateway } = await import('./helpers/gateway.js');
  const gw = await startGateway();
  t.teardown(() => gw.close());
  const response = await gw.app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input: 'x' } });
  t.equal(response.statusCode, 404);
  t.match(response.json(), { error: { type: 'not_found_error', code: 'unknown_url', message: /No upstream is configured/ } });
});

t.test('llama.cpp prompt cache: auto turns it off when the adapter set changes, off always, on never', async (t) => {
  const sentiment = 'Is the sentiment of the following sentence positive or negative? a gorgeous, witty, seductive movie.';
  const translation = 'Translate to English: Das Wetter ist heute sehr schön.';
  const cases: [string, (boolean | undefined)[]][] = [
    ['auto', [false, undefined, false, false]],
    ['off', [false, false, false, false]],
    ['on', [undefined, undefined, undefined, undefined]],
  ];
  for (const [mode, expected] of cases) {
    const fake = await startFakeLlamaCpp(['/models/sst2.gguf', '/models/wmt16_translate_deen.gguf', '/models/e2e_nlg.gguf']);
    const { client } = await gatewayOver(t, fake, { kind: 'llamacpp', llamacppCachePrompt: mode });
    const sent: (boolean | undefined)[] = [];
    for (const prompt of [sentiment, sentiment, translation, sentiment]) {
      await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: prompt }] });
      sent.push(fake.last('/v1/chat/completions').body.cache_prompt);
    }
    t.same(sent, expected, `${mode}: cache_prompt per request (same set, same set, other set, back)`);
  }
});

t.test('pass-through errors are OpenAI-shaped; the gateway\'s own paths and bad URLs never reach the upstream', async (t) => {
  const fake = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2'] });
  const { gw } = await gatewayOver(t, fake, { kind: 'vllm', vllmMode: 'top1', baseModel: 'tiny-llama' });
  // FastAPI's own 404 for an unknown path: {"detail": "Not Found"}.
  fake.route('GET', '/v1/fastapi-style', (_request, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"detail":"Not Found"}');
  });
  const fastapi = await fetch(`${gw.url}/v1/fastapi-style`);
  t.equal(fastapi.status, 404);
  t.same(await fastapi.json(), { error: { message: 'Not Found', type: 'upstream_error', param: null, code: '404' } });
  // An error with message and type but no param or code gets them.
  const partial = await fetch(`${gw.url}/v1/no-such-path`);
  t.same(Object.keys((await partial.json()).error).sort(), ['code', 'message', 'param', 'type']);

  const before = fake.received.length;
  const wrongMethod = await fetch(`${gw.url}/v1/route`);
  t.equal(wrongMethod.status, 405);
  t.equal(wrongMethod.headers.get('allow'), 'POST');
  t.equal((await wrongMethod.json()).error.code, 'method_not_allowed');
  const longId = await fetch(`${gw.url}/v1/tasks/${'a'.repeat(300)}`);
  t.equal(longId.status, 404);
  const badUrl = await fetch(`${gw.url}/v1/tasks/%ff`);
  t.equal(badUrl.status, 400);
  t.equal((await badUrl.json()).error.code, 'invalid_url');
  t.equal(fake.received.length, before, 'none of them reached the upstream');
});

t.test('routed requests the client got wrong are 400s naming the field, whether the prompt was routed before or not', async (t) => {
  const fake = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'] });
  const { gw } = await gatewayOver(t, fake, { kind: 'vllm', vllmMode: 'top1', baseModel: 'tiny-llama' });
  const chat = (body: Record<string, unknown>) => post(`${gw.url}/v1/chat/completions`, { model: 'lorauter', ...body });
  const routedBefore = await chat({ messages: [{ role: 'user', content: mixedPrompt }] });
  t.equal(routedBefore.status, 200, 'the prompt is in the decision cache from here on');
  for (const [what, response, param, code] of [
    ['a blank last user turn', await chat({ messages: [{ role: 'user', content: '   ' }] }), 'messages', 'empty_input'],
    ['an unknown excluded task, new prompt', await chat({ messages: [{ role: 'user', content: `${mixedPrompt} (new)` }], lorauter: { exclude_tasks: ['no_such_task'] } }), 'lorauter.exclude_tasks', 'unknown_task'],
    ['an unknown excluded task, cached prompt', await chat({ messages: [{ role: 'user', content: mixedPrompt }], lorauter: { exclude_tasks: ['no_such_task'] } }), 'lorauter.exclude_tasks', 'unknown_task'],
    ['a blank completions prompt', await post(`${gw.url}/v1/completions`, { model: 'lorauter', prompt: ' ' }), 'prompt', 'empty_input'],
    ['a token-id completions prompt', await post(`${gw.url}/v1/completions`, { model: 'lorauter', prompt: [1, 2, 3] }), 'prompt', 'invalid_value'],
  ] as const) {
    t.equal(response.status, 400, what);
    t.match(await response.json(), { error: { type: 'invalid_request_error', param, code, message: String } }, what);
  }
  t.equal(fake.received.filter((request) => request.path === '/v1/chat/completions' || request.path === '/v1/completions').length, 1, 'none of them reached the upstream');
});
