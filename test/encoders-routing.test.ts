import t from 'tap';
import OpenAI from 'openai';
import { NgramEncoder as ReferenceNgramEncoder } from '../bench/baseline/ngram-encoder-v1.js';
import { BuiltinEncoder } from '../src/encoders/builtin/builtin-encoder.js';
import { HybridEncoder } from '../src/encoders/hybrid-encoder.js';
import { OnnxEncoder } from '../src/encoders/onnx/onnx-encoder.js';
import { loadRegistry } from '../src/registry/load.js';
import { cosine, meanOfNormalized } from '../src/router/math.js';
import { startFakeEmbeddings } from './fakes/embeddings.js';
import { startFakeVllm } from './fakes/vllm.js';
import { FLAN_TASKS, listenGateway, startGateway, tinyLlamaRegistry } from './helpers/gateway.js';

const ONNX_MODEL = new URL('./fixtures/onnx/model', import.meta.url).pathname;
const flan = loadRegistry(FLAN_TASKS);
const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, x, i) => sum + x * b[i], 0);

t.test('the fast built-in encoder computes what the string-based reference implementation computes', async (t) => {
  const fit = flan.tasks.map((task) => ({ examples: task.examples.slice(0, 16) }));
  const fast = BuiltinEncoder.fit(fit);
  // The reference with the same features: word 1–2-grams and character unigrams.
  const reference = ReferenceNgramEncoder.fit(fit, { charNgrams: [1] });
  t.equal(fast.dimensions, reference.dimensions);
  let worst = 0;
  const prompts = [...flan.tasks.flatMap((task) => task.examples.slice(16, 18)), 'zzzz qqq', 'Ünïcödé façade 🙂 𝐀𝐁 東京, ﬁne', '   ', 'a\u00a0b\tc\nd'];
  for (const prompt of prompts) {
    const a = fast.encodeOne(prompt);
    const b = reference.encodeOne(prompt);
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  }
  t.ok(worst < 1e-5, `largest difference ${worst}`);
});

t.test('exact projection: dense dot products equal the sparse TF-IDF dot products', async (t) => {
  // One example a task: each task centroid is that example's sparse vector, so y(x)·y(e_t) must be x·e_t.
  const tasks = flan.tasks.slice(0, 12).map((task) => ({ examples: [task.examples[0]] }));
  const encoder = BuiltinEncoder.fit(tasks);
  const sparse = (text: string) => {
    const vector = encoder.sparse(text);
    const map = new Map<number, number>();
    for (let i = 0; i < vector.length; i++) map.set(vector.ids[i], vector.values[i]);
    return map;
  };
  const prompt = flan.tasks[3].examples[7];
  const x = sparse(prompt);
  const y = encoder.encodeOne(prompt);
  for (const task of tasks) {
    const e = sparse(task.examples[0]);
    let expected = 0;
    for (const [id, value] of x) expected += value * (e.get(id) ?? 0);
    const ye = encoder.encodeOne(task.examples[0]);
    t.ok(Math.abs(dot(y, ye) - expected) < 1e-5, `dot ${dot(y, ye)} vs sparse ${expected}`);
    t.ok(Math.abs(Math.hypot(...ye) - 1) < 1e-5, 'a centroid keeps unit length');
  }
});

t.test('hybrid: the cosine is the weighted sum of the two cosines', async (t) => {
  const onnx = await OnnxEncoder.load({ model: ONNX_MODEL, queryPrefix: '', examplePrefix: '', threads: 1, maxBatch: 8, batchWaitMs: 1 });
  t.teardown(() => onnx.close());
  const lexical = BuiltinEncoder.fit(flan.tasks.slice(0, 10));
  const hybrid = new HybridEncoder(lexical, onnx, 0.3);
  t.equal(hybrid.dimensions, lexical.dimensions + onnx.dimensions);
  const [a, b] = ['Translate to English: Wo ist der Bahnhof?', 'Is this movie review positive? loved it'];
  const [ha, hb] = await hybrid.encode([a, b]);
  const [la, lb] = await lexical.encode([a, b]);
  const [na, nb] = await onnx.encode([a, b]);
  t.ok(Math.abs(dot(ha, hb) - (0.7 * cosine(la, lb) + 0.3 * cosine(na, nb))) < 1e-5);
  t.ok(Math.abs(Math.hypot(...ha) - 1) < 1e-5);
  t.not(hybrid.fingerprint, new HybridEncoder(lexical, onnx, 0.5).fingerprint, 'the weight is part of the fingerprint');
});

