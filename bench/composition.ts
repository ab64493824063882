// npm run bench:composition — composition at real adapter sizes under a prompt stream (issue: merges
// that hold up). 48 synthetic adapters of Llama-2-7B shape (rank 16, all linear modules, fp16, ~80 MB
// each, generated once into BENCH_ADAPTER_DIR), a vLLM stand-in that models residency, and held-out FLAN
// prompts replayed at a fixed rate. Compares today's behaviour (build while the request waits), the
// planner (defaults) and top1; then the planner's fidelity against its build budget (an SVG plot).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRegistry } from '../src/registry/load.js';
import { LLAMA_2_7B, writeSyntheticAdapter } from './peft-synthetic.js';
import { FIT_EXAMPLES, FLAN, TASKS } from './composition-setup.js';
import { startChild, stopChild } from './load.js';
import { quantile } from './quantile.js';
import { startResidencyVllm } from './vllm-residency.js';
import { MergeSettings } from '../src/upstreams/merge/settings.js';

const DEFAULT_BUILDS_PER_MINUTE = (MergeSettings.maxNewMergesPerMinute as { default?: number }).default ?? 60;

if (process.argv.includes('--help')) {
  console.log(`npm run bench:composition — needs ~4 GB free in BENCH_ADAPTER_DIR and ~8 GB in BENCH_MERGE_DIR.
  BENCH_ADAPTER_DIR  synthetic adapters, kept between runs (default ${join(tmpdir(), 'lorauter-bench-adapters')})
  BENCH_MERGE_DIR    merge folder (default a temporary folder, removed)
  BENCH_RATE         requests a second (20)        BENCH_SECONDS  stream length a mode (120: the issue's 2,400 requests)
  BENCH_MODES        wait,planner,top1             BENCH_CURVE    build budgets a minute for the plot (15,60,240; empty: none)
  BENCH_MAX_LORAS    the stand-in's max_loras (8)  BENCH_MS_PER_MB load time (4)   BENCH_SERVICE_MS (200)`);
  process.exit(0);
}

const env = process.env;
const rate = Number(env.BENCH_RATE ?? 20);
const seconds = Number(env.BENCH_SECONDS ?? 120);
const modes = (env.BENCH_MODES ?? 'wait,planner,top1').split(',').filter(Boolean);
const curve = (env.BENCH_CURVE ?? '15,60,240').split(',').filter(Boolean).map(Number);
const adapterDir = env.BENCH_ADAPTER_DIR ?? join(tmpdir(), 'lorauter-bench-adapters');
const mergeRoot = env.BENCH_MERGE_DIR ?? join(tmpdir(), `lorauter-bench-merges-${process.pid}`);
const residency = { maxLoras: Number(env.BENCH_MAX_LORAS ?? 8), msPerMb: Number(env.BENCH_MS_PER_MB ?? 4), serviceMs: Number(env.BENCH_SERVICE_MS ?? 200) };

// Adapters: generated once (never committed), ~80 MB each.
mkdirSync(adapterDir, { recursive: true });
let generated = 0;
for (let i = 0; i < TASKS; i++) {
  const dir = join(adapterDir, `adapter-${i}`);
  if (existsSync(join(dir, 'adapter_model.safetensors'))) continue;
  writeSyntheticAdapter(dir, { arch: LLAMA_2_7B, rank: 16 });
  generated++;
}
const adapterMb = statSync(join(adapterDir, 'adapter-0', 'adapter_model.safetensors')).size / 1e6;
console.log(`${TASKS} adapters of ${LLAMA_2_7B.name} shape, rank 16, fp16: ${adapterMb.toFixed(1)} MB each (${generated} generated now) in ${adapterDir}`);

// Never-seen prompts: the 48 tasks' held-out examples and every prompt of the other FLAN tasks, in a fixed shuffled order.
const flan = loadRegistry(FLAN);
const prompts = flan.tasks.flatMap((task, i) => (i < TASKS ? task.examples.slice(FIT_EXAMPLES) : task.examples));
let seed = 7;
const random = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
for (let i = prompts.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [prompts[i], prompts[j]] = [prompts[j], prompts[i]];
}

interface ModeResult {
  label: string;
  fidelity: number;
  addedP50: number;
  addedP99: number;
  totalP99: number;
  builds: number;
  peakRssMb: number;
  peakMergeGb: number;
  answered: number;
  errors: number;
  warmUpS: number;
  /** The gateway's event-loop delay p99 over the run (prom-client's monitor), to tell its own stalls from CPU contention. */
  loopP99Ms: number;
}

