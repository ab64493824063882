import t, { type Test as Tap } from 'tap';
import OpenAI from 'openai';
import { calibrateTasks, confidenceOf, normalCdf } from '../src/router/calibration.js';
import { heldOutSimilarities } from '../src/router/held-out.js';
import { meanOfNormalized } from '../src/router/math.js';
import type { Encoder } from '../src/encoders/encoder.js';
import { startFakeLlamaCpp } from './fakes/llamacpp.js';
import { startFakeLorax } from './fakes/lorax.js';
import { startFakeVllm } from './fakes/vllm.js';
import { FLAN_TASKS, listenGateway, startGateway, tinyLlamaRegistry } from './helpers/gateway.js';
import { loadRegistry } from '../src/registry/load.js';
import { DEFAULT_BASE_EXAMPLES } from '../src/registry/base-examples.js';
import { cosine } from '../src/router/math.js';

const sentiment = 'Is the sentiment of the following sentence positive or negative? a gorgeous, witty, seductive movie. OPTIONS: - negative - positive';
const translation = 'Translate to English: Das Wetter ist heute sehr schön und wir gehen spazieren.';

t.test('normal CDF and confidence: hand-checked values, monotone, in [0, 1]', async (t) => {
  t.ok(Math.abs(normalCdf(0) - 0.5) < 1e-7);
  t.ok(Math.abs(normalCdf(1.959964) - 0.975) < 1e-6);
  t.ok(Math.abs(normalCdf(-1) - 0.158655) < 1e-6);
  const calibration = { mean: 0.8, spread: 0.05 };
  t.ok(Math.abs(confidenceOf(0.8, calibration) - 0.5) < 1e-7, 'a typical similarity is 0.5');
  t.ok(Math.abs(confidenceOf(0.7, calibration) - 0.02275) < 1e-5, 'two spreads below: 2.3%');
  let previous = -1;
  for (let s = -1; s <= 1; s += 0.01) {
    const c = confidenceOf(s, calibration);
    t.ok(c >= 0 && c <= 1 && c >= previous, `monotone at ${s.toFixed(2)}`);
    previous = c;
  }
});

t.test('calibration: per-task mean and spread, shrunk towards the registry for few examples', async (t) => {
  const [a, b, none] = calibrateTasks([[0.9, 0.8, 0.7, 0.8], [0.5, 0.7], []]);
  // Registry: mean of all 6 samples 0.7333…, variance the mean of the tasks' sample variances (0.00667, 0.02).
  const pooledMean = (0.9 + 0.8 + 0.7 + 0.8 + 0.5 + 0.7) / 6;
  const pooledVariance = (0.02 / 3 + 0.02) / 2;
  t.ok(Math.abs(a.mean - (2 * pooledMean + 4 * 0.8) / 6) < 1e-12, `mean ${a.mean}`);
  t.ok(Math.abs(a.spread - Math.sqrt((4 * pooledVariance + 3 * (0.02 / 3)) / 7)) < 1e-12, `spread ${a.spread}`);
  t.ok(Math.abs(b.mean - (2 * pooledMean + 2 * 0.6) / 4) < 1e-12);
  t.ok(Math.abs(none.mean - pooledMean) < 1e-12, 'a task without held-out examples takes the registry figures');
  t.ok(Math.abs(none.spread - Math.sqrt(pooledVariance)) < 1e-12);
});

t.test('held-out evidence: each example against the unit centroid of the others in its task', async (t) => {
  // A fixed encoder: a text's vector is its letters a, b, c counted.
  const encoder: Encoder = {
    kind: 'letters',
    fingerprint: 'letters:1',
    dimensions: 3,
    async encode(texts) {
      return texts.map((text) => Float32Array.from(['a', 'b', 'c'], (letter) => text.split(letter).length - 1));
    },
  };
  const tasks = [
    { id: 'x', examples: ['aab', 'abb', 'aaa'], adapterScores: {} },
    { id: 'y', examples: ['ccc', 'cbc', 'acc'], adapterScores: {} },
  ];
  const samples = await heldOutSimilarities(tasks, () => encoder, encoder, 3);
  const vector = async (text: string) => (await encoder.encode([text]))[0];
  for (const [t_, task] of tasks.entries()) {
    for (let i = 0; i < 3; i++) {
      const others = await Promise.all(task.examples.filter((_, j) => j !== i).map(vector));
      // The dot product with the unit centroid: the cosine times the example vector's length.
      const example = await vector(task.examples[i]);
      const centroid = meanOfNormalized(others);
      const expected = example.reduce((sum, x, d) => sum + x * centroid[d], 0);
      t.ok(samples[t_].some((value) => Math.abs(value - expected) < 1e-6), `${task.id}[${i}] = ${expected}`);
    }
    t.equal(samples[t_].length, 3);
  }
});