const subset = ['sst2', 'wmt16_translate_deen', 'e2e_nlg', 'squad_v1', 'anli_r1', 'cola'];

t.test('LORAUTER_ENCODER=onnx: route; similarities are cosines to the prefixed example centroids', async (t) => {
  const gw = await startGateway({ tasks: FLAN_TASKS, encoder: { kind: 'onnx', model: ONNX_MODEL, queryPrefix: 'query: ', examplePrefix: 'passage: ' } });
  t.teardown(() => gw.close());
  const prompt = flan.tasks.find((task) => task.id === 'sst2')!.examples[19];
  const response = await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: prompt, top_k: 5 } });
  t.equal(response.statusCode, 200);
  const body = response.json();
  t.match(body.encoder, /^onnx:/);
  // Independent of the router: a fresh encoder, prompt with the query prefix, examples with the example prefix.
  const onnx = await OnnxEncoder.load({ model: ONNX_MODEL, queryPrefix: '', examplePrefix: '', threads: 1, maxBatch: 32, batchWaitMs: 1 });
  t.teardown(() => onnx.close());
  const [query] = await onnx.encode([`query: ${prompt}`]);
  for (const task of body.tasks) {
    const examples = flan.tasks.find((x) => x.id === task.id)!.examples.map((example) => `passage: ${example}`);
    const centroid = meanOfNormalized(await onnx.encode(examples));
    t.ok(Math.abs(cosine(query, centroid) - task.similarity) < 1e-4, `${task.id}: ${task.similarity}`);
  }
});

t.test('LORAUTER_ENCODER=remote: route and proxy end to end; an outage is a 503', async (t) => {
  const { fake: embeddings } = await startFakeEmbeddings({ model: 'bge-small', dimensions: 64, apiKey: 'k' });
  const vllm = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'] });
  const gw = await listenGateway(
    {
      encoder: { kind: 'remote', url: embeddings.url, modelName: 'bge-small', apiKey: 'k', retries: 0, timeoutMs: 500 },
      upstream: { url: vllm.url, kind: 'vllm', vllmMode: 'top1', baseModel: 'tiny-llama' },
    },
    { registry: await tinyLlamaRegistry() },
  );
  t.teardown(async () => {
    await gw.close();
    await vllm.stop();
    await embeddings.stop().catch(() => {});
  });
  const route = await fetch(`${gw.url}/v1/route`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'Review: great movie, loved the acting. Is it positive or negative?' }) });
  const decision = await route.json();
  t.match(decision.encoder, /^remote:/);
  t.equal(decision.tasks.length, 3);
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const { response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: 'Translate to English: Ich bin müde' }] }).withResponse();
  t.match(response.headers.get('x-lorauter-adapters'), /=/);
  t.equal(vllm.last('/v1/chat/completions').body.model, response.headers.get('x-lorauter-adapters')!.split('=')[0]);

  await embeddings.stop();
  const down = await fetch(`${gw.url}/v1/route`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'a prompt never seen before' }) });
  t.equal(down.status, 503);
  t.match(await down.json(), { error: { type: 'service_unavailable', code: 'encoder_unavailable', message: /embeddings server failed/ } });
});

t.test('a bad encoder setup stops start-up with what to do', async (t) => {
  await t.rejects(startGateway({ encoder: { kind: 'onnx' } }), /needs LORAUTER_ENCODER_MODEL/);
  await t.rejects(startGateway({ encoder: { kind: 'remote' } }), /needs LORAUTER_ENCODER_URL/);
  await t.rejects(startGateway({ encoder: { kind: 'hybrid' } }), /needs a neural encoder/);
  await t.rejects(startGateway({ encoder: { kind: 'remote', url: 'http://127.0.0.1:9', retries: 0 } }), /did not answer a test request/);
});

t.test('LORAUTER_ENCODER=hybrid routes through both halves', async (t) => {
  const registry = loadRegistry(FLAN_TASKS);
  const gw = await startGateway({ encoder: { kind: 'hybrid', model: ONNX_MODEL, hybridWeight: 0.4 } }, { registry: { ...registry, tasks: registry.tasks.filter((task) => subset.includes(task.id)) } });
  t.teardown(() => gw.close());
  const response = await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'Translate to English: Wo ist der Bahnhof?' } });
  t.match(response.json(), { encoder: /^hybrid:/, tasks: [{ id: 'wmt16_translate_deen' }] });
});