function folderBytes(dir: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = statSync(path, { throwIfNoEntry: false });
    if (!info) continue;
    total += info.isDirectory() ? folderBytes(path) : info.size;
  }
  return total;
}

const metric = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);

async function runMode(label: string, mode: string, buildsPerMinute?: number): Promise<ModeResult> {
  const mergeDir = join(mergeRoot, label.replace(/\W+/g, '-'));
  const upstream = await startResidencyVllm({ baseModel: 'llama-2-7b', staticAdapters: new Map(flan.tasks.slice(0, TASKS).map((task, i) => [task.id, join(adapterDir, `adapter-${i}`)])), ...residency });
  const child = await startChild(new URL('./composition-gateway.ts', import.meta.url).pathname, {
    BENCH_MODE: mode,
    BENCH_UPSTREAM_URL: upstream.url,
    BENCH_ADAPTER_DIR: adapterDir,
    BENCH_MERGE_DIR: mergeDir,
    ...(buildsPerMinute ? { BENCH_BUILDS_PER_MINUTE: String(buildsPerMinute) } : {}),
  });
  const base = `http://127.0.0.1:${child.info.port}`;
  let peakMerge = 0;
  const sampler = setInterval(() => (peakMerge = Math.max(peakMerge, folderBytes(mergeDir))), 1000);
  // The warm start runs at start-up: traffic arrives once the gateway has built what it planned to (bounded).
  const warmStarted = performance.now();
  if (mode !== 'top1') {
    const deadline = Date.now() + 240_000;
    let last = '';
    for (let quiet = 0; Date.now() < deadline && quiet < 3; ) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const text = await (await fetch(`${base}/metrics`)).text();
      const now = `${metric(text, /lorauter_merge_builds_total\{outcome="queued"\} (\d+)/)}/${metric(text, /lorauter_merge_builds_total\{outcome="done"\} (\d+)/)}`;
      quiet = now === last && metric(text, /lorauter_merge_builds_total\{outcome="queued"\} (\d+)/) === metric(text, /lorauter_merge_builds_total\{outcome="done"\} (\d+)/) + metric(text, /lorauter_merge_builds_total\{outcome="failed"\} (\d+)/) ? quiet + 1 : 0;
      last = now;
    }
  }
  const warmUpS = (performance.now() - warmStarted) / 1000;
  const fidelities: number[] = [];
  const added: number[] = [];
  const totals: number[] = [];
  let errors = 0;
  const total = Math.round(rate * seconds);
  const started = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const sent = performance.now();
    inflight.push(
      fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'lorauter', messages: [{ role: 'user', content: prompts[i % prompts.length] }], max_tokens: 16 }) })
        .then(async (response) => {
          await response.arrayBuffer();
          const elapsed = performance.now() - sent;
          if (response.status !== 200) return void errors++;
          totals.push(elapsed);
          added.push(elapsed - Number(response.headers.get('x-bench-upstream-ms') ?? 0));
          if (!response.headers.get('x-lorauter-composition')?.startsWith('base')) fidelities.push(Number(response.headers.get('x-lorauter-fidelity')));
        })
        .catch(() => void errors++),
    );
  }
  await Promise.all(inflight);
  clearInterval(sampler);
  peakMerge = Math.max(peakMerge, folderBytes(mergeDir));
  const text = await (await fetch(`${base}/metrics`)).text();
  const status = readFileSync(`/proc/${child.child.pid}/status`, 'utf8');
  const peakRssMb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
  await stopChild(child);
  await upstream.close();
  rmSync(mergeDir, { recursive: true, force: true });
  return {
    label,
    fidelity: fidelities.reduce((a, b) => a + b, 0) / fidelities.length,
    addedP50: quantile(added, 0.5),
    addedP99: quantile(added, 0.99),
    totalP99: quantile(totals, 0.99),
    builds: metric(text, /lorauter_merge_builds_total\{outcome="done"\} (\d+)/),
    peakRssMb,
    peakMergeGb: peakMerge / 1e9,
    answered: totals.length,
    errors,
    warmUpS,
    loopP99Ms: metric(text, /^nodejs_eventloop_lag_p99_seconds ([\d.e+-]+)/m) * 1000,
  };
}

