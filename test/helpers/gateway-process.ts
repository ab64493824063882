import { spawn, type ChildProcess } from 'node:child_process';
import { demoRegistry } from '../../src/registry/demo.js';
import { startFakeVllm } from '../fakes/vllm.js';
import { freePort, RedisServer } from './redis.js';

const entry = new URL('../../src/cli/entry.ts', import.meta.url).pathname;

export interface GatewayProcess {
  url: string;
  port: number;
  /** What the process wrote so far (stdout and stderr). */
  output(): string;
  /** Its exit code once it exited, else undefined. */
  exitCode(): number | null | undefined;
  /** RSS, heap in use and the event loop's p99 delay since the last read, from its own /metrics. */
  memory(): Promise<{ rss: number; heap: number; loopP99Ms: number }>;
  stop(): void;
}

/** `lorauter serve` as a real process on a spare port, with `env` added to this one's; resolves once /readyz answers 200. */
export async function startGatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  let exitCode: number | null | undefined;
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', entry, 'serve', '--port', String(port), '--host', '127.0.0.1'], { env: { ...process.env, ...env } });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  child.on('exit', (code) => (exitCode = code));
  const gateway: GatewayProcess = {
    url,
    port,
    output: () => output,
    exitCode: () => exitCode,
    async memory() {
      const text = await (await fetch(`${url}/metrics`)).text();
      const read = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1]);
      return { rss: read('process_resident_memory_bytes'), heap: read('nodejs_heap_size_used_bytes'), loopP99Ms: read('nodejs_eventloop_lag_p99_seconds') * 1000 };
    },
    stop: () => void child.kill('SIGTERM'),
  };
  for (let i = 0; i < 600 && exitCode === undefined; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return gateway;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`the gateway did not become ready:\n${output}`);
}

/** The demo registry's gateway as a process in front of a fake vLLM serving its adapters, with a real Redis: what the fault suite and the soak run. */
export async function startDemoStack(adminKey: string, env: Record<string, string> = {}) {
  const adapters = demoRegistry().tasks.map((task) => task.id);
  const vllm = await startFakeVllm({ baseModel: 'base', staticAdapters: adapters });
  const redis = await RedisServer.start();
  const gateway = await startGatewayProcess({
    LOG_LEVEL: 'warn',
    LORAUTER_UPSTREAM: 'vllm',
    LORAUTER_UPSTREAM_URL: vllm.url,
    LORAUTER_ADMIN_API_KEY: adminKey,
    LORAUTER_SHUTDOWN_DRAIN_SECONDS: '0',
    REDIS_URL: redis.url,
    ...env,
  });
  return {
    adapters,
    vllm,
    redis,
    gateway,
    async stop() {
      gateway.stop();
      await vllm.stop();
      await redis.stop();
    },
  };
}
