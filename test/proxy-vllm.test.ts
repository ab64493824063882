import t, { type Test as Tap } from 'tap';
import OpenAI from 'openai';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readPeftAdapter } from '../src/lora/adapter.js';
import { deltaWeight } from '../src/lora/merge.js';
import { startFakeVllm } from './fakes/vllm.js';
import { listenGateway, tinyLlamaRegistry } from './helpers/gateway.js';

const registry = await tinyLlamaRegistry();
const base = 'tiny-llama';
const sentiment = 'Is the sentiment of the following sentence positive or negative? a gorgeous, witty, seductive movie. OPTIONS: - negative - positive';
const mixedPrompt = 'Translate to English and say whether it is positive: Das Restaurant The Eagle ist ein schönes Café.';

async function setup(
  t: Tap,
  upstream: Record<string, unknown>,
  vllm: Parameters<typeof startFakeVllm>[0] = { baseModel: base, staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'], maxLoraRank: 64 },
  adapters = registry.adapters,
) {
  const fake = await startFakeVllm(vllm);
  // These tests are about composing mixtures: no abstention (tested in abstention.test.ts).
  const gw = await listenGateway({ upstream: { url: fake.url, kind: 'vllm', baseModel: base, ...upstream }, temperature: 1, minConfidence: 0, defaultBaseExamples: false }, { registry: { ...registry, adapters } });
  t.teardown(async () => {
    await gw.close();
    await fake.stop();
  });
  return { fake, gw, client: new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 }) };
}

t.test('top1: the heaviest adapter in model', async (t) => {
  const { fake, client } = await setup(t, { vllmMode: 'top1' });
  const { data, response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: sentiment }] }).withResponse();
  t.equal(fake.last('/v1/chat/completions').body.model, 'sst2');
  t.equal(response.headers.get('x-lorauter-composition'), 'top1');
  t.match(response.headers.get('x-lorauter-adapters'), /^sst2=/);
  t.match(data.choices[0].message.content, /model=sst2/);
  const stream = await client.completions.create({ model: 'lorauter', prompt: sentiment, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  t.match(text, /model=sst2/);
});

t.test('unknown model names get vLLM\'s 404, passed through', async (t) => {
  const { client } = await setup(t, { vllmMode: 'top1' });
  t.equal((await client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }).catch((error) => error)).status, 404);
});

t.test('merge: one merged adapter equal to the mixture, loaded once, reused', async (t) => {
  const mergeDir = t.testdir({});
  const { fake, client, gw } = await setup(t, { vllmMode: 'merge', mergeDir, maxLoraRank: 64, mergeWeightStep: 0.05, mergeMinWeight: 0 });
  const { response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }] }).withResponse();
  const composition = response.headers.get('x-lorauter-composition')!;
  t.match(composition, /^merge; adapter=lorauter-merge-[0-9a-f]{16}$/);
  const name = composition.split('adapter=')[1];
  t.equal(fake.last('/v1/chat/completions').body.model, name);
  const load = fake.last('/v1/load_lora_adapter').body;
  t.same(Object.keys(load).sort(), ['lora_name', 'lora_path']);
  t.equal(load.lora_name, name);

  const weights = Object.fromEntries(response.headers.get('x-lorauter-adapters')!.split(',').map((p) => p.split('=')).map(([id, w]) => [id, Number(w)]));
  const merged = await readPeftAdapter(load.lora_path);
  const rounded = Object.entries(weights).map(([id, w]) => [id, Math.round(w / 0.05) * 0.05] as const).filter(([, w]) => w > 0);
  const total = rounded.reduce((s, [, w]) => s + w, 0);
  const parts = await Promise.all(rounded.map(async ([id, w]) => ({ adapter: await readPeftAdapter(registry.adapters.get(id)!.path!), weight: w / total })));
  t.equal(merged.config.r, parts.reduce((s, p) => s + p.adapter.config.r, 0), 'rank = Σ r_i');
  const module = 'base_model.model.model.layers.1.self_attn.v_proj';
  const actual = deltaWeight(merged, module);
  const expected = new Float32Array(actual.length);
  for (const { adapter, weight } of parts) deltaWeight(adapter, module).forEach((v, i) => (expected[i] += weight * v));
  t.ok(actual.every((v, i) => Math.abs(v - expected[i]) < 1e-5), 'ΔW of the merged adapter = Σ w·s·B·A');

  const loadsBefore = fake.received.filter((r) => r.path === '/v1/load_lora_adapter').length;
  await Promise.all(Array.from({ length: 5 }, () => client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }] })));
  t.equal(fake.received.filter((r) => r.path === '/v1/load_lora_adapter').length, loadsBefore, 'same decision reuses the loaded merge');
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  t.match(metrics, /lorauter_merged_adapters_total\{outcome="loaded"\} 1/);
});

