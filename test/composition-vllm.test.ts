import t, { type Test as Tap } from 'tap';
import OpenAI from 'openai';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPeftAdapter } from '../src/lora/adapter.js';
import { deltaWeight } from '../src/lora/merge.js';
import type { MergedAdapters } from '../src/upstreams/merge/merged-adapters.js';
import type { MergingDriver } from '../src/upstreams/merge/merging-driver.js';
import { startFakeVllm } from './fakes/vllm.js';
import { listenGateway, tinyLlamaRegistry } from './helpers/gateway.js';

const registry = await tinyLlamaRegistry();
const base = 'tiny-llama';
const mixedPrompt = 'Translate to English and say whether it is positive: Das Restaurant The Eagle ist ein schönes Café.';
const otherPrompt = 'Attributes: name = The Eagle, food = French. Translate to English: Guten Morgen. Is it positive?';

async function setup(t: Tap, upstream: Record<string, unknown>, vllm: Partial<Parameters<typeof startFakeVllm>[0]> = {}, adapters = registry.adapters) {
  const fake = await startFakeVllm({ baseModel: base, staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'], maxLoraRank: 64, ...vllm });
  // No abstention here (abstention.test.ts), and no warm start unless a test asks for it.
  const gw = await listenGateway(
    { upstream: { url: fake.url, kind: 'vllm', baseModel: base, maxLoraRank: 64, mergeMinWeight: 0, mergeWarmStart: false, ...upstream }, temperature: 1, minConfidence: 0, defaultBaseExamples: false },
    { registry: { ...registry, adapters } },
  );
  t.teardown(async () => {
    await gw.close();
    await fake.stop();
  });
  const merges = (gw.gateway.upstream!.driver as MergingDriver).merges as MergedAdapters;
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const ask = async (prompt = mixedPrompt, lorauter?: Record<string, unknown>) => {
    const { response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: prompt }], ...(lorauter ? { lorauter } : {}) } as never).withResponse();
    return {
      composition: response.headers.get('x-lorauter-composition')!,
      served: parseWeights(response.headers.get('x-lorauter-served')!),
      requested: parseWeights(response.headers.get('x-lorauter-adapters')!),
      fidelity: Number(response.headers.get('x-lorauter-fidelity')),
      model: fake.last('/v1/chat/completions').body.model as string,
    };
  };
  return { fake, gw, merges, ask };
}

function parseWeights(header: string): Map<string, number> {
  return new Map(header.split(',').map((pair) => pair.split('=')).map(([id, w]) => [id, Number(w)]));
}

const loads = (fake: { received: { path: string }[] }) => fake.received.filter((r) => r.path === '/v1/load_lora_adapter').length;

/** ΔW of the merged adapter against Σ w·s·B·A of the sources at the weights the gateway said it served. */
async function expectServedMixture(t: Tap, mergePath: string, served: Map<string, number>) {
  const merged = await readPeftAdapter(mergePath);
  const parts = await Promise.all([...served].map(async ([id, weight]) => ({ adapter: await readPeftAdapter(registry.adapters.get(id)!.path!), weight })));
  t.equal(merged.config.r, parts.reduce((sum, part) => sum + part.adapter.config.r, 0), 'rank = Σ r_i');
  for (const module of ['base_model.model.model.layers.1.self_attn.v_proj', 'base_model.model.model.layers.0.mlp.down_proj']) {
    const actual = deltaWeight(merged, module);
    const expected = new Float32Array(actual.length);
    for (const { adapter, weight } of parts) deltaWeight(adapter, module).forEach((v, i) => (expected[i] += weight * v));
    const worst = Math.max(...actual.map((v, i) => Math.abs(v - expected[i])));
    // The header's weights have 4 decimals: the merge's exact weights differ by < 5e-5 each.
    t.ok(worst < 1e-4, `${module}: ΔW of the merge = Σ served_w·s·B·A (max diff ${worst.toExponential(1)})`);
  }
}

const fidelityOf = (requested: Map<string, number>, served: Map<string, number>) => [...requested].reduce((sum, [id, w]) => sum + Math.min(w, served.get(id) ?? 0), 0);