t.test('/v1/route: confidence on every decision; off-topic prompts abstain, on-topic ones do not', async (t) => {
  const gw = await startGateway({}, { registry: await tinyLlamaRegistry() });
  t.teardown(() => gw.close());
  const route = async (input: string) => (await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input } })).json();
  for (const prompt of [sentiment, translation]) {
    const body = await route(prompt);
    t.match(body, { abstained: false }, prompt.slice(0, 30));
    t.ok(body.confidence >= gw.gateway.config.minConfidence && body.confidence <= 1);
    t.ok(body.adapters.length > 0);
  }
  for (const prompt of ['hello!', 'thanks, have a nice day', 'What is the capital of Australia?']) {
    const body = await route(prompt);
    t.match(body, { abstained: true, adapters: [], abstain_reason: /^(low_confidence|base_example)$/ }, prompt);
    t.equal(body.tasks.length, 3, 'tasks still listed with their similarities');
    t.ok(body.confidence >= 0 && body.confidence <= 1);
  }
  const off = await startGateway({ minConfidence: 0, defaultBaseExamples: false }, { registry: await tinyLlamaRegistry() });
  t.teardown(() => off.close());
  const body = (await off.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'What is the capital of Australia?' } })).json();
  t.match(body, { abstained: false }, 'LORAUTER_MIN_CONFIDENCE=0 and no base examples: never abstains');
  t.ok(body.adapters.length > 0);
});

t.test('the abstention boundary: a confidence equal to LORAUTER_MIN_CONFIDENCE is routed, one just under it abstains', async (t) => {
  const registry = await tinyLlamaRegistry();
  const decide = async (minConfidence: number) => {
    const gw = await startGateway({ minConfidence, defaultBaseExamples: false }, { registry });
    try {
      return (await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: sentiment } })).json();
    } finally {
      await gw.close();
    }
  };
  const { confidence } = await decide(0);
  t.ok(confidence > 0.01 && confidence < 0.99, `a confidence inside (0, 1): ${confidence}`);
  t.match(await decide(confidence), { abstained: false, confidence }, 'at the threshold: routed');
  t.match(await decide(Math.min(1, confidence + 1e-9)), { abstained: true, abstain_reason: 'low_confidence', adapters: [], confidence }, 'a hair above the confidence: abstains');
  t.match(await decide(confidence * 0.9), { abstained: false }, 'below it: routed');
});

t.test('the base-example rule matches a brute-force comparison with every example', async (t) => {
  const flan = loadRegistry(FLAN_TASKS);
  const registry = { ...flan, tasks: flan.tasks.slice(0, 30).map((task) => ({ ...task, examples: task.examples.slice(0, 12) })) };
  const gw = await startGateway({ minConfidence: 0 }, { registry });
  t.teardown(() => gw.close());
  const router = gw.gateway.router;
  const examples = new Map(await Promise.all(registry.tasks.map(async (task) => [task.id, await router.encoder.encode(task.examples, 'example')] as const)));
  const base = await router.encoder.encode(DEFAULT_BASE_EXAMPLES, 'example');
  const prompts = [
    ...flan.tasks.slice(0, 40).flatMap((task) => task.examples.slice(18)),
    ...DEFAULT_BASE_EXAMPLES.map((example) => `${example} please`),
    'hello!', 'thanks, have a nice day', 'What is the capital of Australia?', 'tell me a joke about cats', 'how are you today?',
  ];
  let byBase = 0;
  for (const prompt of prompts) {
    const decision = await router.route(prompt);
    const [query] = await router.encoder.encode([prompt]);
    const nearestBase = Math.max(...base.map((vector) => cosine(vector, query)));
    const nearestTask = Math.max(...decision.tasks.flatMap((task) => examples.get(task.id)!.map((vector) => cosine(vector, query))));
    const expected = nearestBase >= nearestTask + gw.gateway.config.baseMargin;
    if (Math.abs(nearestBase - nearestTask - gw.gateway.config.baseMargin) < 1e-5) continue;
    t.equal(decision.abstainReason === 'base_example', expected, prompt.slice(0, 40));
    if (expected) byBase++;
  }
  t.ok(byBase >= 5 && byBase < prompts.length / 2, `${byBase} of ${prompts.length} prompts went to the base model by the rule`);
});

