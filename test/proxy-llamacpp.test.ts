import t from 'tap';
import OpenAI from 'openai';
import { startFakeLlamaCpp } from './fakes/llamacpp.js';
import { FLAN_TASKS, listenGateway } from './helpers/gateway.js';

const fake = await startFakeLlamaCpp(['/models/sst2.gguf', '/models/imdb_reviews.gguf', '/models/yelp_polarity_reviews.gguf', '/models/wmt16_translate_deen.gguf']);
// These tests are about composing mixtures: no abstention (tested in abstention.test.ts).
const gw = await listenGateway({ tasks: FLAN_TASKS, upstream: { url: fake.url, kind: 'llamacpp', baseModel: 'tiny-llama' }, minConfidence: 0, defaultBaseExamples: false });
t.teardown(async () => {
  await gw.close();
  await fake.stop();
});
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'client-key', maxRetries: 0 });
const sentiment = 'Is the sentiment of the following sentence positive or negative? a gorgeous, witty, seductive movie. OPTIONS: - negative - positive';

t.test('chat, non-stream: the mixture reaches llama.cpp as lora [{id, scale}]', async (t) => {
  const { data, response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: sentiment }] }).withResponse();
  const sent = fake.last('/v1/chat/completions').body;
  t.ok(Array.isArray(sent.lora), 'lora is an array');
  t.equal(sent.model, 'tiny-llama', 'base model name');
  const header = response.headers.get('x-lorauter-adapters')!;
  const weights = Object.fromEntries(header.split(',').map((pair) => pair.split('=')).map(([id, w]) => [id, Number(w)]));
  const ids: Record<string, number> = { sst2: 0, imdb_reviews: 1, yelp_polarity_reviews: 2, wmt16_translate_deen: 3 };
  for (const entry of sent.lora) {
    const name = Object.keys(ids).find((key) => ids[key] === entry.id)!;
    t.ok(Math.abs(entry.scale - weights[name]) < 1e-3, `${name}: scale ${entry.scale} = weight ${weights[name]}`);
  }
  const loaded = Object.keys(weights).filter((id) => id in ids);
  t.equal(sent.lora.length, loaded.length, 'only chosen adapters that llama.cpp has loaded');
  t.match(response.headers.get('x-lorauter-composition'), /^mixture/);
  t.ok(response.headers.get('x-lorauter-tasks'));
  t.ok(response.headers.get('x-request-id'));
  t.equal(fake.last('/v1/chat/completions').headers['x-request-id'], response.headers.get('x-request-id'), 'request id forwarded upstream');
  t.equal(fake.last('/v1/chat/completions').headers.authorization, 'Bearer client-key', 'authorization forwarded');
  t.match(data.choices[0].message.content, /hello from llama\.cpp lora:/);
});

t.test('chat, stream: chunks pass through and [DONE] is kept', async (t) => {
  const stream = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: sentiment }], stream: true });
  const pieces: string[] = [];
  for await (const chunk of stream) pieces.push(chunk.choices[0]?.delta?.content ?? '');
  t.match(pieces.join(''), /^hello from llama\.cpp lora:0=/);
  const raw = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'lorauter', messages: [{ role: 'user', content: sentiment }], stream: true }),
  });
  t.match(raw.headers.get('content-type'), /text\/event-stream/);
  const body = await raw.text();
  t.match(body, /data: \[DONE\]\n\n$/);
});

t.test('completions use the OpenAI endpoint with lora attached', async (t) => {
  const completion = await client.completions.create({ model: 'auto', prompt: 'Translate to English: Guten Morgen, wie geht es dir?' });
  t.match(completion.choices[0].text, /lora:/);
  const sent = fake.last('/v1/completions').body;
  t.ok(sent.lora.some((entry: { id: number }) => entry.id === 3), 'translation adapter chosen');
});

