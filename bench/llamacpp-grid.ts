// npm run bench:llamacpp — what LORAUTER_LLAMACPP_WEIGHT_STEP does on a real llama.cpp server. llama-server
// batches only requests whose LoRA scales are equal (tools/server/README.md), and routed mixtures are almost
// all distinct: a grid makes concurrent requests share a configuration at the cost of fidelity. For each
// step, BENCH_CLIENTS concurrent clients send never-seen FLAN prompts through the gateway for BENCH_SECONDS;
// reported: generated tokens a second, distinct scale sets, mean fidelity; beside them one shared mixture
// (the batching ceiling). Needs a llama-server binary and the tiny GGUF model with four adapters (the
// shared folder beside the clone, or BENCH_LLAMA_SERVER / BENCH_GGUF_DIR); without them it says so and stops.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadRegistry } from '../src/registry/load.js';
import { FLAN } from './composition-setup.js';
import { GRID_FIT_EXAMPLES, GRID_TASKS } from './llamacpp-setup.js';
import { startChild, stopChild } from './load.js';
import { quantile } from './quantile.js';
import { freePort } from '../test/helpers/redis.js';

const env = process.env;
const root = new URL('..', import.meta.url).pathname;
const serverBinary = env.BENCH_LLAMA_SERVER ?? join(root, '../shared/tools/llama-server/llama-server');
const ggufDir = env.BENCH_GGUF_DIR ?? join(root, '../shared/data/tiny-llama-gguf');
const steps = (env.BENCH_STEPS ?? '0,0.1,0.25,0.5').split(',').map(Number);
const clients = Number(env.BENCH_CLIENTS ?? 32);
const slots = Number(env.BENCH_SLOTS ?? 8);
const seconds = Number(env.BENCH_SECONDS ?? 30);
const maxTokens = Number(env.BENCH_MAX_TOKENS ?? 32);

if (!existsSync(serverBinary) || !existsSync(join(ggufDir, 'base.gguf'))) {
  console.log(`bench:llamacpp skipped: no llama-server at ${serverBinary} or no base.gguf in ${ggufDir} (set BENCH_LLAMA_SERVER and BENCH_GGUF_DIR)`);
  process.exit(0);
}

const port = await freePort();
const llama = spawn(serverBinary, [
  '-m', join(ggufDir, 'base.gguf'),
  ...GRID_TASKS.flatMap((id) => ['--lora', join(ggufDir, `${id}.gguf`)]),
  '--lora-init-without-apply', '--jinja', '--chat-template-file', join(ggufDir, 'chat.jinja'),
  '--host', '127.0.0.1', '--port', String(port), '-np', String(slots), '-c', String(slots * 2048), '--no-webui',
], { stdio: 'ignore' });
const upstreamUrl = `http://127.0.0.1:${port}`;
for (const deadline = Date.now() + 60_000; ; ) {
  const healthy = await fetch(`${upstreamUrl}/health`).then((response) => response.ok, () => false);
  if (healthy) break;
  if (Date.now() > deadline) throw new Error('llama-server did not become healthy in 60 s');
  await new Promise((resolve) => setTimeout(resolve, 250));
}

// Never-seen prompts: the four tasks' held-out examples and the other FLAN tasks' prompts, routed over four adapters.
const flan = loadRegistry(FLAN);
// Prompts of up to 1,500 characters (a few hundred tokens): the tiny model's context holds them, and the bench measures batching, not long prompts.
const prompts = flan.tasks.flatMap((task) => (GRID_TASKS.includes(task.id) ? task.examples.slice(GRID_FIT_EXAMPLES) : task.examples.slice(0, 5))).filter((prompt) => prompt.length <= 1500);

interface Run {
  label: string;
  tokensPerSecond: number;
  requests: number;
  distinctScales: number;
  fidelity: number;
  p50Ms: number;
}

async function run(label: string, step: number, body: (i: number) => Record<string, unknown>, url: (base: string) => string): Promise<Run> {
  const child = await startChild(new URL('./llamacpp-gateway.ts', import.meta.url).pathname, { BENCH_UPSTREAM_URL: upstreamUrl, BENCH_WEIGHT_STEP: String(step) });
  const base = `http://127.0.0.1:${child.info.port}`;
  let next = 0;
  let tokens = 0;
  const fidelities: number[] = [];
  const latencies: number[] = [];
  const scales = new Set<string>();
  const started = performance.now();
  const until = started + seconds * 1000;
  try {
    await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        const i = next++;
        const sent = performance.now();
        const response = await fetch(url(base), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body(i)) });
        const answer = (await response.json()) as { usage?: { completion_tokens?: number } };
        if (response.status !== 200) throw new Error(`${label}: ${response.status} ${JSON.stringify(answer)}`);
        latencies.push(performance.now() - sent);
        tokens += answer.usage?.completion_tokens ?? 0;
        const served = response.headers.get('x-lorauter-served');
        if (served) scales.add(served);
        const fidelity = response.headers.get('x-lorauter-fidelity');
        if (fidelity) fidelities.push(Number(fidelity));
      }
    }),
    );
  } finally {
    await stopChild(child);
  }
  const elapsed = (performance.now() - started) / 1000;
  return {
    label,
    tokensPerSecond: tokens / elapsed,
    requests: latencies.length,
    distinctScales: scales.size,
    fidelity: fidelities.length ? fidelities.reduce((a, b) => a + b, 0) / fidelities.length : NaN,
    p50Ms: quantile(latencies, 0.5),
  };
}

const chat = (i: number) => ({ model: 'lorauter', messages: [{ role: 'user', content: prompts[i % prompts.length] }], max_tokens: maxTokens, temperature: 0 });
const results: Run[] = [];
try {
  // The ceiling: the same prompts, every request with the same scales (one adapter named), so the server batches them all.
  results.push(await run('one shared adapter (ceiling)', 0, (i) => ({ ...chat(i), model: GRID_TASKS[0] }), (base) => `${base}/v1/chat/completions`));
  for (const step of steps) results.push(await run(step === 0 ? 'exact scales (step 0, the default)' : `grid step ${step}`, step, chat, (base) => `${base}/v1/chat/completions`));
} finally {
  llama.kill('SIGKILL');
}
const ceiling = results[0].tokensPerSecond;
console.log(`\nllama-server, ${slots} slots, ${clients} concurrent clients, ${seconds} s a run, ${maxTokens} tokens an answer, ${GRID_TASKS.length} adapters`);
console.table(
  results.map((r) => ({
    run: r.label,
    'tokens/s': r.tokensPerSecond.toFixed(1),
    '× ceiling': (r.tokensPerSecond / ceiling).toFixed(2),
    requests: r.requests,
    'distinct scale sets': r.distinctScales,
    'mean fidelity': Number.isFinite(r.fidelity) ? r.fidelity.toFixed(3) : 'n/a',
    'p50 ms': r.p50Ms.toFixed(0),
  })),
);