t.test('merge: a vLLM restart that lost the merge answers 404 once, then the merge is loaded again', async (t) => {
  const { fake, client } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), maxLoraRank: 64 });
  const ask = () => client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }] }).withResponse();
  const { response } = await ask();
  const name = response.headers.get('x-lorauter-composition')!.split('adapter=')[1];
  fake.loaded.delete(name);
  t.equal((await ask().catch((error) => error)).status, 404);
  const again = await ask();
  t.equal(again.response.status, 200);
  t.ok(fake.loaded.has(name), 'loaded again');
  t.equal(fake.received.filter((r) => r.path === '/v1/load_lora_adapter').length, 2);
});

t.test('merge: concurrent requests for a new merge build and load it once', async (t) => {
  const mergeDir = t.testdir({});
  const { fake, client } = await setup(t, { vllmMode: 'merge', mergeDir, maxLoraRank: 64 });
  await Promise.all(Array.from({ length: 8 }, () => client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }], lorauter: { top_k: 3 } } as never)));
  t.equal(fake.received.filter((r) => r.path === '/v1/load_lora_adapter').length, 1);
  t.equal(readdirSync(mergeDir).filter((f) => f.startsWith('lorauter-merge-')).length, 1);
});

t.test('merge: evicted merges are unloaded from vLLM and deleted', async (t) => {
  const mergeDir = t.testdir({});
  const { fake, client } = await setup(t, { vllmMode: 'merge', mergeDir, maxLoraRank: 64, maxLoadedMerges: 1, mergeWeightStep: 0.01 });
  const prompts = [mixedPrompt, 'Attributes: name = The Eagle, food = French. Translate to English: Guten Morgen. Is it positive?'];
  const names: string[] = [];
  for (const prompt of prompts) {
    const { response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: prompt }] }).withResponse();
    names.push(response.headers.get('x-lorauter-composition')!.split('adapter=')[1]);
  }
  t.not(names[0], names[1], 'two different mixtures');
  for (let i = 0; i < 50 && !fake.received.some((r) => r.path === '/v1/unload_lora_adapter'); i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(fake.last('/v1/unload_lora_adapter').body.lora_name, names[0]);
  t.notOk(fake.loaded.has(names[0]));
  t.ok(fake.loaded.has(names[1]));
  for (let i = 0; i < 50 && existsSync(join(mergeDir, names[0])); i++) await new Promise((r) => setTimeout(r, 20));
  t.notOk(existsSync(join(mergeDir, names[0])), 'files removed');
});

t.test('merge refused above max_lora_rank: falls back to top1, says so in a header and a metric', async (t) => {
  const { fake, client, gw } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), maxLoraRank: 16 });
  const { response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }] }).withResponse();
  t.equal(response.headers.get('x-lorauter-composition'), 'top1; fallback=rank_too_large');
  const top = response.headers.get('x-lorauter-adapters')!.split('=')[0];
  t.equal(fake.last('/v1/chat/completions').body.model, top);
  t.equal(fake.received.filter((r) => r.path === '/v1/load_lora_adapter').length, 0);
  t.match(await (await fetch(`${gw.url}/metrics`)).text(), /lorauter_composition_fallbacks_total\{upstream="vllm",reason="rank_too_large"\} 1/);
});

t.test('merge: adapters lighter than LORAUTER_MERGE_MIN_WEIGHT leave the mixture, renormalised, and the header says so', async (t) => {
  const { fake, client } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), maxLoraRank: 64, mergeWeightStep: 0.01, mergeMinWeight: 0.3 });
  const { response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }] }).withResponse();
  const weights = response.headers.get('x-lorauter-adapters')!.split(',').map((pair) => pair.split('=')).map(([id, w]) => ({ id, weight: Number(w) }));
  const dropped = weights.filter((adapter, i) => i > 0 && adapter.weight < 0.3).map((adapter) => adapter.id);
  t.ok(dropped.length > 0, `the mixture ${JSON.stringify(weights)} has adapters under 0.3`);
  const composition = response.headers.get('x-lorauter-composition')!;
  t.match(composition, new RegExp(`; dropped=${dropped.join(',')}$`));
  const kept = weights.filter((adapter) => !dropped.includes(adapter.id));
  if (kept.length > 1) {
    const merged = await readPeftAdapter(fake.last('/v1/load_lora_adapter').body.lora_path);
    const ranks = await Promise.all(kept.map(async (adapter) => (await readPeftAdapter(registry.adapters.get(adapter.id)!.path!)).config.r));
    t.equal(merged.config.r, ranks.reduce((a, b) => a + b, 0), 'only the kept adapters are merged');
  } else {
    t.equal(fake.last('/v1/chat/completions').body.model, kept[0].id);
  }
});