const labels: Record<string, string> = { wait: "today's: build while the request waits", planner: 'planner (defaults)', top1: 'top1' };
const results: ModeResult[] = [];
for (const mode of modes) {
  const result = await runMode(labels[mode] ?? mode, mode);
  results.push(result);
  console.log(JSON.stringify(result));
}
const fmt = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
console.log(`\n${rate} requests/s for ${seconds} s of never-seen FLAN prompts; stand-in: max_loras ${residency.maxLoras}, ${residency.msPerMb} ms/MB to load, ${residency.serviceMs} ms a request`);
console.table(
  results.map((r) => ({
    mode: r.label,
    'mean fidelity': fmt(r.fidelity, 3),
    'added p50 ms': fmt(r.addedP50, 1),
    'added p99 ms': fmt(r.addedP99, 1),
    'total p99 ms': fmt(r.totalP99, 0),
    builds: r.builds,
    'peak RSS MB': fmt(r.peakRssMb, 0),
    'merge dir peak GB': fmt(r.peakMergeGb, 2),
    answered: r.answered,
    errors: r.errors,
    'warm-up s': fmt(r.warmUpS, 0),
    'loop p99 ms': fmt(r.loopP99Ms, 1),
  })),
);

if (curve.length > 0) {
  // The planner's own run is the point at the default budget.
  const planner = results.find((r) => r.label === labels.planner);
  const points: { budget: number; fidelity: number }[] = planner ? [{ budget: DEFAULT_BUILDS_PER_MINUTE, fidelity: planner.fidelity }] : [];
  for (const budget of curve.filter((b) => !(planner && b === DEFAULT_BUILDS_PER_MINUTE))) {
    const result = await runMode(`planner, ${budget} builds a minute`, 'planner', budget);
    points.push({ budget, fidelity: result.fidelity });
    console.log(JSON.stringify(result));
  }
  points.sort((a, b) => a.budget - b.budget);
  const top1 = results.find((r) => r.label === 'top1')?.fidelity;
  console.table(points.map((p) => ({ 'builds a minute': p.budget, 'mean fidelity': fmt(p.fidelity, 3) })));
  const svg = plot(points, top1);
  const out = new URL('../docs/composition-fidelity.svg', import.meta.url).pathname;
  mkdirSync(new URL('../docs/', import.meta.url).pathname, { recursive: true });
  writeFileSync(out, svg);
  console.log(`plot: ${out}`);
}
rmSync(mergeRoot, { recursive: true, force: true });

function plot(points: { budget: number; fidelity: number }[], top1?: number): string {
  const width = 520;
  const height = 300;
  const x = (budget: number) => 60 + (Math.log(budget) / Math.log(Math.max(...points.map((p) => p.budget)) * 1.5)) * (width - 90);
  const y = (fidelity: number) => height - 40 - fidelity * (height - 70);
  const line = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.budget).toFixed(1)},${y(p.fidelity).toFixed(1)}`).join(' ');
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1].map((f) => `<line x1="60" x2="${width - 20}" y1="${y(f)}" y2="${y(f)}" stroke="#ddd"/><text x="52" y="${y(f) + 4}" text-anchor="end" font-size="11">${f.toFixed(1)}</text>`).join('');
  const labelsX = points.map((p) => `<text x="${x(p.budget)}" y="${height - 22}" text-anchor="middle" font-size="11">${p.budget}</text>`).join('');
  const dots = points.map((p) => `<circle cx="${x(p.budget)}" cy="${y(p.fidelity)}" r="3.5" fill="#1f77b4"/><text x="${x(p.budget) + 6}" y="${y(p.fidelity) - 6}" font-size="11">${p.fidelity.toFixed(3)}</text>`).join('');
  const top1Line = top1 === undefined ? '' : `<line x1="60" x2="${width - 20}" y1="${y(top1)}" y2="${y(top1)}" stroke="#d62728" stroke-dasharray="4 3"/><text x="${width - 22}" y="${y(top1) - 5}" text-anchor="end" font-size="11" fill="#d62728">top1 ${top1.toFixed(3)}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>${ticks}${top1Line}
<path d="${line}" fill="none" stroke="#1f77b4" stroke-width="2"/>${dots}${labelsX}
<text x="${(width + 40) / 2}" y="${height - 5}" text-anchor="middle" font-size="12">merges built a minute (LORAUTER_MAX_NEW_MERGES_PER_MINUTE, log scale)</text>
<text x="14" y="${height / 2}" transform="rotate(-90 14 ${height / 2})" text-anchor="middle" font-size="12">mean fidelity</text>
<text x="${width / 2}" y="16" text-anchor="middle" font-size="13">Fidelity against the build budget (${rate} req/s, ${TASKS} adapters of 80 MB)</text>
</svg>
`;
}
