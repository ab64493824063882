import t from 'tap';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loraScaling, readPeftAdapter, writePeftAdapter } from '../src/lora/adapter.js';
import { mergeLoraAdapters, MergeRefusedError } from '../src/lora/merge.js';
import { mergePeftAdaptersStreaming } from '../src/lora/streaming-merge.js';
import { idleMergeThreads, mergeOnThread } from '../src/lora/threaded-merge.js';
import { bfloat16FromFloatBits, halfFromFloatBits, halfToFloat, parseSafetensors } from '../src/lora/safetensors.js';
import { writeSyntheticAdapter, type Architecture } from '../bench/peft-synthetic.js';
import { TINY_LLAMA } from './helpers/gateway.js';

const TINY_ARCH: Architecture = { name: 'tiny', layers: 2, hidden: 64, intermediate: 160 };
const weights = [0.55, 0.3, 0.15];

/** The refusal's reason, or what else happened. */
async function reasonOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
    return 'merged';
  } catch (error) {
    return error instanceof MergeRefusedError ? error.reason : `${(error as Error).name}: ${(error as Error).message}`;
  }
}

t.test('fp32 sources: the streamed merge is the in-memory merge bit for bit, file and config', async (t) => {
  const dir = t.testdir({});
  const names = ['lora-sst2', 'lora-wmt16_translate_deen', 'lora-e2e_nlg'];
  const adapters = await Promise.all(names.map((name) => readPeftAdapter(join(TINY_LLAMA, name))));
  await writePeftAdapter(join(dir, 'expected'), mergeLoraAdapters(adapters.map((adapter, i) => ({ adapter, weight: weights[i] })), { maxRank: 64 }));
  const outcome = await mergePeftAdaptersStreaming(names.map((name, i) => ({ directory: join(TINY_LLAMA, name), weight: weights[i] })), join(dir, 'streamed'), { maxRank: 64 });
  t.same({ rank: outcome.rank, dtype: outcome.dtype, modules: outcome.modules }, { rank: 32, dtype: 'F32', modules: 14 });
  const expected = readFileSync(join(dir, 'expected', 'adapter_model.safetensors'));
  const streamed = readFileSync(join(dir, 'streamed', 'adapter_model.safetensors'));
  t.equal(outcome.bytes, streamed.byteLength);
  t.ok(expected.equals(streamed), `identical bytes (${streamed.byteLength})`);
  t.same(JSON.parse(readFileSync(join(dir, 'streamed', 'adapter_config.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'expected', 'adapter_config.json'), 'utf8')));
  t.same(readdirSync(dir).sort(), ['expected', 'streamed'], 'no temporary folder left');
});

t.test('fp16 and bf16 sources stay in their dtype, within its rounding of the exact merge', async (t) => {
  for (const dtype of ['F16', 'BF16'] as const) {
    const dir = t.testdir({});
    const sources = [0, 1, 2].map((i) => join(dir, `a${i}`));
    sources.forEach((path, i) => writeSyntheticAdapter(path, { arch: TINY_ARCH, rank: [8, 16, 4][i], alpha: [16, 8, 4][i], dtype }));
    const outcome = await mergePeftAdaptersStreaming(sources.map((directory, i) => ({ directory, weight: weights[i] })), join(dir, 'merged'));
    t.equal(outcome.dtype, dtype);
    t.equal(outcome.rank, 28);
    const header = readFileSync(join(dir, 'merged', 'adapter_model.safetensors'));
    const parsed = parseSafetensors(header);
    t.ok([...parsed.dtypes.values()].every((d) => d === dtype), `every tensor in ${dtype}`);
    // The exact merge in binary32 from the same sources, to compare with.
    const exact = mergeLoraAdapters(await Promise.all(sources.map(async (path, i) => ({ adapter: await readPeftAdapter(path), weight: weights[i] }))));
    const relative = dtype === 'F16' ? 2 ** -11 : 2 ** -8;
    // The binary32 merge rounded once to the dtype: what the streamed merge must hold, bit for bit.
    const bits = new Uint32Array(1);
    const asFloat = new Float32Array(bits.buffer);
    const rounded = (value: number) => {
      asFloat[0] = value;
      if (dtype === 'BF16') return (bits[0] = bfloat16FromFloatBits(bits[0]) << 16), asFloat[0];
      return halfToFloat(halfFromFloatBits(bits[0]));
    };
    let worst = 0;
    let unequal = 0;
    for (const [module, { A, B }] of exact.modules) {
      for (const [part, tensor] of [['A', A], ['B', B]] as const) {
        const got = parsed.tensors.get(`${module}.lora_${part}.weight`)!;
        t.same(got.shape, tensor.shape);
        tensor.data.forEach((value, i) => {
          worst = Math.max(worst, Math.abs(got.data[i] - value) / Math.max(Math.abs(value), 2 ** -14));
          if (!Object.is(got.data[i], rounded(value))) unequal++;
        });
      }
    }
    t.ok(worst <= relative, `${dtype}: worst relative error ${worst.toExponential(2)} ≤ ${relative.toExponential(2)}`);
    t.equal(unequal, 0, `${dtype}: every value is the binary32 merge rounded once to ${dtype}`);
    t.equal(loraScaling((await readPeftAdapter(join(dir, 'merged'))).config), 1, 'scaling 1: ΔW = B·A');
  }
  t.equal(halfToFloat(0x3c00), 1);
});

t.test('sources of different dtypes merge in fp32', async (t) => {
  const dir = t.testdir({});
  writeSyntheticAdapter(join(dir, 'half'), { arch: TINY_ARCH, rank: 4, dtype: 'F16' });
  writeSyntheticAdapter(join(dir, 'single'), { arch: TINY_ARCH, rank: 4, dtype: 'F32' });
  const outcome = await mergePeftAdaptersStreaming([{ directory: join(dir, 'half'), weight: 0.5 }, { directory: join(dir, 'single'), weight: 0.5 }], join(dir, 'merged'));
  t.equal(outcome.dtype, 'F32');
  const merged = await readPeftAdapter(join(dir, 'merged'));
  const half = await readPeftAdapter(join(dir, 'half'));
  const module = [...half.modules.keys()][0];
  t.same([...merged.modules.get(module)!.A.data.subarray(0, 8)], [...half.modules.get(module)!.A.data.subarray(0, 8)], 'A rows of the fp16 source, exactly');
});

t.test('memory follows the largest module, not the number of layers', async (t) => {
  const dir = t.testdir({});
  const outcomes = [];
  for (const layers of [2, 16]) {
    const arch = { ...TINY_ARCH, layers, hidden: 256, intermediate: 688 };
    const sources = [0, 1, 2].map((i) => join(dir, `l${layers}-${i}`));
    sources.forEach((path) => writeSyntheticAdapter(path, { arch, rank: 16 }));
    outcomes.push(await mergePeftAdaptersStreaming(sources.map((directory, i) => ({ directory, weight: weights[i] })), join(dir, `merged-${layers}`)));
  }
  const [small, large] = outcomes;
  t.ok(large.bytes > 7 * small.bytes, `the 16-layer merge is 8× larger (${small.bytes} → ${large.bytes} bytes)`);
  t.equal(large.bufferBytes, small.bufferBytes, `the same buffers for both (${small.bufferBytes} bytes)`);
  // The largest module: three sources' B of gate_proj (688 × 16 fp16) and the merged 688 × 48, in fp32 and fp16.
  t.ok(large.bufferBytes < 16 * 688 * 48 * 4, `buffers ${large.bufferBytes} bytes < 16 × the largest merged tensor in fp32`);
});

t.test('refusals: rank budget, different modules; nothing written', async (t) => {
  const dir = t.testdir({});
  writeSyntheticAdapter(join(dir, 'a'), { arch: TINY_ARCH, rank: 16 });
  writeSyntheticAdapter(join(dir, 'b'), { arch: TINY_ARCH, rank: 16 });
  writeSyntheticAdapter(join(dir, 'other'), { arch: { ...TINY_ARCH, layers: 3 }, rank: 4 });
  const sources = (second: string) => [{ directory: join(dir, 'a'), weight: 0.5 }, { directory: join(dir, second), weight: 0.5 }];
  t.equal(await reasonOf(mergePeftAdaptersStreaming(sources('b'), join(dir, 'out'), { maxRank: 16 })), 'rank_too_large');
  t.equal(await reasonOf(mergePeftAdaptersStreaming(sources('other'), join(dir, 'out'))), 'target_modules_differ');
  t.notOk(existsSync(join(dir, 'out')));
  t.same(readdirSync(dir).sort(), ['a', 'b', 'other']);
});

t.test('on a thread: the same merge; refusals keep their reason; an abort leaves nothing behind', async (t) => {
  const dir = t.testdir({});
  const sources = [0, 1].map((i) => join(dir, `s${i}`));
  sources.forEach((path) => writeSyntheticAdapter(path, { arch: TINY_ARCH, rank: 8 }));
  const parts = sources.map((directory, i) => ({ directory, weight: [0.7, 0.3][i] }));
  await mergePeftAdaptersStreaming(parts, join(dir, 'here'));
  const outcome = await mergeOnThread(parts, join(dir, 'there'), { config: { base_model_name_or_path: 'served-name' } });
  t.equal(outcome.rank, 16);
  t.ok(readFileSync(join(dir, 'here', 'adapter_model.safetensors')).equals(readFileSync(join(dir, 'there', 'adapter_model.safetensors'))));
  t.equal(JSON.parse(readFileSync(join(dir, 'there', 'adapter_config.json'), 'utf8')).base_model_name_or_path, 'served-name');
  t.equal(await reasonOf(mergeOnThread(parts, join(dir, 'refused'), { maxRank: 8 })), 'rank_too_large', 'the reason crosses from the thread');
  // Threads wait for the next merge: merges one after another reuse one; merges at once each have their own.
  const waiting = idleMergeThreads();
  t.ok(waiting >= 1, 'the thread waits for the next merge');
  await mergeOnThread(parts, join(dir, 'again'));
  t.equal(idleMergeThreads(), waiting, 'the next merge ran on it');
  const together = await Promise.all([1, 2, 3].map((n) => mergeOnThread(parts, join(dir, `together-${n}`))));
  t.same(together.map((result) => result.rank), [16, 16, 16]);
  t.equal(idleMergeThreads(), Math.max(waiting, 3), 'three at once: three threads, all waiting after');
  t.ok(readFileSync(join(dir, 'together-3', 'adapter_model.safetensors')).equals(readFileSync(join(dir, 'here', 'adapter_model.safetensors'))), 'each gets its own job');
  const controller = new AbortController();
  const aborted = mergeOnThread(parts, join(dir, 'aborted'), { signal: controller.signal });
  t.equal(idleMergeThreads(), Math.max(waiting, 3) - 1, 'the merge took a waiting thread');
  controller.abort(new Error('stop'));
  await t.rejects(aborted, /stop/);
  const deadline = Date.now() + 10_000;
  while (readdirSync(dir).some((name) => name.startsWith('aborted')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.same(readdirSync(dir).filter((name) => name.startsWith('aborted')), [], 'no merge and no temporary folder');
  t.equal(idleMergeThreads(), Math.max(waiting, 3) - 1, 'the aborted thread was stopped, not put back');
  cpSync(join(dir, 'here'), join(dir, 'copy'), { recursive: true });
  writeFileSync(join(dir, 'copy', 'adapter_model.safetensors'), readFileSync(join(dir, 'here', 'adapter_model.safetensors')).subarray(0, 100));
  await t.rejects(mergeOnThread([{ directory: join(dir, 'copy'), weight: 0.5 }, parts[1]], join(dir, 'broken')), /header|offsets|short/);
});