t.test('a named model passes through untouched', async (t) => {
  const body = { model: 'tiny-llama', messages: [{ role: 'user', content: 'hi' }], temperature: 0.3, lora: [{ id: 1, scale: 0.5 }] };
  const response = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  t.equal(response.status, 200);
  t.same(fake.last('/v1/chat/completions').body, body);
  t.equal(response.headers.get('x-lorauter-composition'), 'passthrough');
  t.equal(response.headers.get('x-lorauter-adapters'), null);
});

t.test('llama.cpp errors pass through with their status', async (t) => {
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny-llama', messages: [{ role: 'user', content: 'hi' }], lora: { id: 0 } }),
  });
  t.equal(response.status, 400);
  t.match(await response.json(), { error: { message: /'lora' must be an array/ } });
});

t.test('adapters unknown to llama.cpp are left out; the id table is read again at most once in 5 s, not once a request', async (t) => {
  const before = fake.received.filter((r) => r.path === '/lora-adapters').length;
  const ask = () =>
    client.chat.completions
      .create({ model: 'lorauter', messages: [{ role: 'user', content: 'Premise: a man plays guitar. Hypothesis: a person makes music. Does the premise entail the hypothesis?' }] })
      .withResponse();
  const answers = await Promise.all(Array.from({ length: 6 }, ask));
  for (const { response } of answers) t.match(response.headers.get('x-lorauter-composition'), /missing=/);
  t.ok(fake.received.filter((r) => r.path === '/lora-adapters').length - before <= 1, 'six requests, at most one more read of /lora-adapters');
  t.ok(Array.isArray(fake.last('/v1/chat/completions').body.lora));
});

t.test('/v1/models merges the router, registry and upstream models', async (t) => {
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  for (const id of ['lorauter', 'auto', 'tiny-llama', 'sst2', 'tiny-llama.gguf']) t.ok(ids.includes(id), id);
  t.equal(new Set(ids).size, ids.length, 'no duplicates');
});

t.test("native /completion: routed when model is absent or the router's, lora attached", async (t) => {
  const response = await fetch(`${gw.url}/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: sentiment, n_predict: 8 }) });
  t.equal(response.status, 200);
  t.match(await response.json(), { content: /^hello lora:0=/ });
  const sent = fake.last('/completion').body;
  t.equal(sent.n_predict, 8);
  t.ok(Array.isArray(sent.lora) && sent.lora.length > 0);
  t.notOk('model' in sent);
  t.ok(response.headers.get('x-lorauter-adapters'));
  const streamed = await fetch(`${gw.url}/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: sentiment, stream: true }) });
  const text = await streamed.text();
  t.match(text, /^data: \{"content":"hello lora:0=/);
  t.match(text, /"stop":true/);
  const passthrough = await fetch(`${gw.url}/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'hi', model: 'tiny-llama' }) });
  t.equal(passthrough.headers.get('x-lorauter-composition'), 'passthrough');
  t.equal(fake.last('/completion').body.model, 'tiny-llama');
});

t.test('a llama.cpp restart with other adapters: the rejected id table is read again', async (t) => {
  const translate = 'Translate to English: Guten Morgen, wie geht es dir?';
  const only = (extra: object = {}) => ({ model: 'lorauter', prompt: translate, lorauter: { top_k: 1 }, ...extra }) as never;
  await client.completions.create(only());
  t.same(fake.last('/v1/completions').body.lora, [{ id: 3, scale: 1 }]);
  const removed = fake.adapters.splice(3);
  t.teardown(() => void fake.adapters.push(...removed));
  t.equal((await client.completions.create(only()).catch((error) => error)).status, 400, 'the stale id is rejected by llama.cpp');
  const before = fake.received.filter((r) => r.path === '/lora-adapters').length;
  const { response } = await client.completions.create(only()).withResponse();
  t.ok(fake.received.filter((r) => r.path === '/lora-adapters').length > before, 'table fetched again');
  t.match(response.headers.get('x-lorauter-composition'), /missing=wmt16_translate_deen/);
});
