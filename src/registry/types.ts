export interface AdapterDefinition {
  id: string;
  /** Where the upstream finds the adapter: a PEFT directory for vLLM merges, a path for LoRAX. */
  path?: string;
  /** Name the upstream knows the adapter by, when it differs from the id. */
  upstreamName?: string;
  /** llama.cpp server: the file name stem (or numeric id) to match in GET /lora-adapters. */
  llamaCppName?: string;
  /** Known LoRA rank and alpha, for operators and calibration reports (merges read them from the PEFT files). */
  rank?: number;
  alpha?: number;
  description?: string;
}

/** How an answer is scored against its target when calibrating a task (see src/calibration/metrics.ts). */
export type TaskMetric = 'exact' | 'rouge_l' | 'bleu';

export interface TaskDefinition {
  id: string;
  domain?: string;
  description?: string;
  examples: string[];
  /** Calibration: validation score of each adapter on this task (higher is better). */
  adapterScores: Record<string, number>;
  /** The expected answer of each example (same positions; null where unknown), for `lorauter calibrate`. */
  targets?: (string | null)[];
  metric?: TaskMetric;
}

export interface TaskRegistry {
  tasks: TaskDefinition[];
  adapters: Map<string, AdapterDefinition>;
  /** Prompts that belong to the base model (greetings, chit-chat, off-topic): a prompt closer to them than to every task abstains. */
  baseExamples?: string[];
  /** Where it came from, for logs and /v1/tasks. */
  source: string;
}

export class RegistryError extends Error {
  override name = 'RegistryError';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${reason}`);
  }
}

/** The adapters a task may route to: those it has calibration scores for, else its own (same id). */
export function candidateAdapters(task: Pick<TaskDefinition, 'id' | 'adapterScores'>): string[] {
  const scored = Object.keys(task.adapterScores);
  return scored.length > 0 ? scored : [task.id];
}

/**
 * The adapter a task routes to: the best calibration score, the task's own adapter on ties or
 * when there are no scores. Adapters in `excluded` are treated as absent.
 */
export function bestAdapterOf(task: TaskDefinition, excluded?: ReadonlySet<string>): string | undefined {
  let best: string | undefined;
  let bestScore = -Infinity;
  for (const adapter of candidateAdapters(task)) {
    const score = task.adapterScores[adapter] ?? 0;
    if (excluded?.has(adapter)) continue;
    const better = score > bestScore || (score === bestScore && (adapter === task.id || (best !== task.id && adapter < best!)));
    if (better) {
      best = adapter;
      bestScore = score;
    }
  }
  return best;
}