t.test('base examples from the registry file win over the built-in set', async (t) => {
  const registry = await tinyLlamaRegistry();
  const gw = await startGateway({ minConfidence: 0 }, { registry: { ...registry, baseExamples: ['Please write a limerick about a kangaroo', 'Compose a limerick about my neighbour'] } });
  t.teardown(() => gw.close());
  const route = async (input: string) => (await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input } })).json();
  t.match(await route('write a limerick about a lazy kangaroo'), { abstained: true, abstain_reason: 'base_example' });
  t.match(await route(sentiment), { abstained: false });
});

t.test('metrics and the decision log line (no prompt text in the log)', async (t) => {
  const gw = await startGateway({}, { registry: await tinyLlamaRegistry() });
  t.teardown(() => gw.close());
  await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: sentiment } });
  await gw.app.inject({ method: 'POST', url: '/v1/route', payload: { input: 'hello!' } });
  const metrics = (await gw.app.inject({ url: '/metrics' })).body;
  t.match(metrics, /lorauter_route_confidence_count 2/);
  t.match(metrics, /lorauter_adapter_decisions_total\{adapter="base"\} 1/);
  t.match(metrics, /lorauter_adapter_decisions_total\{adapter="sst2"\} 1/);
  const lines = gw.logs.filter((line) => line.msg === 'routed');
  t.equal(lines.length, 2);
  t.match(lines[1], { endpoint: 'route', abstained: /base_example|low_confidence/, confidence: Number, reqId: String });
  t.notOk(JSON.stringify(gw.logs).includes('gorgeous'), 'the prompt text is never logged');
});

/** A gateway over a fake upstream, both closed when the test ends, and an OpenAI client for it. */
async function proxied(t: Tap, fake: { url: string; stop(): Promise<void> }, upstream: Record<string, unknown>, overrides: Record<string, unknown> = {}) {
  const gw = await listenGateway({ upstream: { url: fake.url, ...upstream }, ...overrides }, { registry: await tinyLlamaRegistry() });
  t.teardown(async () => {
    await gw.close();
    await fake.stop();
  });
  return { gw, client: new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 }) };
}

