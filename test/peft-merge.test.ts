import t, { type Test as Tap } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPeftAdapter, writePeftAdapter, loraScaling, type LoraAdapter } from '../src/lora/adapter.js';
import { deltaWeight, mergeLoraAdapters, MergeRefusedError } from '../src/lora/merge.js';
import { floatToBfloat16, floatToHalf, halfToFloat, parseSafetensors, serializeSafetensors, SafetensorsError } from '../src/lora/safetensors.js';
import { TINY_LLAMA } from './helpers/gateway.js';

function random(seed: number) {
  return () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32 - 0.5;
  };
}

function randomAdapter(r: number, alpha: number, seed: number, modules = ['layers.0.q_proj', 'layers.0.v_proj'], rslora = false): LoraAdapter {
  const next = random(seed);
  const fill = (n: number) => Float32Array.from({ length: n }, next);
  return {
    config: { r, lora_alpha: alpha, target_modules: ['q_proj', 'v_proj'], use_rslora: rslora, peft_type: 'LORA' },
    modules: new Map(modules.map((m) => [m, { A: { shape: [r, 12], data: fill(r * 12) }, B: { shape: [10, r], data: fill(10 * r) } }])),
  };
}

function expectMixture(t: Tap, merged: LoraAdapter, parts: { adapter: LoraAdapter; weight: number }[]) {
  for (const module of merged.modules.keys()) {
    const actual = deltaWeight(merged, module);
    const expected = new Float32Array(actual.length);
    for (const { adapter, weight } of parts) deltaWeight(adapter, module).forEach((v, i) => (expected[i] += weight * v));
    const maxAbs = Math.max(...actual.map((v, i) => Math.abs(v - expected[i])));
    t.ok(maxAbs < 1e-5, `${module}: max |ΔW - Σ w·s·B·A| = ${maxAbs.toExponential(2)}`);
  }
}

t.test('merged B·A equals Σ w_i·s_i·B_i·A_i for different ranks and alphas', async (t) => {
  const cases = [
    [randomAdapter(4, 8, 1), randomAdapter(8, 32, 2)],
    [randomAdapter(2, 2, 3), randomAdapter(6, 3, 4), randomAdapter(5, 40, 5)],
    [randomAdapter(4, 16, 6, undefined, true), randomAdapter(8, 16, 7)],
  ];
  for (const adapters of cases) {
    const weights = adapters.map((_, i) => (i + 1) / adapters.reduce((s, __, j) => s + j + 1, 0));
    const parts = adapters.map((adapter, i) => ({ adapter, weight: weights[i] }));
    const merged = mergeLoraAdapters(parts);
    t.equal(merged.config.r, adapters.reduce((s, a) => s + a.config.r, 0), 'rank is the sum of ranks');
    t.equal(loraScaling(merged.config), 1, 'alpha = r: scaling 1');
    expectMixture(t, merged, parts);
  }
});

t.test('refuses what cannot be merged exactly', async (t) => {
  const a = randomAdapter(8, 16, 1);
  t.throws(() => mergeLoraAdapters([{ adapter: a, weight: 0.5 }, { adapter: randomAdapter(8, 16, 2), weight: 0.5 }], { maxRank: 12 }), MergeRefusedError);
  const other = randomAdapter(8, 16, 3, ['layers.0.q_proj', 'layers.0.k_proj']);
  try {
    mergeLoraAdapters([{ adapter: a, weight: 0.5 }, { adapter: other, weight: 0.5 }]);
    t.fail('should refuse');
  } catch (error) {
    t.equal((error as MergeRefusedError).reason, 'target_modules_differ');
  }
});

t.test('real PEFT adapters from tiny-llama: read, merge, write, read back', async (t) => {
  const sst2 = await readPeftAdapter(join(TINY_LLAMA, 'lora-sst2'));
  const deen = await readPeftAdapter(join(TINY_LLAMA, 'lora-wmt16_translate_deen'));
  const e2e = await readPeftAdapter(join(TINY_LLAMA, 'lora-e2e_nlg'));
  t.equal(sst2.config.r, 8);
  t.equal(deen.config.r, 16);
  t.equal(sst2.modules.size, 14, '7 projections × 2 layers');
  const parts = [
    { adapter: sst2, weight: 0.6 },
    { adapter: deen, weight: 0.3 },
    { adapter: e2e, weight: 0.1 },
  ];
  const merged = mergeLoraAdapters(parts, { maxRank: 64 });
  t.equal(merged.config.r, 32);
  const dir = join(t.testdir({}), 'merged');
  await writePeftAdapter(dir, merged);
  const back = await readPeftAdapter(dir);
  t.equal(back.config.r, 32);
  t.equal(back.config.lora_alpha, 32);
  t.same([...back.modules.keys()].sort(), [...sst2.modules.keys()].sort());
  const header = JSON.parse(readFileSync(join(dir, 'adapter_model.safetensors')).subarray(8, 8 + Number(readFileSync(join(dir, 'adapter_model.safetensors')).readBigUInt64LE(0))).toString());
  t.match(header['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'], { dtype: 'F32', shape: [32, 128] });
  expectMixture(t, back, parts);
});

t.test('safetensors round trip in F32, F16 and BF16', async (t) => {
  const values = Float32Array.from([0, 1, -2.5, 0.1, 65504, -1e-5, 3.14159, 1e-8]);
  const tensors = new Map([['x', { shape: [2, 4], data: values }], ['y', { shape: [3], data: Float32Array.from([7, 8, 9]) }]]);
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    const bytes = serializeSafetensors(tensors, { dtype, metadata: { format: 'pt' } });
    t.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0, 'header padded to 8 bytes');
    const parsed = parseSafetensors(bytes);
    t.same(parsed.metadata, { format: 'pt' });
    t.same(parsed.tensors.get('x')!.shape, [2, 4]);
    t.equal(parsed.dtypes.get('x'), dtype);
    const tolerance = dtype === 'F32' ? 0 : dtype === 'F16' ? 1e-3 : 1e-2;
    parsed.tensors.get('x')!.data.forEach((v, i) => {
      const expected = values[i];
      t.ok(Math.abs(v - expected) <= tolerance * Math.max(Math.abs(expected), dtype === 'F16' ? 6e-5 : 1e-30), `${dtype}[${i}] ${v} ≈ ${expected}`);
    });
  }
  t.equal(halfToFloat(floatToHalf(1)), 1);
  t.equal(floatToHalf(65520), 0x7c00, 'overflow to infinity');
  t.equal(halfToFloat(0x3555), 0.333251953125);
  t.equal(floatToBfloat16(1), 0x3f80);
  t.throws(() => parseSafetensors(new Uint8Array(4)), SafetensorsError);
  const corrupt = serializeSafetensors(tensors);
  t.throws(() => parseSafetensors(corrupt.subarray(0, corrupt.length - 4)), /data offsets/);
});
