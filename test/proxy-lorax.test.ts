import t from 'tap';
import OpenAI from 'openai';
import { startFakeLorax } from './fakes/lorax.js';
import { listenGateway, tinyLlamaRegistry } from './helpers/gateway.js';

const registry = await tinyLlamaRegistry();
const fake = await startFakeLorax();
// These tests are about composing mixtures: no abstention (tested in abstention.test.ts).
const gw = await listenGateway({ upstream: { url: fake.url, kind: 'lorax' }, temperature: 1, minConfidence: 0, defaultBaseExamples: false }, { registry: { ...registry, adapters: new Map([...registry.adapters].map(([id]) => [id, { id }])) } });
t.teardown(async () => {
  await gw.close();
  await fake.stop();
});
const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 });
const mixedPrompt = 'Translate to English and say whether it is positive: Das Restaurant The Eagle ist ein schönes Café.';

t.test('completions: native /generate with merged_adapters (linear), answer in OpenAI shape', async (t) => {
  const { data, response } = await client.completions.create({ model: 'lorauter', prompt: mixedPrompt, max_tokens: 16, temperature: 0, top_p: 1 }).withResponse();
  const sent = fake.last('/generate').body;
  t.equal(sent.inputs, mixedPrompt);
  t.equal(sent.parameters.max_new_tokens, 16);
  t.notOk('temperature' in sent.parameters, 'temperature 0 is LoRAX greedy default, not sent');
  t.notOk('top_p' in sent.parameters, 'top_p 1 is not sent (LoRAX wants < 1)');
  const weights = Object.fromEntries(response.headers.get('x-lorauter-adapters')!.split(',').map((p) => p.split('=')).map(([id, w]) => [id, Number(w)]));
  t.equal(sent.parameters.merged_adapters.merge_strategy, 'linear');
  t.same(sent.parameters.merged_adapters.ids, Object.keys(weights));
  sent.parameters.merged_adapters.weights.forEach((w: number, i: number) => t.ok(Math.abs(w - Object.values(weights)[i]) < 1e-3));
  t.equal(response.headers.get('x-lorauter-composition'), 'merged_adapters');
  t.equal(data.object, 'text_completion');
  t.match(data.choices[0], { index: 0, text: /^hello from lorax merged=/, finish_reason: 'length' });
  t.equal(data.usage?.prompt_tokens, 7);
});

t.test('completions, stream: /generate_stream translated to OpenAI chunks and [DONE]', async (t) => {
  const stream = await client.completions.create({ model: 'lorauter', prompt: mixedPrompt, stream: true, temperature: 0.7 });
  let text = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    text += chunk.choices[0].text;
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  t.match(text, /^hello from lorax merged=/);
  t.equal(finish, 'stop', 'eos_token → stop');
  t.equal(fake.last('/generate_stream').body.parameters.temperature, 0.7);
  const raw = await (await fetch(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'lorauter', prompt: 'x y z', stream: true }) })).text();
  t.match(raw, /data: \[DONE\]\n\n$/);
});

t.test('a single adapter goes as adapter_id', async (t) => {
  await client.completions.create({ model: 'lorauter', prompt: 'Is this review positive or negative? a great movie', lorauter: { top_k: 1 } } as never);
  const parameters = fake.last('/generate').body.parameters;
  t.equal(parameters.adapter_id, 'sst2');
  t.notOk('merged_adapters' in parameters);
});

t.test('chat: the top adapter in model on LoRAX\'s OpenAI endpoint', async (t) => {
  const { data, response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: mixedPrompt }] }).withResponse();
  const top = response.headers.get('x-lorauter-adapters')!.split('=')[0];
  t.equal(fake.last('/v1/chat/completions').body.model, top);
  t.equal(response.headers.get('x-lorauter-composition'), 'top1');
  t.match(data.choices[0].message.content, new RegExp(`adapter=${top}`));
});

t.test('LoRAX validation errors keep their status, in the OpenAI shape', async (t) => {
  const response = await fetch(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'lorauter', prompt: 'hi', stop: ['a', 'b', 'c', 'd', 'e'] }) });
  t.equal(response.status, 200, 'more than 4 stops are cut to 4 before LoRAX sees them');
  const many = await fetch(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'lorauter', prompt: 'hi', max_tokens: 0 }) });
  t.equal(many.status, 422);
  t.match(await many.json(), { error: { message: /max_new_tokens/, type: 'validation' } });
  const batch = await fetch(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'lorauter', prompt: ['a', 'b'] }) });
  t.equal(batch.status, 400);
  t.match(await batch.json(), { error: { param: 'prompt' } });
});
