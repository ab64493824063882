import t, { type Test as Tap } from 'tap';
import OpenAI from 'openai';
import { readPeftAdapter } from '../src/lora/adapter.js';
import { deltaWeight } from '../src/lora/merge.js';
import { startFakeSglang } from './fakes/sglang.js';
import type { MergedAdapters } from '../src/upstreams/merge/merged-adapters.js';
import type { MergingDriver } from '../src/upstreams/merge/merging-driver.js';
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

t.test('merge: built in the background, loaded with /load_lora_adapter, then used as "base:merge"; ΔW = Σ served w·s·B·A', async (t) => {
  const mergeDir = t.testdir({});
  const { fake, client, gw } = await setup(t, { vllmMode: 'merge', mergeDir, maxLoraRank: 64, mergeWeightStep: 0.05, mergeMinWeight: 0, mergeWarmStart: false });
  const ask = () => client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }] }).withResponse();
  const first = (await ask()).response.headers;
  t.equal(first.get('x-lorauter-composition'), 'top1');
  t.equal(first.get('x-lorauter-fidelity'), first.get('x-lorauter-adapters')!.split(',')[0].split('=')[1].padEnd(6, '0'));
  await ((gw.gateway.upstream!.driver as MergingDriver).merges as MergedAdapters).settled();
  const { response } = await ask();
  const name = response.headers.get('x-lorauter-composition')!.split('adapter=')[1];
  t.match(name, /^lorauter-merge-[0-9a-f]{12}-[0-9a-f]{6}-1$/);
  t.equal(fake.last('/v1/chat/completions').body.model, `tiny-llama:${name}`);
  const load = fake.last('/load_lora_adapter').body;
  t.same(Object.keys(load).sort(), ['lora_name', 'lora_path'], 'not pinned');
  t.equal(load.lora_name, name);
  const served = response.headers.get('x-lorauter-served')!.split(',').map((p) => p.split('=')).map(([id, w]) => [id, Number(w)] as const);
  const parts = await Promise.all(served.map(async ([id, w]) => ({ adapter: await readPeftAdapter(registry.adapters.get(id)!.path!), weight: w })));
  const merged = await readPeftAdapter(load.lora_path);
  t.equal(merged.config.r, parts.reduce((s, p) => s + p.adapter.config.r, 0), 'rank = Σ r_i');
  const module = 'base_model.model.model.layers.0.mlp.down_proj';
  const actual = deltaWeight(merged, module);
  const expected = new Float32Array(actual.length);
  for (const { adapter, weight } of parts) deltaWeight(adapter, module).forEach((v, i) => (expected[i] += weight * v));
  t.ok(actual.every((v, i) => Math.abs(v - expected[i]) < 1e-4), 'ΔW of the merged adapter = Σ served w·s·B·A');
  const stream = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }], stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  t.match(text, new RegExp(`adapter=${name}`), 'stream through the merge');
  t.equal(fake.received.filter((r) => r.path === '/load_lora_adapter').length, 1, 'loaded once');
  // SGLang's answer for an adapter it lost: 400; the merge leaves service and is built again under a new name.
  fake.loaded.delete(name);
  t.equal((await ask().catch((error) => error)).status, 400);
  t.equal((await ask()).response.headers.get('x-lorauter-composition'), 'top1');
});

t.test('warm start pins the most typical prototypes within --max-loras-per-batch − 1', async (t) => {
  const { fake, gw } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), maxLoraRank: 64, mergeMinWeight: 0, mergeWeightStep: 0.1, sglangPinnedMerges: 1, sglangMaxLorasPerBatch: 2 });
  const deadline = Date.now() + 20_000;
  while (fake.pinned.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await ((gw.gateway.upstream!.driver as MergingDriver).merges as MergedAdapters).settled();
  t.equal(fake.pinned.size, 1, 'one pinned merge');
  t.match([...fake.pinned][0], /^lorauter-merge-/);
  await t.rejects(startGateway({ upstream: { url: fake.url, kind: 'sglang', baseModel: base, vllmMode: 'merge', mergeDir: t.testdir({}), sglangPinnedMerges: 2, sglangMaxLorasPerBatch: 2 } }), /at most LORAUTER_SGLANG_MAX_LORAS_PER_BATCH − 1 = 1/);
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
