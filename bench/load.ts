import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Started {
  child: ChildProcess;
  info: { port: number; buildMs: number; rssMb: number; tasks?: number; dimensions?: number };
}

export async function startChild(script: string, env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=8192', ...(env.BENCH_NODE_FLAGS ?? process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean), '--import', 'tsx', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { child, info: JSON.parse(line) };
}

export async function stopChild(started: Started): Promise<void> {
  await new Promise<void>((resolve) => {
    started.child.once('exit', () => resolve());
    started.child.kill('SIGKILL');
  });
}

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  errors: number;
  non2xx: number;
}

export async function load(options: {
  url: string;
  body: (i: number) => unknown;
  seconds: number;
  connections: number;
  headers?: Record<string, string>;
  method?: 'POST' | 'GET';
}): Promise<LoadResult> {
  let counter = 0;
  const result = await autocannon({
    url: options.url,
    method: options.method ?? 'POST',
    duration: options.seconds,
    connections: options.connections,
    headers: { 'content-type': 'application/json', ...options.headers },
    requests: [{ setupRequest: (request) => ({ ...request, body: JSON.stringify(options.body(counter++)) }) }],
  });
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    meanMs: result.latency.average,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}
