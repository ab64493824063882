import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

/** One scored answer, as a line of the results file. */
export interface ScoredCall {
  task: string;
  adapter: string;
  /** Hash of the example and its target, so that a changed example is asked again. */
  example: string;
  score: number;
}

export const exampleKey = (prompt: string, target: string) => createHash('sha256').update(prompt).update('\u0000').update(target).digest('hex').slice(0, 16);

/** Where scored answers are kept, so that a rerun (or a merge of shards) makes no call twice. */
export interface ScoredAnswers {
  get(task: string, adapter: string, example: string): number | undefined;
  add(call: ScoredCall): void;
  /** Resolves once every answer added is stored. */
  flush?(): Promise<void>;
}

/**
 * Calibration results saved as they arrive (one JSON line each), so that a rerun after a crash or
 * Ctrl-C skips every call already made.
 */
export class ResultsFile implements ScoredAnswers {
  private readonly done = new Map<string, number>();

  /** `readAlso`: other results files (other shards') whose answers count as made; new ones go to `path` only. */
  constructor(
    private readonly path: string,
    readAlso: readonly string[] = [],
  ) {
    for (const file of [path, ...readAlso]) this.read(file);
  }

  private read(path: string): void {
    if (!existsSync(path)) return;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const call = JSON.parse(line) as ScoredCall;
        if (typeof call.score === 'number') this.done.set(keyOf(call), call.score);
      } catch {
        // A line cut short by a crash: that call is made again.
      }
    }
  }

  get size(): number {
    return this.done.size;
  }

  get(task: string, adapter: string, example: string): number | undefined {
    return this.done.get(keyOf({ task, adapter, example }));
  }

  add(call: ScoredCall): void {
    this.done.set(keyOf(call), call.score);
    appendFileSync(this.path, `${JSON.stringify(call)}\n`);
  }
}

export const keyOf = (call: Omit<ScoredCall, 'score'>) => `${call.task}\u0000${call.adapter}\u0000${call.example}`;
