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
  const latencies = new Latencies();
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
      if (statusCode >= 200 && statusCode < 300) latencies.add(responseTime);
    });
  });
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: latencies.percentile(50),
    p99Ms: latencies.percentile(99),
    meanMs: latencies.mean(),
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** Response times as measured, for percentiles at the precision they were measured with. */
class Latencies {
  private values = new Float64Array(1 << 16);
  private count = 0;

  add(ms: number): void {
    if (this.count === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.count++] = ms;
  }

  /** Nearest rank; 0 when there were none. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const sorted = this.sorted ??= this.values.slice(0, this.count).sort();
    return round(sorted[Math.min(this.count - 1, Math.ceil((p / 100) * this.count) - 1)]);
  }

  mean(): number {
    let sum = 0;
    for (let i = 0; i < this.count; i++) sum += this.values[i];
    return this.count === 0 ? 0 : round(sum / this.count);
  }

  private sorted: Float64Array | undefined;
}

const round = (ms: number) => Math.round(ms * 100) / 100;
