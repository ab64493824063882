import { rm } from 'node:fs/promises';
import { startWorker, threadScript } from '../threads/start-worker.js';
import { MergeRefusedError } from './merge.js';
import type { MergeThreadData } from './merge-thread.js';
import { temporaryFolderFor, type MergeOutcome, type MergeSource } from './streaming-merge.js';

const SCRIPT = threadScript('merge-thread', import.meta.url);

/**
 * mergePeftAdaptersStreaming on a thread of its own. Aborting stops the thread and removes what it
 * had written; a thread that dies says so as an error.
 */
export function mergeOnThread(sources: readonly MergeSource[], outDirectory: string, options: { maxRank?: number; signal?: AbortSignal; config?: Record<string, unknown> } = {}): Promise<MergeOutcome> {
  const temporary = temporaryFolderFor(outDirectory);
  const data: MergeThreadData = { sources: [...sources], outDirectory, maxRank: options.maxRank, temporary, config: options.config };
  return new Promise((resolve, reject) => {
    const worker = startWorker(SCRIPT, data);
    let settled = false;
    const settle = (action: () => void) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', abort);
      action();
    };
    const abort = () => {
      settle(() => reject(options.signal!.reason ?? new Error('merge aborted')));
      void worker.terminate().then(() => rm(temporary, { recursive: true, force: true }));
    };
    if (options.signal?.aborted) return abort();
    options.signal?.addEventListener('abort', abort, { once: true });
    worker.once('message', (message: { outcome?: MergeOutcome; error?: { message: string; reason?: MergeRefusedError['reason'] } }) => {
      settle(() => {
        if (message.outcome) resolve(message.outcome);
        else if (message.error?.reason) reject(new MergeRefusedError(message.error.reason, message.error.message));
        else reject(new Error(message.error?.message ?? 'merge thread failed'));
      });
    });
    worker.once('error', (error) => settle(() => reject(error)));
    worker.once('exit', (code) => settle(() => reject(new Error(`merge thread exited with code ${code}`))));
  });
}