t.test('a new mixture is served at once by the top adapter, built in the background, and the next request gets the exact merge', async (t) => {
  const mergeDir = t.testdir({});
  const { fake, gw, merges, ask } = await setup(t, { vllmMode: 'merge', mergeDir });
  const first = await ask();
  t.equal(first.composition, 'top1', 'no wait for the build');
  const top = [...first.requested][0];
  t.same([...first.served], [[top[0], 1]]);
  t.equal(first.model, top[0]);
  t.equal(first.fidelity, Number(top[1].toFixed(4)), 'fidelity = the top weight');

  await merges.settled();
  t.equal(loads(fake), 1, 'built and loaded once');
  const second = await ask();
  t.match(second.composition, /^merge; adapter=lorauter-merge-[0-9a-f]{12}-[0-9a-f]{6}-1$/);
  const name = second.composition.split('adapter=')[1];
  t.equal(second.model, name);
  const load = fake.last('/v1/load_lora_adapter').body;
  t.same(Object.keys(load).sort(), ['lora_name', 'lora_path']);
  t.equal(load.lora_name, name);
  t.ok(second.served.size > 1, `served ${[...second.served]}`);
  t.ok(Math.abs(second.fidelity - fidelityOf(second.requested, second.served)) < 2e-4, `fidelity ${second.fidelity} = Σ min(requested, served)`);
  t.ok(second.fidelity > first.fidelity);
  await expectServedMixture(t, load.lora_path, second.served);

  await Promise.all(Array.from({ length: 5 }, () => ask()));
  t.equal(loads(fake), 1, 'the same mixture reuses the live merge');
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  t.match(metrics, /lorauter_merged_adapters_total\{outcome="loaded"\} 1/);
  t.match(metrics, /lorauter_merge_builds_total\{outcome="done"\} 1/);
  t.match(metrics, /lorauter_live_merges 1/);
  t.match(metrics, /lorauter_composition_fidelity_count\{upstream="vllm"\} 7/);
  const bytes = Number(/lorauter_merge_dir_bytes (\d+)/.exec(metrics)![1]);
  const onDisk = readFileSync(join(mergeDir, name, 'adapter_model.safetensors')).byteLength;
  t.equal(bytes, onDisk, 'merge-folder bytes');
});

t.test('concurrent requests for a new mixture: one build, one load', async (t) => {
  const mergeDir = t.testdir({});
  const { fake, merges, ask } = await setup(t, { vllmMode: 'merge', mergeDir });
  const answers = await Promise.all(Array.from({ length: 8 }, () => ask()));
  t.ok(answers.every((answer) => answer.composition === 'top1'), 'none waited');
  await merges.settled();
  t.equal(loads(fake), 1);
  t.equal(readdirSync(mergeDir).filter((f) => f.startsWith('lorauter-merge-')).length, 1);
});

t.test('a vLLM restart that lost the merge: one 404, then a new build under a new name; no name is ever loaded twice', async (t) => {
  const { fake, merges, ask } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}) });
  await ask();
  await merges.settled();
  const name = (await ask()).composition.split('adapter=')[1];
  fake.loaded.delete(name);
  t.equal((await ask().catch((error) => error)).status, 404);
  const after = await ask();
  t.equal(after.composition, 'top1', 'the lost merge is out of service at once');
  await merges.settled();
  const rebuilt = (await ask()).composition.split('adapter=')[1];
  t.not(rebuilt, name, 'a new generation');
  t.match(rebuilt, /-2$/);
  t.same(fake.reloaded, []);
});

t.test('eviction: a mixture asked for more often replaces a live one (unloaded, then deleted); a name is never reused', async (t) => {
  const mergeDir = t.testdir({});
  const { fake, merges, ask } = await setup(t, { vllmMode: 'merge', mergeDir, maxLoadedMerges: 1, mergeWeightStep: 0.01 });
  const mixed = await ask(mixedPrompt);
  await merges.settled();
  const first = (await ask(mixedPrompt)).composition.split('adapter=')[1];
  t.match(first, /^lorauter-merge-/);
  // Without the top task, the mixture of the other two is far from the live merge.
  const other = { exclude_tasks: [[...mixed.requested.keys()][0]] };
  for (let i = 0; i < 6; i++) await ask(mixedPrompt, other);
  await merges.settled();
  const second = await ask(mixedPrompt, other);
  t.match(second.composition, /^merge; /);
  t.equal(fake.last('/v1/unload_lora_adapter').body.lora_name, first);
  t.notOk(fake.loaded.has(first));
  const deadline = Date.now() + 10_000;
  while (existsSync(join(mergeDir, first)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.notOk(existsSync(join(mergeDir, first)), 'files removed');
  t.same(fake.reloaded, []);
});

t.test('LORAUTER_MERGE_WAIT_MS: a request waits (bounded) for its exact merge', async (t) => {
  const { fake, ask } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), mergeWaitMs: 30_000 });
  const first = await ask();
  t.match(first.composition, /^merge; adapter=/);
  t.equal(loads(fake), 1);
  const { ask: quick } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), mergeWaitMs: 1 }, { maxLoraRank: 64 });
  t.equal((await quick()).composition, 'top1', 'a 1 ms wait ends before the build does');
});

