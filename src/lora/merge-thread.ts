// A thread that runs one streaming merge (threaded-merge.ts starts it), so that its reads, writes
// and arithmetic never hold up the event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { MergeRefusedError } from './merge.js';
import { mergePeftAdaptersStreaming, type MergeSource } from './streaming-merge.js';

export interface MergeThreadData {
  sources: MergeSource[];
  outDirectory: string;
  maxRank?: number;
  temporary: string;
  /** adapter_config.json fields set in the merge (vLLM's resolver checks base_model_name_or_path). */
  config?: Record<string, unknown>;
}

const { sources, outDirectory, maxRank, temporary, config } = workerData as MergeThreadData;
try {
  const outcome = await mergePeftAdaptersStreaming(sources, outDirectory, { maxRank, temporary, config });
  parentPort!.postMessage({ outcome });
} catch (error) {
  const reason = error instanceof MergeRefusedError ? error.reason : undefined;
  parentPort!.postMessage({ error: { message: (error as Error).message, reason } });
}