t.test('merge churn is bounded: new merges beyond LORAUTER_MAX_NEW_MERGES_PER_MINUTE fall back to the top adapter', async (t) => {
  const { fake, client } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), maxLoraRank: 64, mergeMinWeight: 0, maxNewMergesPerMinute: 2 });
  const compositions: string[] = [];
  for (const temperature of [0.5, 1, 2, 4]) {
    const { response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }], lorauter: { temperature } } as never).withResponse();
    compositions.push(response.headers.get('x-lorauter-composition')!);
  }
  t.equal(compositions.filter((c) => c.startsWith('merge;')).length, 2, `two merges: ${compositions}`);
  t.equal(compositions.filter((c) => c === 'top1; fallback=merge_rate_limited').length, 2);
  t.equal(fake.received.filter((r) => r.path === '/v1/load_lora_adapter').length, 2);
});

t.test('merge refuses adapters vLLM cannot load (DoRA, modules_to_save, LM head) with a reason', async (t) => {
  const { cpSync, readFileSync, writeFileSync } = await import('node:fs');
  const cases: [string, (config: Record<string, unknown>) => void, string][] = [
    ['dora', (config) => (config.use_dora = true), 'dora'],
    ['saves', (config) => (config.modules_to_save = ['classifier']), 'modules_to_save'],
  ];
  for (const [name, edit, reason] of cases) {
    // One test directory a test: the edited adapter and the merge folder both live in it.
    const dir = join(t.testdir({}), name);
    const copy = join(dir, 'lora-sst2');
    cpSync(registry.adapters.get('sst2')!.path!, copy, { recursive: true });
    const config = JSON.parse(readFileSync(join(copy, 'adapter_config.json'), 'utf8'));
    edit(config);
    writeFileSync(join(copy, 'adapter_config.json'), JSON.stringify(config));
    const adapters = new Map(registry.adapters);
    adapters.set('sst2', { id: 'sst2', path: copy });
    const { client } = await setup(t, { vllmMode: 'merge', mergeDir: join(dir, 'merges'), maxLoraRank: 64, mergeMinWeight: 0 }, undefined, adapters);
    const { response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }] }).withResponse();
    t.equal(response.headers.get('x-lorauter-composition'), `top1; fallback=${reason}`, `${name}: ${response.headers.get('x-lorauter-adapters')} ${response.headers.get('x-lorauter-composition')}`);
  }
  const { assertVllmLoadable } = await import('../src/upstreams/vllm/loadable.js');
  const sst2 = await readPeftAdapter(registry.adapters.get('sst2')!.path!);
  t.doesNotThrow(() => assertVllmLoadable('sst2', sst2), 'a plain LoRA adapter is loadable');
  const withHead = { ...sst2, modules: new Map([...sst2.modules, ['base_model.model.lm_head', [...sst2.modules.values()][0]]]) };
  t.throws(() => assertVllmLoadable('sst2', withHead), /LoRA weights on base_model\.model\.lm_head/);
});

t.test('merges are unloaded from vLLM on shutdown when LORAUTER_UNLOAD_MERGES_ON_SHUTDOWN is on', async (t) => {
  const fake = await startFakeVllm({ baseModel: base, staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'], maxLoraRank: 64 });
  t.teardown(() => fake.stop());
  const mergeDir = t.testdir({});
  const gw = await listenGateway(
    { upstream: { url: fake.url, kind: 'vllm', baseModel: base, vllmMode: 'merge', mergeDir, maxLoraRank: 64, mergeMinWeight: 0, unloadMergesOnShutdown: true }, temperature: 1, minConfidence: 0, defaultBaseExamples: false },
    { registry },
  );
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const { response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }] }).withResponse();
  const name = response.headers.get('x-lorauter-composition')!.split('adapter=')[1];
  t.ok(fake.loaded.has(name));
  await gw.close();
  t.notOk(fake.loaded.has(name), 'unloaded');
  t.equal(fake.last('/v1/unload_lora_adapter').body.lora_name, name);
  t.notOk(existsSync(join(mergeDir, name)), 'files removed');
});

t.test('LORAUTER_MAX_LORA_RANK must be a rank vLLM accepts', async (t) => {
  const { startGateway } = await import('./helpers/gateway.js');
  await t.rejects(
    startGateway({ upstream: { url: 'http://127.0.0.1:8000', maxLoraRank: 48 } }, { registry }),
    /LORAUTER_MAX_LORA_RANK\) is 48; vLLM accepts only --max-lora-rank 8, 16, 32, 64, 128, 256, 320, 512/,
  );
  const ok = await startGateway({ upstream: { url: 'http://127.0.0.1:8000', maxLoraRank: 320 } }, { registry });
  await ok.close();
  const other = await startGateway({ upstream: { url: 'http://127.0.0.1:8000', kind: 'llamacpp', maxLoraRank: 48 } }, { registry });
  t.pass('other kinds are not bound by it');
  await other.close();
});