t.test('abstention through the proxy: the base model gets the request, no adapter attached', async (t) => {
  const greeting = [{ role: 'user' as const, content: 'hello! how are you doing today?' }];

  t.test('vLLM: model is the base model', async (t) => {
    const fake = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'] });
    const { client } = await proxied(t, fake, { kind: 'vllm', vllmMode: 'top1', baseModel: 'tiny-llama' });
    const { data, response } = await client.chat.completions.create({ model: 'lorauter', messages: greeting }).withResponse();
    t.equal(fake.last('/v1/chat/completions').body.model, 'tiny-llama');
    t.match(response.headers.get('x-lorauter-composition'), /^base; reason=(low_confidence|base_example)$/);
    t.equal(response.headers.get('x-lorauter-adapters'), '');
    t.ok(Number(response.headers.get('x-lorauter-confidence')) >= 0);
    t.match(data.choices[0].message.content, /model=tiny-llama/);
    const stream = await client.completions.create({ model: 'lorauter', prompt: 'hello! how are you doing today?', stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    t.match(text, /model=tiny-llama/, 'stream too');
    await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: sentiment }] });
    t.equal(fake.last('/v1/chat/completions').body.model, 'sst2', 'an on-topic prompt still gets its adapter');
  });

  t.test('vLLM without a configured base model: no model field (vLLM serves its base model)', async (t) => {
    const fake = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2'] });
    const { client } = await proxied(t, fake, { kind: 'vllm', vllmMode: 'top1' });
    const { data } = await client.chat.completions.create({ model: 'lorauter', messages: greeting }).withResponse();
    t.notOk('model' in fake.last('/v1/chat/completions').body);
    t.match(data.choices[0].message.content, /model=tiny-llama/);
  });

  t.test('llama.cpp: lora is an empty list (every adapter at scale 0)', async (t) => {
    const fake = await startFakeLlamaCpp(['/models/sst2.gguf', '/models/wmt16_translate_deen.gguf']);
    const { gw, client } = await proxied(t, fake, { kind: 'llamacpp', baseModel: 'tiny-llama' });
    const { response } = await client.chat.completions.create({ model: 'lorauter', messages: greeting }).withResponse();
    t.same(fake.last('/v1/chat/completions').body.lora, []);
    t.match(response.headers.get('x-lorauter-composition'), /^base; reason=/);
    const native = await fetch(`${gw.url}/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'hello! how are you doing today?' }) });
    t.equal(native.status, 200);
    t.same(fake.last('/completion').body.lora, []);
    t.match(native.headers.get('x-lorauter-composition'), /^base; reason=/);
  });

  t.test('LoRAX: chat with model "" and completions without adapter_id', async (t) => {
    const fake = await startFakeLorax();
    const { client } = await proxied(t, fake, { kind: 'lorax' });
    const { response } = await client.chat.completions.create({ model: 'lorauter', messages: greeting }).withResponse();
    t.equal(fake.last('/v1/chat/completions').body.model, '');
    t.match(response.headers.get('x-lorauter-composition'), /^base; reason=/);
    const completion = await client.completions.create({ model: 'lorauter', prompt: 'hello! how are you doing today?', max_tokens: 4 });
    const parameters = fake.last('/generate').body.parameters;
    t.notOk('adapter_id' in parameters);
    t.notOk('merged_adapters' in parameters);
    t.notOk('adapter_source' in parameters);
    t.match(completion.choices[0].text, /adapter=base/);
  });
});

t.test('sticky conversations keep their adapters across turns and re-route on a confident change of topic', async (t) => {
  const registry = await tinyLlamaRegistry();
  const fake = await startFakeLlamaCpp(['/models/sst2.gguf', '/models/wmt16_translate_deen.gguf', '/models/e2e_nlg.gguf']);
  const gw = await listenGateway({ upstream: { url: fake.url, kind: 'llamacpp' }, conversation: 'sticky', rerouteConfidence: 0.5 }, { registry });
  t.teardown(async () => {
    await gw.close();
    await fake.stop();
  });
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const first = [{ role: 'system' as const, content: 'You are helpful.' }, { role: 'user' as const, content: sentiment }];
  const turn1 = await client.chat.completions.create({ model: 'lorauter', messages: first }).withResponse();
  const adapters1 = turn1.response.headers.get('x-lorauter-adapters');
  t.match(adapters1, /^sst2=/);
  const vague = [...first, { role: 'assistant' as const, content: 'Positive.' }, { role: 'user' as const, content: 'and why do you think so, in a few words?' }];
  const turn2 = await client.chat.completions.create({ model: 'lorauter', messages: vague }).withResponse();
  t.equal(turn2.response.headers.get('x-lorauter-adapters'), adapters1, 'a vague follow-up keeps the adapters');
  t.match(turn2.response.headers.get('x-lorauter-composition'), /conversation=sticky$/);
  const change = [...vague, { role: 'assistant' as const, content: 'Because of the adjectives.' }, { role: 'user' as const, content: translation }];
  const turn3 = await client.chat.completions.create({ model: 'lorauter', messages: change }).withResponse();
  t.match(turn3.response.headers.get('x-lorauter-adapters'), /^wmt16_translate_deen=/, 'a confident new topic re-routes');
  t.match(turn3.response.headers.get('x-lorauter-composition'), /conversation=rerouted$/);

  const routed = (await (await fetch(`${gw.url}/v1/route`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: vague }) })).json()) as { conversation: string; adapters: { id: string }[] };
  t.match(routed, { conversation: 'sticky', adapters: [{ id: 'sst2' }] }, '/v1/route follows the same rule');

  const last = await listenGateway({ upstream: { url: fake.url, kind: 'llamacpp' }, minConfidence: 0, defaultBaseExamples: false }, { registry });
  t.teardown(() => last.close());
  const lastClient = new OpenAI({ baseURL: `${last.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const followUp = [...vague.slice(0, 3), { role: 'user' as const, content: 'Translate to English: Guten Morgen' }];
  const plain = await lastClient.chat.completions.create({ model: 'lorauter', messages: followUp }).withResponse();
  t.match(plain.response.headers.get('x-lorauter-adapters'), /^wmt16_translate_deen=/, 'last_user (default) routes every turn on its own');
  t.notMatch(plain.response.headers.get('x-lorauter-composition'), /conversation/);
});