t.test('the rank budget trims the lightest adapters; nothing is built when only one fits', async (t) => {
  const { fake, merges, ask } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), maxLoraRank: 16 }, { maxLoraRank: 16 });
  const first = await ask();
  await merges.settled();
  const second = await ask();
  const ranks = Object.fromEntries(await Promise.all([...first.requested.keys()].map(async (id) => [id, (await readPeftAdapter(registry.adapters.get(id)!.path!)).config.r])));
  if (second.composition.startsWith('merge;')) {
    t.ok([...second.served.keys()].reduce((sum, id) => sum + ranks[id], 0) <= 16, `within rank 16: ${[...second.served]}`);
    await expectServedMixture(t, fake.last('/v1/load_lora_adapter').body.lora_path, second.served);
  } else {
    t.equal(loads(fake), 0, `no pair fits rank 16 (${JSON.stringify(ranks)})`);
  }
  t.ok(second.fidelity >= first.fidelity);
});

t.test('adapters lighter than LORAUTER_MERGE_MIN_WEIGHT leave the mixture, and the headers say what was served', async (t) => {
  const { fake, merges, ask } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), mergeWeightStep: 0.01, mergeMinWeight: 0.3 });
  const first = await ask();
  const dropped = [...first.requested].filter(([, w], i) => i > 0 && w < 0.3).map(([id]) => id);
  t.ok(dropped.length > 0, `the mixture ${[...first.requested]} has adapters under 0.3`);
  t.match(first.composition, new RegExp(`; dropped=${dropped.join(',')}$`));
  await merges.settled();
  const second = await ask();
  for (const id of dropped) t.notOk(second.served.has(id), `${id} is not served`);
  if (second.served.size > 1) await expectServedMixture(t, fake.last('/v1/load_lora_adapter').body.lora_path, second.served);
});

t.test('the build budget: LORAUTER_MAX_NEW_MERGES_PER_MINUTE builds, the rest skipped (counted)', async (t) => {
  const { fake, gw, merges, ask } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), maxNewMergesPerMinute: 1, mergeWeightStep: 0.01 });
  // Three mixtures of two adapters each, far from one another.
  for (const excluded of ['sst2', 'wmt16_translate_deen', 'e2e_nlg']) for (let i = 0; i < 3; i++) await ask(mixedPrompt, { exclude_tasks: [excluded] });
  await merges.settled();
  t.equal(loads(fake), 1, 'one build a minute');
  t.match(await (await fetch(`${gw.url}/metrics`)).text(), /lorauter_merge_builds_total\{outcome="skipped_budget"\} [1-9]/);
});

t.test('adapters vLLM cannot load (DoRA, modules_to_save) are never merged: the build fails with a reason, requests go on', async (t) => {
  for (const [name, edit, reason] of [
    ['dora', (config: Record<string, unknown>) => (config.use_dora = true), 'dora'],
    ['saves', (config: Record<string, unknown>) => (config.modules_to_save = ['classifier']), 'modules_to_save'],
  ] as const) {
    const dir = join(t.testdir({}), name);
    const copy = join(dir, 'lora-sst2');
    cpSync(registry.adapters.get('sst2')!.path!, copy, { recursive: true });
    const config = JSON.parse(readFileSync(join(copy, 'adapter_config.json'), 'utf8'));
    edit(config);
    writeFileSync(join(copy, 'adapter_config.json'), JSON.stringify(config));
    const adapters = new Map(registry.adapters);
    adapters.set('sst2', { id: 'sst2', path: copy });
    const { fake, gw, merges, ask } = await setup(t, { vllmMode: 'merge', mergeDir: join(dir, 'merges') }, {}, adapters);
    await ask();
    await merges.settled();
    t.equal((await ask()).composition, 'top1', name);
    t.equal(loads(fake), 0);
    t.match(await (await fetch(`${gw.url}/metrics`)).text(), new RegExp(`lorauter_composition_fallbacks_total\\{upstream="vllm",reason="${reason}"\\} 1`));
  }
});

