import { rm } from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';
import { startWorker, threadScript } from '../threads/start-worker.js';
import { MergeRefusedError } from './merge.js';
import type { MergeJob } from './merge-thread.js';
import { temporaryFolderFor, type MergeOutcome, type MergeSource } from './streaming-merge.js';

const SCRIPT = threadScript('merge-thread', import.meta.url);

type Reply = { id: number; outcome?: MergeOutcome; error?: { message: string; reason?: MergeRefusedError['reason'] } };

// Threads that finished their merge wait here for the next one: starting a thread costs more than a
// small merge (and, from TypeScript sources, loading them through tsx more than a large one). Unref'd:
// an idle thread never keeps the process alive.
const idle: Worker[] = [];
let nextJob = 0;

/** Threads waiting for a merge (for tests and metrics). */
export function idleMergeThreads(): number {
  return idle.length;
}

function parkIdle(worker: Worker): void {
  worker.unref();
  idle.push(worker);
  // One that dies while waiting (killed, out of memory) is never handed a job.
  worker.once('exit', () => {
    const at = idle.indexOf(worker);
    if (at >= 0) idle.splice(at, 1);
  });
}

function takeIdle(): Worker | undefined {
  const worker = idle.pop();
  worker?.removeAllListeners('exit');
  return worker;
}

/**
 * mergePeftAdaptersStreaming on a thread of its own. Aborting stops the thread and removes what it
 * had written; a thread that dies says so as an error.
 */
export function mergeOnThread(sources: readonly MergeSource[], outDirectory: string, options: { maxRank?: number; signal?: AbortSignal; config?: Record<string, unknown> } = {}): Promise<MergeOutcome> {
  const temporary = temporaryFolderFor(outDirectory);
  const job: MergeJob = { id: ++nextJob, sources: [...sources], outDirectory, maxRank: options.maxRank, temporary, config: options.config };
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(options.signal.reason ?? new Error('merge aborted'));
    const worker = takeIdle() ?? startWorker(SCRIPT, undefined);
    worker.ref();
    let settled = false;
    const settle = (action: () => void, reusable: boolean) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', abort);
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      if (reusable) parkIdle(worker);
      action();
    };
    const abort = () => {
      settle(() => reject(options.signal!.reason ?? new Error('merge aborted')), false);
      void worker.terminate().then(() => rm(temporary, { recursive: true, force: true }));
    };
    const onMessage = (reply: Reply) => {
      if (reply.id !== job.id) return;
      settle(() => {
        if (reply.outcome) resolve(reply.outcome);
        else if (reply.error?.reason) reject(new MergeRefusedError(reply.error.reason, reply.error.message));
        else reject(new Error(reply.error?.message ?? 'merge thread failed'));
      }, true);
    };
    const onError = (error: Error) => settle(() => reject(error), false);
    const onExit = (code: number) => settle(() => reject(new Error(`merge thread exited with code ${code}`)), false);
    options.signal?.addEventListener('abort', abort, { once: true });
    worker.on('message', onMessage).once('error', onError).once('exit', onExit);
    worker.postMessage(job);
  });
}
