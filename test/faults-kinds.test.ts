// Every upstream kind's fake failing the way servers fail: a 500, a dropped connection, no answer, a
// 200 that is not JSON. Each request gets an OpenAI-shaped error with the right status, within the
// headers timeout (and a margin for a busy machine), and the next request after the fault is served.
import t from 'tap';
import type { ServerResponse } from 'node:http';
import { startFakeLlamaCpp } from './fakes/llamacpp.js';
import { startFakeLorax } from './fakes/lorax.js';
import { startFakeSglang } from './fakes/sglang.js';
import { startFakeVllm } from './fakes/vllm.js';
import { listenGateway, tinyLlamaRegistry } from './helpers/gateway.js';

const HEADERS_TIMEOUT_MS = 500;
const MARGIN_MS = 2500;
const CONCURRENT = 20;

type Fault = 'error' | 'drop' | 'stall' | 'garbage';
const EXPECTED: Record<Fault, number[]> = { error: [500], drop: [502], stall: [504], garbage: [502] };

const kinds = {
  llamacpp: () => startFakeLlamaCpp(['/m/sst2.gguf', '/m/wmt16_translate_deen.gguf', '/m/e2e_nlg.gguf']),
  vllm: () => startFakeVllm({ baseModel: 'base', staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'] }),
  sglang: () => startFakeSglang({ baseModel: 'base', staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'] }),
  lorax: () => startFakeLorax(),
};

const registry = await tinyLlamaRegistry();
const bareAdapters = { ...registry, adapters: new Map([...registry.adapters].map(([id]) => [id, { id }])) };

for (const [kind, start] of Object.entries(kinds)) {
  t.test(`${kind}: a 500, a dropped connection, no answer, a 200 that is not JSON — each an OpenAI error in time, then served again`, async (t) => {
    const fake = await start();
    const gw = await listenGateway(
      { upstream: { url: fake.url, kind, baseModel: 'base', headersTimeoutMs: HEADERS_TIMEOUT_MS }, minConfidence: 0, defaultBaseExamples: false },
      { registry: bareAdapters },
    );
    t.teardown(async () => {
      await gw.close();
      await fake.stop();
    });
    const chat = async () => {
      const started = performance.now();
      const response = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'lorauter', messages: [{ role: 'user', content: 'Is the sentiment of this review positive? I loved it' }] }),
      });
      const body = (await response.json()) as { error?: { message?: unknown; type?: unknown; param?: unknown; code?: unknown } };
      return { status: response.status, body, ms: performance.now() - started };
    };
    t.equal((await chat()).status, 200, 'served before any fault');
    for (const fault of ['error', 'drop', 'stall', 'garbage'] as Fault[]) {
      const garbage = (res: ServerResponse) => void (res.writeHead(200, { 'content-type': 'application/json' }), res.end('<html>upstream proxy error</html>'));
      // The fault hits the answering endpoints; the drivers' own lookups (llama.cpp's /lora-adapters) keep working.
      fake.behaviour = fault === 'garbage' ? { respond: garbage } : { fault: (request) => (/completions|generate/.test(request.path) ? fault : undefined) };
      const answers = await Promise.all(Array.from({ length: CONCURRENT }, chat));
      t.ok(answers.every((answer) => EXPECTED[fault].includes(answer.status)), `${fault}: ${[...new Set(answers.map((answer) => answer.status))]}`);
      t.ok(answers.every((answer) => typeof answer.body.error?.message === 'string' && 'param' in answer.body.error && 'code' in answer.body.error), `${fault}: OpenAI error shape`);
      const slowest = Math.max(...answers.map((answer) => answer.ms));
      t.ok(slowest < HEADERS_TIMEOUT_MS + MARGIN_MS, `${fault}: the slowest after ${Math.round(slowest)} ms`);
      fake.behaviour = {};
      t.equal((await chat()).status, 200, `${fault}: served again once the upstream is`);
    }
  });
}
