import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { quantile } from './quantile.js';

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
  /** Latencies of the 2xx answers, to 0.01 ms (autocannon's own figures are whole milliseconds). */
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
  // autocannon keeps latencies in a histogram of whole milliseconds: a p99 of 29.9 ms reads 29, and gaps of a
  // millisecond or two between two servers (what the proxy rows compare) are lost in the rounding.
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const run = autocannon(
      {
        url: options.url,
        method: options.method ?? 'POST',
        duration: options.seconds,
        connections: options.connections,
        headers: { 'content-type': 'application/json', ...options.headers },
        requests: [{ setupRequest: (request) => ({ ...request, body: JSON.stringify(options.body(counter++)) }) }],
      },
      (error, finished) => (error ? reject(error) : resolve(finished)),
    );
    run.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: hundredths(quantile(latencies, 0.5)),
    p99Ms: hundredths(quantile(latencies, 0.99)),
    meanMs: hundredths(latencies.reduce((sum, ms) => sum + ms, 0) / latencies.length),
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** To 0.01 ms; 0 when there was no 2xx answer to measure (as autocannon reports it). */
const hundredths = (ms: number) => (Number.isNaN(ms) ? 0 : Math.round(ms * 100) / 100);
