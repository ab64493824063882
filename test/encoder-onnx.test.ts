import t from 'tap';
import { copyFileSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CachingEncoder } from '../src/cache/caching-encoder.js';
import { EncoderSetupError } from '../src/encoders/errors.js';
import { OnnxEncoder, type OnnxEncoderOptions } from '../src/encoders/onnx/onnx-encoder.js';

// Built by scripts/build-onnx-fixture.py: a tiny BERT behind the real all-MiniLM-L6-v2 tokenizer,
// with reference embeddings from PyTorch and an independent WordPiece tokenizer.
const FIXTURE = new URL('./fixtures/onnx/', import.meta.url).pathname;
const MODEL = join(FIXTURE, 'model');
interface ReferenceCase {
  text: string;
  prefix: string;
  sentence: string;
  input_ids: number[];
  mean: number[];
  cls: number[];
  last_token: number[];
  no_token_types_mean: number[];
}
const reference: { max_seq_length: number; query_prefix: string; cases: ReferenceCase[] } = JSON.parse(readFileSync(join(FIXTURE, 'reference.json'), 'utf8'));
const plain = reference.cases.filter((c) => c.prefix === '');
const prefixed = reference.cases.filter((c) => c.prefix !== '');

const options = (overrides: Partial<OnnxEncoderOptions> = {}): OnnxEncoderOptions => ({
  model: MODEL,
  queryPrefix: '',
  examplePrefix: '',
  threads: 1,
  maxBatch: 8,
  batchWaitMs: 1,
  ...overrides,
});

function maxDifference(actual: Float32Array, expected: number[]): number {
  if (actual.length !== expected.length) return Infinity;
  return Math.max(...expected.map((x, i) => Math.abs(actual[i] - x)));
}

t.test('matches the PyTorch reference: tokens, truncation, mean pooling, normalisation', async (t) => {
  const encoder = await OnnxEncoder.load(options());
  t.teardown(() => encoder.close());
  t.equal(encoder.dimensions, 16);
  t.equal(encoder.maxLength, reference.max_seq_length, 'max length from sentence_bert_config.json');
  t.equal(encoder.pooling, 'mean', 'pooling from 1_Pooling/config.json');
  for (const c of plain) t.same(encoder.tokenize(c.text), c.input_ids, `token ids: ${c.sentence.slice(0, 30)}`);
  const long = plain.find((c) => c.input_ids.length === reference.max_seq_length)!;
  t.ok(long, 'one reference sentence is truncated');
  t.equal(long.input_ids.at(-1), 102, 'truncation keeps [SEP] last');
  // One call with all sentences: a batch padded to the longest, checked against one-by-one references.
  const vectors = await encoder.encode(plain.map((c) => c.text));
  plain.forEach((c, i) => t.ok(maxDifference(vectors[i], c.mean) < 1e-4, `embedding within 1e-4: ${c.sentence.slice(0, 30)} (${maxDifference(vectors[i], c.mean)})`));
});

t.test('pooling modes: cls and last_token', async (t) => {
  for (const pooling of ['cls', 'last_token'] as const) {
    const encoder = await OnnxEncoder.load(options({ pooling }));
    const vectors = await encoder.encode(plain.map((c) => c.text));
    plain.forEach((c, i) => t.ok(maxDifference(vectors[i], c[pooling]) < 1e-4, `${pooling}: ${c.sentence.slice(0, 30)}`));
    await encoder.close();
  }
});

t.test('query and example prefixes; the fingerprint holds them', async (t) => {
  const encoder = await OnnxEncoder.load(options({ queryPrefix: reference.query_prefix }));
  t.teardown(() => encoder.close());
  const queries = await encoder.encode(prefixed.map((c) => c.sentence), 'query');
  prefixed.forEach((c, i) => t.ok(maxDifference(queries[i], c.mean) < 1e-4, `query prefixed: ${c.sentence.slice(0, 30)}`));
  const examples = await encoder.encode(plain.map((c) => c.sentence), 'example');
  plain.forEach((c, i) => t.ok(maxDifference(examples[i], c.mean) < 1e-4, `example not prefixed: ${c.sentence.slice(0, 30)}`));
  const unprefixed = await OnnxEncoder.load(options());
  t.teardown(() => unprefixed.close());
  t.not(encoder.fingerprint, unprefixed.fingerprint);
  const cls = await OnnxEncoder.load(options({ pooling: 'cls' }));
  t.teardown(() => cls.close());
  t.not(cls.fingerprint, unprefixed.fingerprint, 'pooling is part of the fingerprint');
  const again = await OnnxEncoder.load(options());
  t.teardown(() => again.close());
  t.equal(again.fingerprint, unprefixed.fingerprint, 'same files and settings, same fingerprint');
  t.match(again.fingerprint, /^onnx:[0-9a-f]{16}$/);
});

