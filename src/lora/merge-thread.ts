// A thread that runs streaming merges one after another (threaded-merge.ts starts it and sends it
// jobs), so that their reads, writes and arithmetic never hold up the event loop.
import { parentPort } from 'node:worker_threads';
import { MergeRefusedError } from './merge.js';
import { mergePeftAdaptersStreaming, type MergeSource } from './streaming-merge.js';

export interface MergeJob {
  id: number;
  sources: MergeSource[];
  outDirectory: string;
  maxRank?: number;
  temporary: string;
  /** adapter_config.json fields set in the merge (vLLM's resolver checks base_model_name_or_path). */
  config?: Record<string, unknown>;
}

parentPort!.on('message', async ({ id, sources, outDirectory, maxRank, temporary, config }: MergeJob) => {
  try {
    const outcome = await mergePeftAdaptersStreaming(sources, outDirectory, { maxRank, temporary, config });
    parentPort!.postMessage({ id, outcome });
  } catch (error) {
    const reason = error instanceof MergeRefusedError ? error.reason : undefined;
    parentPort!.postMessage({ id, error: { message: (error as Error).message, reason } });
  }
});
