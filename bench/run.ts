// npm run bench: routing throughput and latency at several registry sizes, against a Fastify
// hello-world measured in the same run (ratios, since machines are shared and noisy).
import { loadRegistry } from '../src/registry/load.js';
import { builtinEncoderLatency, onnxBatching } from './encoders.js';
import { load, startChild, stopChild, type LoadResult } from './load.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`npm run bench: routing and proxy throughput against baselines measured in the same run.

Needs nothing outside the repository: the FLAN tasks in test/fixtures, the ONNX fixture in test/fixtures/onnx,
synthetic registries it generates; each server runs in a process of its own, autocannon drives it from this one.
About 14 minutes with the defaults on a 2-core machine. Latencies are each response's own, to 0.01 ms.

Settings (environment):
  BENCH_SECONDS=8              seconds a measured run
  BENCH_CONNECTIONS=16         concurrent connections
  BENCH_SCALES=flan48,1500,100000  registry sizes for /v1/route (flan48: 48 FLAN tasks; numbers: synthetic tasks)
  BENCH_ROUTE_ROUNDS=3         rounds of the gateway and a hello-world taking turns, for each registry size
  BENCH_PROXY=0                skip the proxied chat rows
  BENCH_PROXY_ROUNDS=5         rounds of the gateway and the minimal proxy taking turns (a run's p99 varies by ±5 ms);
                               up to 3 of them again for a gateway at the default log level (info)
  BENCH_WARMUP_SECONDS=10      load on each proxy before its rounds (the gateway's first seconds are reported apart)
  BENCH_UPSTREAM_JITTER_MS=5   the fake upstream answers in 25 ms ± this (uniform); the lockstep rows use 0
  BENCH_NODE_FLAGS=...         flags for the servers' node (e.g. --cpu-prof)

Also: npm run bench:composition (-- --help), npm run bench:llamacpp (a real llama-server).`);
  process.exit(0);
}

const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 16);
const scales = (process.env.BENCH_SCALES ?? 'flan48,1500,100000').split(',').filter(Boolean);
const proxy = process.env.BENCH_PROXY !== '0';
const upstreamJitterMs = process.env.BENCH_UPSTREAM_JITTER_MS ?? '5';
const server = new URL('./server.ts', import.meta.url).pathname;
const upstreamServer = new URL('./upstream.ts', import.meta.url).pathname;
const minimalProxyServer = new URL('./minimal-proxy.ts', import.meta.url).pathname;
const prompt = 'Is the sentiment of the following sentence positive or negative? a gorgeous, witty, seductive movie. OPTIONS: - negative - positive';

const rows: Record<string, unknown>[] = [];
const fmt = (x: number, digits = 2) => x.toFixed(digits);

// Real prompts the routing index has not seen: the last 4 of each FLAN task (the 48-task index is fitted on all 20
// of its own tasks' prompts, so new-prompt requests also get a unique suffix to miss every cache).
const flan = loadRegistry(new URL('../test/fixtures/flan-tasks.jsonl', import.meta.url).pathname);
const heldOut = flan.tasks.flatMap((task) => task.examples.slice(16));
const newPrompt = (i: number) => `${heldOut[i % heldOut.length]} (${i})`;

const encoderRows: Record<string, unknown>[] = [];
const latency = builtinEncoderLatency(flan);
encoderRows.push(
  { encoder: `built-in n-gram v1 (before), ${latency.prompts} held-out FLAN prompts`, 'mean µs': fmt(latency.before.meanUs, 1), 'p99 µs': fmt(latency.before.p99Us, 1), 'vs before': '1.00×' },
  { encoder: 'built-in n-gram (after)', 'mean µs': fmt(latency.after.meanUs, 1), 'p99 µs': fmt(latency.after.p99Us, 1), 'vs before': `${fmt(latency.before.meanUs / latency.after.meanUs)}× faster` },
);
const onnx = await onnxBatching(new URL('../test/fixtures/onnx/model', import.meta.url).pathname, heldOut, Math.min(seconds, 5));
encoderRows.push(
  { encoder: `ONNX fixture, one text a run, ${onnx.concurrency} concurrent callers`, 'embeddings/s': fmt(onnx.singleRate, 0), 'vs before': '1.00×' },
  { encoder: `ONNX fixture, micro-batched (≤ 32), ${onnx.concurrency} concurrent callers`, 'embeddings/s': fmt(onnx.batchedRate, 0), 'vs before': `${fmt(onnx.batchedRate / onnx.singleRate)}×` },
);

// The gateway and a hello-world take turns (BENCH_ROUTE_ROUNDS each), and each gateway run is compared with the
// hello-world run right before it: on a shared machine the capacity drifts within minutes. The ratios are the
// medians of those pairs.
const routeRounds = Number(process.env.BENCH_ROUTE_ROUNDS ?? 3);
const middle = (values: number[]) => [...values].sort((a, b) => a - b)[(values.length - 1) >> 1];
/** The run of median throughput, with the median p99 of all. */
const median = (results: LoadResult[]): LoadResult => {
  const sorted = [...results].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
  return { ...sorted[(sorted.length - 1) >> 1], p99Ms: middle(results.map((result) => result.p99Ms)) };
};
type Pair = { hello: LoadResult; gateway: LoadResult };
const vsHello = (pair: Pair) => pair.gateway.requestsPerSecond / pair.hello.requestsPerSecond;

const cachedLatency: Record<string, number> = {};
for (const scale of scales) {
  const hello = await startChild(server, { BENCH_SCENARIO: 'hello' });
  const helloUrl = `http://127.0.0.1:${hello.info.port}/hello`;
  const helloRun = () => load({ url: helloUrl, body: () => ({}), seconds, connections });
  // Past 1,024 tasks the encoder hashes; 256 dimensions keep the 100k index in memory and time.
  const dimensions = scale === 'flan48' ? '1024' : '256';
  const started = await startChild(server, { BENCH_SCENARIO: scale, BENCH_DIMENSIONS: dimensions });
  const url = `http://127.0.0.1:${started.info.port}/v1/route`;
  await load({ url, body: () => ({ input: prompt }), seconds: 1, connections });
  await load({ url: helloUrl, body: () => ({}), seconds: 1, connections });
  const cachedPairs: Pair[] = [];
  for (let round = 0; round < routeRounds; round++) cachedPairs.push({ hello: await helloRun(), gateway: await load({ url, body: () => ({ input: prompt }), seconds, connections }) });
  const newPromptPair: Pair = { hello: await helloRun(), gateway: await load({ url, body: (i) => ({ input: newPrompt(i) }), seconds, connections }) };
  const rss = (await fetch(`http://127.0.0.1:${started.info.port}/metrics`).then((r) => r.text())).match(/process_resident_memory_bytes (\d+)/);
  await stopChild(started);
  // The same with every prompt encoded on the event loop: what the encoder threads add.
  let sameThread: Pair | undefined;
  if (scale === 'flan48') {
    const single = await startChild(server, { BENCH_SCENARIO: scale, BENCH_DIMENSIONS: dimensions, BENCH_WORKERS: '0' });
    sameThread = { hello: await helloRun(), gateway: await load({ url: `http://127.0.0.1:${single.info.port}/v1/route`, body: (i) => ({ input: newPrompt(i) }), seconds, connections }) };
    await stopChild(single);
  }
  await stopChild(hello);
  const helloRuns = [...cachedPairs, newPromptPair, ...(sameThread ? [sameThread] : [])].map((pair) => pair.hello);
  const helloMedian = middle(helloRuns.map((run) => run.requestsPerSecond));
  rows.push({ scenario: `fastify hello-world, median of ${helloRuns.length}`, 'req/s': fmt(helloMedian, 0), 'p50 ms': middle(helloRuns.map((run) => run.p50Ms)), 'p99 ms': middle(helloRuns.map((run) => run.p99Ms)), 'vs hello': '1.00' });
  const cached = cachedPairs.map((pair) => pair.gateway);
  cachedLatency[scale] = middle(cached.map((run) => run.meanMs));
  const measured: [string, LoadResult, number][] = [
    [`repeated prompt (decision cached), median of ${routeRounds}`, median(cached), middle(cachedPairs.map(vsHello))],
    ['new FLAN prompt each time', newPromptPair.gateway, vsHello(newPromptPair)],
  ];
  if (sameThread) measured.push(['new FLAN prompt each time, no encoder threads (LORAUTER_ENCODER_WORKERS=0)', sameThread.gateway, vsHello(sameThread)]);
  for (const [kind, result, ratio] of measured) {
    rows.push({
      scenario: `/v1/route ${scale} tasks (${started.info.dimensions}-d), ${kind}`,
      'req/s': fmt(result.requestsPerSecond, 0),
      'p50 ms': result.p50Ms,
      'p99 ms': result.p99Ms,
      'vs hello': fmt(ratio),
      'build s': fmt(started.info.buildMs / 1000, 1),
      'RSS MB': rss ? fmt(Number(rss[1]) / 2 ** 20, 0) : fmt(started.info.rssMb, 0),
      errors: result.errors + result.non2xx,
    });
  }
}
const proxyRows: Record<string, unknown>[] = [];
/** A row of medians; beside the minimal proxy, each run against the minimal proxy's run of the same round. */
function proxyRow(scenario: string, runs: LoadResult[], direct?: LoadResult, bareRuns?: LoadResult[]) {
  const result = median(runs);
  return {
    scenario,
    'req/s': fmt(result.requestsPerSecond, 0),
    'p50 ms': result.p50Ms,
    'p99 ms': result.p99Ms,
    'vs direct': direct ? fmt(result.requestsPerSecond / direct.requestsPerSecond) : '',
    'vs minimal proxy': bareRuns ? fmt(middle(runs.map((run, i) => run.requestsPerSecond / bareRuns[i].requestsPerSecond))) : '',
    'p99 vs minimal ms': bareRuns ? fmt(middle(runs.map((run, i) => run.p99Ms - bareRuns[i].p99Ms)), 1) : '',
    errors: runs.reduce((sum, run) => sum + run.errors + run.non2xx, 0),
  };
}
/** A fake upstream whose answers take 25 ms ± `jitterMs`, with a gateway and the minimal proxy in front of it, each in a process of its own. */
async function startProxies(jitterMs: string) {
  const upstream = await startChild(upstreamServer, { BENCH_UPSTREAM_JITTER_MS: jitterMs });
  const upstreamUrl = `http://127.0.0.1:${upstream.info.port}`;
  const gateway = await startChild(server, { BENCH_SCENARIO: 'tiny', BENCH_UPSTREAM_URL: upstreamUrl });
  const minimal = await startChild(minimalProxyServer, { BENCH_UPSTREAM_URL: upstreamUrl });
  const [gatewayUrl, minimalUrl] = [gateway, minimal].map((started) => `http://127.0.0.1:${started.info.port}`);
  return { upstream, upstreamUrl, gateway, gatewayUrl, minimal, minimalUrl };
}
if (proxy) {
  // autocannon runs in this process. The upstream's answers take 25 ± 5 ms (BENCH_UPSTREAM_JITTER_MS), as an LLM
  // server's vary; the lockstep rows below keep every answer at 25 ms.
  const { upstream, upstreamUrl, gateway, gatewayUrl, minimal, minimalUrl } = await startProxies(upstreamJitterMs);
  const messages = [{ role: 'user', content: prompt }];
  const cases = [
    ['non-stream', false],
    ['stream', true],
  ] as const;
  // The gateway and the minimal proxy take turns (ROUNDS each): one run after the other would put the machine's
  // drift between them. The comparisons are the medians of each round's own (a gateway run against the minimal
  // proxy's run just before it), the other columns medians of the runs.
  const rounds = Number(process.env.BENCH_PROXY_ROUNDS ?? 5);
  // JIT warm-up: the gateway is many functions for V8 to optimise, and runs slower for its first 10 to 20 s of load
  // (measured: 366 µs of CPU a request in a 6-s run after 6 s of load, 211 to 226 µs in the runs after it); the
  // minimal proxy is a few, warm within a second. Each gets BENCH_WARMUP_SECONDS of load before the rounds compare
  // them as they run for most of their lives; the first run of each after its start is a row of its own.
  const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 10);
  const chat = (url: string, model: string, stream: boolean, runSeconds = seconds) => load({ url: `${url}/v1/chat/completions`, body: () => ({ model, messages, stream }), seconds: runSeconds, connections });
  /** Routed chats on prompts no run has sent before (`offset` keeps each run's apart). */
  const newPromptChats = (stream: boolean, offset: number, runSeconds = seconds) =>
    load({ url: `${gatewayUrl}/v1/chat/completions`, body: (i) => ({ model: 'lorauter', messages: [{ role: 'user', content: newPrompt(i + offset) }], stream }), seconds: runSeconds, connections });
  /** The minimal proxy and a gateway taking turns on non-stream chats, the gateway's prompt routed from its decision cache. */
  async function cachedChatRounds(minimalProxyUrl: string, gatewayProxyUrl: string, count: number): Promise<[LoadResult[], LoadResult[]]> {
    const [bare, routed]: LoadResult[][] = [[], []];
    for (let round = 0; round < count; round++) {
      bare.push(await chat(minimalProxyUrl, 'sst2', false));
      routed.push(await chat(gatewayProxyUrl, 'lorauter', false));
    }
    return [bare, routed];
  }
  const coldGateway = await chat(gatewayUrl, 'lorauter', false);
  const coldMinimal = await chat(minimalUrl, 'sst2', false);
  for (const [mode, stream] of cases) {
    const direct = await load({ url: `${upstreamUrl}/v1/chat/completions`, body: () => ({ model: 'sst2', messages, stream }), seconds, connections });
    await chat(gatewayUrl, 'lorauter', stream, warmupSeconds);
    await newPromptChats(stream, 900_000, warmupSeconds / 2);
    await chat(minimalUrl, 'sst2', stream, warmupSeconds);
    const bareRuns: LoadResult[] = [];
    const routedRuns: LoadResult[] = [];
    const missRuns: LoadResult[] = [];
    for (let round = 0; round < rounds; round++) {
      bareRuns.push(await chat(minimalUrl, 'sst2', stream));
      routedRuns.push(await chat(gatewayUrl, 'lorauter', stream));
      missRuns.push(await newPromptChats(stream, round * 100_000));
    }
    const row = (name: string, runs: LoadResult[], paired = true) => proxyRow(`${name} (${mode})`, runs, direct, paired ? bareRuns : undefined);
    if (!stream) proxyRows.push(proxyRow(`gateway, routed, decision cached, its first ${seconds} s after start, against the minimal proxy's (${mode})`, [coldGateway], direct, [coldMinimal]));
    proxyRows.push(
      row('direct to upstream', [direct], false),
      row(`minimal Node proxy (baseline hop), median of ${rounds}`, bareRuns),
      row(`gateway, routed, decision cached, median of ${rounds}`, routedRuns),
      row(`gateway, routed, new prompt each time, median of ${rounds}`, missRuns),
    );
  }
  await stopChild(gateway);
  // The default log level: Fastify's two lines a request and the decision line, serialised and written.
  const logging = await startChild(server, { BENCH_SCENARIO: 'tiny', BENCH_UPSTREAM_URL: upstreamUrl, BENCH_LOG_LEVEL: 'info' });
  const loggingUrl = `http://127.0.0.1:${logging.info.port}`;
  await chat(loggingUrl, 'lorauter', false, warmupSeconds);
  const loggingRounds = Math.min(rounds, 3);
  const [bareRuns, loggingRuns] = await cachedChatRounds(minimalUrl, loggingUrl, loggingRounds);
  proxyRows.push(proxyRow(`gateway at the default log level (info; lines to /dev/null), routed, decision cached, median of ${loggingRounds} (non-stream)`, loggingRuns, undefined, bareRuns));
  await stopChild(logging);
  await stopChild(minimal);
  await stopChild(upstream);

  // Lockstep: every answer after exactly 25 ms. The 16 clients are answered together and send together, so each proxy
  // takes its requests in bursts of 16; undici writes a request to an idle keep-alive connection only in the event
  // loop's check phase, after every other request of the burst has been handled (GHSA-35p6-xmwp-9g52), so what a
  // request costs before its upstream write is paid by the whole burst. Reported apart: no server's answers keep time so.
  const lockstep = await startProxies('0');
  await chat(lockstep.gatewayUrl, 'lorauter', false, warmupSeconds);
  await chat(lockstep.minimalUrl, 'sst2', false, warmupSeconds);
  const lockstepRounds = Math.min(rounds, 3);
  const [lockstepBare, lockstepRuns] = await cachedChatRounds(lockstep.minimalUrl, lockstep.gatewayUrl, lockstepRounds);
  const lockstepRow = (name: string) => `lockstep (every answer after exactly 25 ms): ${name}, median of ${lockstepRounds} (non-stream)`;
  proxyRows.push(
    proxyRow(lockstepRow('minimal Node proxy'), lockstepBare),
    proxyRow(lockstepRow('gateway, routed, decision cached'), lockstepRuns, undefined, lockstepBare),
  );
  for (const started of [lockstep.gateway, lockstep.minimal, lockstep.upstream]) await stopChild(started);
}

console.table(encoderRows);
if (rows.length) console.table(rows);
if (proxyRows.length) {
  console.log(`Proxied chats: the upstream answers in 25 ± ${upstreamJitterMs} ms (uniform), except in the lockstep rows (exactly 25 ms).`);
  console.table(proxyRows);
}
if (cachedLatency['1500'] && cachedLatency['100000']) {
  console.log(`mean cached latency at 100,000 tasks / at 1,500 tasks: ${fmt(cachedLatency['100000'] / cachedLatency['1500'])}×`);
}