t.test('token_type_ids is fed only when the graph declares it', async (t) => {
  const dir = t.testdir({});
  cpSync(MODEL, dir, { recursive: true });
  rmSync(join(dir, 'onnx'), { recursive: true });
  copyFileSync(join(FIXTURE, 'no-token-types.onnx'), join(dir, 'model.onnx'));
  const encoder = await OnnxEncoder.load(options({ model: dir }));
  t.teardown(() => encoder.close());
  const vectors = await encoder.encode(plain.map((c) => c.text));
  plain.forEach((c, i) => t.ok(maxDifference(vectors[i], c.no_token_types_mean) < 1e-4, `no token types: ${c.sentence.slice(0, 30)}`));
  const withTypes = await OnnxEncoder.load(options());
  t.teardown(() => withTypes.close());
  t.not(encoder.fingerprint, withTypes.fingerprint, 'another graph, another fingerprint');
});

t.test('concurrent requests are micro-batched into bounded runs, each answer its own', async (t) => {
  const encoder = await OnnxEncoder.load(options({ maxBatch: 4, batchWaitMs: 20 }));
  t.teardown(() => encoder.close());
  const session = (encoder as unknown as { session: { run: (...args: unknown[]) => Promise<unknown> } }).session;
  const run = session.run.bind(session);
  const batchSizes: number[] = [];
  session.run = (feeds: unknown, ...rest: unknown[]) => {
    batchSizes.push((feeds as { input_ids: { dims: number[] } }).input_ids.dims[0]);
    return run(feeds, ...rest);
  };
  const texts = Array.from({ length: 10 }, (_, i) => plain[i % plain.length].text);
  const vectors = await Promise.all(texts.map((text) => encoder.encode([text]).then(([vector]) => vector)));
  t.ok(batchSizes.every((size) => size <= 4), `batches ${batchSizes} within maxBatch`);
  t.ok(batchSizes.length < 10, `10 concurrent requests in ${batchSizes.length} runs`);
  t.equal(batchSizes.reduce((a, b) => a + b, 0), 10);
  texts.forEach((_, i) => t.ok(maxDifference(vectors[i], plain[i % plain.length].mean) < 1e-4, `request ${i} got its own vector`));
});

t.test('cache keys: the caching wrapper hits for repeats, keeps queries and examples apart', async (t) => {
  const encoder = await OnnxEncoder.load(options({ queryPrefix: reference.query_prefix }));
  t.teardown(() => encoder.close());
  const cached = new CachingEncoder(encoder, { maxEntries: 10 });
  const first = await cached.embed([plain[0].sentence]);
  const second = await cached.embed([plain[0].sentence]);
  t.same(first.sources, ['encoder']);
  t.same(second.sources, ['memory']);
  const asExample = await cached.embed([plain[0].sentence], 'example');
  t.same(asExample.sources, ['encoder'], 'an example is not served the prefixed query vector');
  t.ok(maxDifference(asExample.vectors[0], plain[0].mean) < 1e-4);
  t.ok(maxDifference(second.vectors[0], prefixed[0].mean) < 1e-4);
});

t.test('bad model folders fail at start-up with what to do', async (t) => {
  const missingTokenizer = t.testdir({});
  cpSync(MODEL, missingTokenizer, { recursive: true });
  rmSync(join(missingTokenizer, 'tokenizer.json'));
  await t.rejects(OnnxEncoder.load(options({ model: missingTokenizer })), { name: 'EncoderSetupError', message: /tokenizer\.json is missing.*optimum-cli export onnx/ });

  const noGraph = t.testdir({});
  cpSync(MODEL, noGraph, { recursive: true });
  rmSync(join(noGraph, 'onnx'), { recursive: true });
  await t.rejects(OnnxEncoder.load(options({ model: noGraph })), /no ONNX graph found \(looked for onnx\/model\.onnx, model\.onnx/);

  await t.rejects(OnnxEncoder.load(options({ model: '/nonexistent/model' })), /does not exist/);

  const unsupportedPooling = t.testdir({});
  cpSync(MODEL, unsupportedPooling, { recursive: true });
  writeFileSync(join(unsupportedPooling, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_max_tokens: true }));
  await t.rejects(OnnxEncoder.load(options({ model: unsupportedPooling })), /pooling pooling_mode_max_tokens is not supported; set LORAUTER_ENCODER_POOLING/);

  const wrongSignature = t.testdir({});
  cpSync(MODEL, wrongSignature, { recursive: true });
  copyFileSync(join(FIXTURE, 'wrong-signature.onnx'), join(wrongSignature, 'onnx', 'model.onnx'));
  await t.rejects(OnnxEncoder.load(options({ model: wrongSignature })), /the graph's inputs are pixel_values; a sentence encoder takes input_ids, attention_mask/);

  const wrongGraph = t.testdir({});
  cpSync(MODEL, wrongGraph, { recursive: true });
  writeFileSync(join(wrongGraph, 'onnx', 'model.onnx'), 'not an onnx graph');
  const error = await OnnxEncoder.load(options({ model: wrongGraph })).catch((e) => e);
  t.ok(error instanceof EncoderSetupError);
  t.match(error.message, /onnxruntime cannot load the graph/);
});
