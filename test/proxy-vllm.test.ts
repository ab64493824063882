import t, { type Test as Tap } from 'tap';
import OpenAI from 'openai';
import { startFakeVllm } from './fakes/vllm.js';
import { listenGateway, tinyLlamaRegistry } from './helpers/gateway.js';
import { until } from './helpers/wait.js';

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

t.test('a streamed answer read to [DONE]: what follows is drained, not cut off, so the upstream connection is reused', async (t) => {
  const { fake, client } = await setup(t, { vllmMode: 'top1' });
  // The body's last chunk comes on its own after [DONE], as from a server that writes them apart.
  fake.behaviour = { endDelayMs: 30 };
  for (let i = 0; i < 5; i++) {
    const stream = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: sentiment }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    t.match(text, /model=sst2/);
  }
  const streams = () => fake.received.filter((request) => request.path === '/v1/chat/completions');
  await until(() => streams().every((request) => request.closed), 'the upstream to finish the five answers');
  t.same(streams().map((request) => request.aborted), [false, false, false, false, false], 'none cut off by the gateway');
});

t.test('a streamed answer carries the request id and the decision headers, and is counted in /metrics like any answer', async (t) => {
  const { gw } = await setup(t, { vllmMode: 'top1' });
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'stream-1' },
    body: JSON.stringify({ model: 'lorauter', messages: [{ role: 'user', content: sentiment }], stream: true }),
  });
  t.equal(response.status, 200);
  t.equal(response.headers.get('x-request-id'), 'stream-1');
  t.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  t.equal(response.headers.get('x-lorauter-composition'), 'top1');
  t.match(response.headers.get('x-lorauter-adapters'), /^sst2=/);
  t.match(await response.text(), /"model":"lorauter"[\s\S]*data: \[DONE\]\n\n$/);
  // The response's end is counted by the onResponse hook, which runs once the stream has finished.
  const counted = /lorauter_http_requests_total\{route="\/v1\/chat\/completions",method="POST",status="200"\} 1\n/;
  let metrics = '';
  await until(async () => counted.test((metrics = await (await fetch(`${gw.url}/metrics`)).text())), 'the streamed answer to be counted');
  t.match(metrics, /lorauter_http_request_duration_seconds_count\{route="\/v1\/chat\/completions"\} 1\n/);
});

t.test('unknown model names get vLLM\'s 404, passed through', async (t) => {
  const { client } = await setup(t, { vllmMode: 'top1' });
  t.equal((await client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }).catch((error) => error)).status, 404);
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
