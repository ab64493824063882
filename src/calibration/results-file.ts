import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

/** One scored answer, as a line of the results file. */
export interface ScoredCall {
  task: string;
  adapter: string;
  /** Hash of the example and its target, so that a changed example is asked again. */
  example: string;
  score: number;
  /** When it was scored (ms since the epoch): how fast a run goes, for its ETA. */
  at?: number;
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
 * Scored answers in memory, by task, adapter and example: the table the stores below keep, and what a run that never
 * resumes needs alone. `timing` follows the answers that say when they were scored.
 */
export class AnswerTable implements ScoredAnswers {
  protected readonly done = new Map<string, number>();
  /** The earliest and latest time an answer was scored, and how many carry one. */
  readonly timing = { first: Infinity, last: -Infinity, timed: 0 };

  get size(): number {
    return this.done.size;
  }

  get(task: string, adapter: string, example: string): number | undefined {
    return this.done.get(keyOf({ task, adapter, example }));
  }

  add(call: ScoredCall): void {
    this.done.set(keyOf(call), call.score);
    if (call.at !== undefined) this.time(call.at);
  }

  /** Answers saved for each task. */
  byTask(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const key of this.done.keys()) {
      const task = key.slice(0, key.indexOf('\u0000'));
      counts.set(task, (counts.get(task) ?? 0) + 1);
    }
    return counts;
  }

  private time(at: number): void {
    this.timing.first = Math.min(this.timing.first, at);
    this.timing.last = Math.max(this.timing.last, at);
    this.timing.timed++;
  }
}

/**
 * Calibration results saved as they arrive (one JSON line each, with when it was scored), so that a rerun after a
 * crash or Ctrl-C skips every call already made.
 */
export class ResultsFile extends AnswerTable {
  /** `readAlso`: other results files (other shards') whose answers count as made; new ones go to `path` only. */
  constructor(
    private readonly path: string,
    readAlso: readonly string[] = [],
  ) {
    super();
    for (const file of [path, ...readAlso]) this.read(file);
  }

  override add(call: ScoredCall): void {
    const timed = { ...call, at: Date.now() };
    super.add(timed);
    appendFileSync(this.path, `${JSON.stringify(timed)}\n`);
  }

  private read(path: string): void {
    if (!existsSync(path)) return;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const call = JSON.parse(line) as ScoredCall;
        if (typeof call.score === 'number') super.add({ ...call, at: typeof call.at === 'number' ? call.at : undefined });
      } catch {
        // A line cut short by a crash: that call is made again.
      }
    }
  }
}

export const keyOf = (call: Omit<ScoredCall, 'score'>) => `${call.task}\u0000${call.adapter}\u0000${call.example}`;
