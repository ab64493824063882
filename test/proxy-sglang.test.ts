import t, { type Test as Tap } from 'tap';
import OpenAI from 'openai';
import { readPeftAdapter } from '../src/lora/adapter.js';
import { deltaWeight } from '../src/lora/merge.js';
import { startFakeSglang } from './fakes/sglang.js';
import { listenGateway, startGateway, tinyLlamaRegistry } from './helpers/gateway.js';

const registry = await tinyLlamaRegistry();
const base = 'tiny-llama';
const sentiment = 'Is the sentiment of the following sentence positive or negative? a gorgeous, witty, seductive movie. OPTIONS: - negative - positive';
const mixedPrompt = 'Translate to English and say whether it is positive: Das Restaurant The Eagle ist ein schönes Café.';

async function setup(t: Tap, upstream: Record<string, unknown>, overrides: Record<string, unknown> = { minConfidence: 0, defaultBaseExamples: false }) {
  const fake = await startFakeSglang({ baseModel: base, staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'], maxLoraRank: 64 });
  const gw = await listenGateway({ upstream: { url: fake.url, kind: 'sglang', baseModel: base, ...upstream }, temperature: 1, ...overrides }, { registry });
  t.teardown(async () => {
    await gw.close();
    await fake.stop();
  });
  return { fake, gw, client: new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 }) };
}

t.test('top1: the heaviest adapter as "base:adapter", stream and non-stream', async (t) => {
  const { fake, client } = await setup(t, { vllmMode: 'top1' });
  const { data, response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: sentiment }] }).withResponse();
  t.equal(fake.last('/v1/chat/completions').body.model, 'tiny-llama:sst2');
  t.equal(response.headers.get('x-lorauter-composition'), 'top1');
  t.match(data.choices[0].message.content, /adapter=sst2/);
  t.equal(data.model, 'lorauter');
  const stream = await client.completions.create({ model: 'lorauter', prompt: sentiment, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  t.match(text, /adapter=sst2/);
});

t.test('merge: one merged adapter loaded with /load_lora_adapter, ΔW = Σ w·s·B·A, used as "base:merge"', async (t) => {
  const mergeDir = t.testdir({});
  const { fake, client } = await setup(t, { vllmMode: 'merge', mergeDir, maxLoraRank: 64, mergeWeightStep: 0.05, mergeMinWeight: 0 });
  const { response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }] }).withResponse();
  const name = response.headers.get('x-lorauter-composition')!.split('adapter=')[1];
  t.match(name, /^lorauter-merge-[0-9a-f]{16}$/);
  t.equal(fake.last('/v1/chat/completions').body.model, `tiny-llama:${name}`);
  const load = fake.last('/load_lora_adapter').body;
  t.equal(load.lora_name, name);
  const weights = Object.fromEntries(response.headers.get('x-lorauter-adapters')!.split(',').map((p) => p.split('=')).map(([id, w]) => [id, Number(w)]));
  const rounded = Object.entries(weights).map(([id, w]) => [id, Math.round(w / 0.05) * 0.05] as const).filter(([, w]) => w > 0);
  const total = rounded.reduce((s, [, w]) => s + w, 0);
  const parts = await Promise.all(rounded.map(async ([id, w]) => ({ adapter: await readPeftAdapter(registry.adapters.get(id)!.path!), weight: w / total })));
  const merged = await readPeftAdapter(load.lora_path);
  t.equal(merged.config.r, parts.reduce((s, p) => s + p.adapter.config.r, 0), 'rank = Σ r_i');
  const module = 'base_model.model.model.layers.0.mlp.down_proj';
  const actual = deltaWeight(merged, module);
  const expected = new Float32Array(actual.length);
  for (const { adapter, weight } of parts) deltaWeight(adapter, module).forEach((v, i) => (expected[i] += weight * v));
  t.ok(actual.every((v, i) => Math.abs(v - expected[i]) < 1e-5), 'ΔW of the merged adapter = Σ w·s·B·A');
  const stream = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }], stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  t.match(text, new RegExp(`adapter=${name}`), 'stream through the merge');
  t.equal(fake.received.filter((r) => r.path === '/load_lora_adapter').length, 1, 'loaded once');
});

t.test('merge: evicted merges are unloaded with /unload_lora_adapter; a lost merge is loaded again', async (t) => {
  const { fake, client } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), maxLoraRank: 64, maxLoadedMerges: 1, mergeMinWeight: 0, mergeWeightStep: 0.01 });
  const ask = (temperature: number) => client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }], lorauter: { temperature } } as never).withResponse();
  const first = (await ask(1)).response.headers.get('x-lorauter-composition')!.split('adapter=')[1];
  const second = (await ask(2)).response.headers.get('x-lorauter-composition')!.split('adapter=')[1];
  t.not(first, second);
  for (let i = 0; i < 50 && !fake.received.some((r) => r.path === '/unload_lora_adapter'); i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(fake.last('/unload_lora_adapter').body.lora_name, first);
  t.notOk(fake.loaded.has(first));
  fake.loaded.delete(second);
  t.equal((await ask(2).catch((error) => error)).status, 400, "SGLang's answer for an adapter it lost");
  await ask(2);
  t.ok(fake.loaded.has(second), 'loaded again');
});

t.test('abstention sends the base model; a named adapter becomes "base:adapter"; other paths pass through', async (t) => {
  const { fake, client, gw } = await setup(t, { vllmMode: 'top1' }, {});
  const { response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: 'hello! how are you doing today?' }] }).withResponse();
  t.equal(fake.last('/v1/chat/completions').body.model, 'tiny-llama');
  t.match(response.headers.get('x-lorauter-composition'), /^base; reason=/);
  const named = await client.chat.completions.create({ model: 'sst2', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  t.equal(fake.last('/v1/chat/completions').body.model, 'tiny-llama:sst2');
  t.equal(named.response.headers.get('x-lorauter-composition'), 'adapter; id=sst2');
  t.equal(named.data.model, 'sst2');
  await client.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: 'hi' }] });
  t.equal(fake.last('/v1/chat/completions').body.model, 'tiny-llama', 'the base model name passes through');
  const embeddings = await client.embeddings.create({ model: 'tiny-llama', input: 'abc', encoding_format: 'float' });
  t.same(embeddings.data[0].embedding, [3]);
  t.ok(gw.url);
});

t.test('LORAUTER_UPSTREAM=sglang needs the served model name', async (t) => {
  await t.rejects(startGateway({ upstream: { url: 'http://127.0.0.1:30000', kind: 'sglang' } }), /sglang needs LORAUTER_BASE_MODEL/);
});