t.test('warm start: mixtures the examples ask for are built before any request (outside the per-minute budget), and the first requests are served by them', async (t) => {
  const { fake, gw, merges, ask } = await setup(t, { vllmMode: 'merge', mergeDir: t.testdir({}), mergeWarmStart: true, mergeWeightStep: 0.1, maxNewMergesPerMinute: 1 });
  const deadline = Date.now() + 20_000;
  while (loads(fake) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await merges.settled();
  t.ok(merges.liveNames.length > 1, `prototypes live: ${merges.liveNames.length}, with a budget of one build a minute`);
  t.notMatch(await (await fetch(`${gw.url}/metrics`)).text(), /lorauter_merge_builds_total\{outcome="skipped_budget"\} [1-9]/, 'none held back by the budget');
  const first = await ask();
  t.ok(first.composition.startsWith('merge;') || first.composition.startsWith('nearest_merge;'), `the first request: ${first.composition}`);
  t.ok(first.fidelity > Math.max(...first.requested.values()), 'better than the top adapter alone');
  // In top1 mode nothing is built ahead: the driver takes no warm start, so no examples are routed for one.
  const top1 = await setup(t, { vllmMode: 'top1', mergeWarmStart: true });
  t.equal(top1.gw.gateway.upstream!.driver.warmStart, undefined, 'top1: no warm start');
});

t.test('vLLM LoRA resolver: merges are written into its folder and named in model; nothing is loaded through the API', async (t) => {
  const mergeDir = t.testdir({});
  const { fake, merges, ask } = await setup(t, { vllmMode: 'merge', mergeDir, vllmLoading: 'resolver' }, { resolverDir: mergeDir });
  await ask();
  await merges.settled();
  const second = await ask();
  t.match(second.composition, /^merge; adapter=/);
  const name = second.composition.split('adapter=')[1];
  t.equal(loads(fake), 0);
  t.ok(fake.loaded.has(name), 'vLLM resolved it from the folder');
  const config = JSON.parse(readFileSync(join(mergeDir, name, 'adapter_config.json'), 'utf8'));
  t.same([config.peft_type, config.base_model_name_or_path], ['LORA', base]);
  await expectServedMixture(t, join(mergeDir, name), second.served);
});

t.test('merges are unloaded on shutdown when LORAUTER_UNLOAD_MERGES_ON_SHUTDOWN is on', async (t) => {
  const fake = await startFakeVllm({ baseModel: base, staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'], maxLoraRank: 64 });
  t.teardown(() => fake.stop());
  const mergeDir = t.testdir({});
  const gw = await listenGateway(
    { upstream: { url: fake.url, kind: 'vllm', baseModel: base, vllmMode: 'merge', mergeDir, maxLoraRank: 64, mergeMinWeight: 0, mergeWaitMs: 30_000, mergeWarmStart: false, unloadMergesOnShutdown: true }, temperature: 1, minConfidence: 0, defaultBaseExamples: false },
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

t.test('merge mode needs a merge folder; the resolver needs the base model name', async (t) => {
  const { startGateway } = await import('./helpers/gateway.js');
  await t.rejects(startGateway({ upstream: { url: 'http://127.0.0.1:9', kind: 'vllm', vllmMode: 'merge' } }), /LORAUTER_MERGE_DIR/);
  await t.rejects(startGateway({ upstream: { url: 'http://127.0.0.1:9', kind: 'vllm', vllmMode: 'merge', mergeDir: t.testdir({}), vllmLoading: 'resolver' } }), /LORAUTER_BASE_MODEL/);
});

t.test('vLLM-loadable check: a plain LoRA passes, an LM head fails', async (t) => {
  const { assertVllmLoadable } = await import('../src/upstreams/vllm/loadable.js');
  const sst2 = await readPeftAdapter(registry.adapters.get('sst2')!.path!);
  t.doesNotThrow(() => assertVllmLoadable('sst2', sst2));
  const withHead = { ...sst2, modules: new Map([...sst2.modules, ['base_model.model.lm_head', [...sst2.modules.values()][0]]]) };
  t.throws(() => assertVllmLoadable('sst2', withHead), /LoRA weights on base_model\.model\.lm_head/);
});
