import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import type { TaskDefinition, TaskMetric, TaskRegistry } from '../registry/types.js';
import { bestByBounds } from './bounds.js';
import { halvingSchedule, meanOf, scheduleCost, successiveHalving, type Round, type Tally } from './halving.js';
import { metricFor, scoreAnswer } from './metrics.js';
import { exampleKey, type ScoredAnswers } from './results-file.js';

export type CalibrationStrategy = 'bounds' | 'halving' | 'full';

export interface CalibrationOptions {
  /** Candidate adapters; default: every adapter of the registry. */
  adapters?: readonly string[];
  /** A task's own shortlist of candidates (a subset of `adapters`), e.g. the adapters of its nearest tasks. */
  shortlist?: ReadonlyMap<string, readonly string[]>;
  strategy: CalibrationStrategy;
  /** Bounds and halving: the most upstream calls a task may take (never exceeded); default half of its full row. */
  budget?: number;
  /** Examples a task is scored on at most. */
  maxExamples?: number;
  concurrency: number;
  results: ScoredAnswers;
  /** The upstream's answer with exactly this adapter. */
  ask: (adapter: string, prompt: string) => Promise<string>;
  /** Retries of a failed call before the run stops (what was scored stays saved). */
  retries?: number;
  onPlanned?: (calls: number, tasks: number) => void;
  onTaskDone?: (task: string) => void;
  onCall?: (resumed: boolean) => void;
}

export interface TaskCalibrationResult {
  task: string;
  metric: TaskMetric;
  examples: number;
  best: string;
  /** The last round's candidates, best first (scored on the same examples). */
  finalists: Tally[];
  /** Every candidate, as far as it got. */
  tallies: Tally[];
  plannedCalls: number;
  fullCalls: number;
}

export interface CalibrationReport {
  tasks: TaskCalibrationResult[];
  skipped: { task: string; reason: string }[];
  adapters: string[];
  /** Upstream calls made in this run, and answers reused from an earlier run. */
  calls: number;
  resumed: number;
  plannedCalls: number;
  /** What scoring every candidate on every example would take. */
  fullCalls: number;
  /** What scoring every adapter (no shortlist) on every example would take. */
  fullMatrixCalls: number;
}

export class CalibrationError extends Error {
  override name = 'CalibrationError';
}

/** The examples a task is scored on: those with a target, in an order fixed by their hash (not the file's, which may be grouped). */
function scoredExamples(task: TaskDefinition, max: number | undefined): { prompt: string; target: string; key: string }[] {
  const withTargets = task.examples.flatMap((prompt, i) => {
    const target = task.targets?.[i];
    return target === null || target === undefined ? [] : [{ prompt, target, key: exampleKey(prompt, target) }];
  });
  const order = (key: string) => createHash('sha256').update(task.id).update(key).digest('hex');
  withTargets.sort((a, b) => (order(a.key) < order(b.key) ? -1 : 1));
  return withTargets.slice(0, max ?? withTargets.length);
}

/**
 * LoRAuter's task × adapter performance matrix: each task's examples sent through the upstream with
 * one candidate adapter at a time, answers scored against the targets with the task's metric, and
 * the candidates narrowed by successive halving (or all scored fully).
 */
type PlanOptions = Pick<CalibrationOptions, 'adapters' | 'shortlist' | 'strategy' | 'budget' | 'maxExamples'>;

interface TaskPlan {
  task: TaskDefinition;
  candidates: readonly string[];
  examples: ReturnType<typeof scoredExamples>;
  rounds: Round[];
  metric: TaskMetric;
  /** The most calls the task takes (confidence bounds may stop before). */
  planned: number;
}

/** Each task's candidates, examples and the most calls it takes; the tasks that cannot be calibrated, and why. */
export function planCalibration(registry: TaskRegistry, options: PlanOptions): { adapters: string[]; plans: TaskPlan[]; skipped: CalibrationReport['skipped'] } {
  const adapters = [...(options.adapters ?? registry.adapters.keys())];
  const unknown = adapters.filter((id) => !registry.adapters.has(id));
  if (unknown.length > 0) throw new CalibrationError(`unknown adapter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: the registry knows ${[...registry.adapters.keys()].join(', ')}`);
  if (adapters.length === 0) throw new CalibrationError('no candidate adapters: the registry lists none and --adapters named none');
  const skipped: CalibrationReport['skipped'] = [];
  const plans: TaskPlan[] = [];
  for (const task of registry.tasks) {
    const examples = scoredExamples(task, options.maxExamples);
    if (examples.length === 0) {
      skipped.push({ task: task.id, reason: 'no example has a target' });
      continue;
    }
    const candidates = options.shortlist?.get(task.id)?.filter((id) => adapters.includes(id)) ?? adapters;
    const full = candidates.length * examples.length;
    const budget = Math.min(full, options.budget ?? Math.floor(full / 2));
    const rounds =
      options.strategy === 'full'
        ? [{ candidates: candidates.length, from: 0, to: examples.length }]
        : options.strategy === 'halving'
          ? halvingSchedule(candidates.length, examples.length, budget)
          : [];
    // Bounds: the budget is the most it spends (it stops once the best is clear).
    plans.push({ task, candidates, examples, rounds, metric: metricFor(task), planned: options.strategy === 'bounds' ? (candidates.length > 1 ? budget : 0) : scheduleCost(rounds) });
  }
  return { adapters, plans, skipped };
}

export async function calibrate(registry: TaskRegistry, options: CalibrationOptions): Promise<CalibrationReport> {
  const { adapters, plans, skipped } = planCalibration(registry, options);
  const limit = pLimit(options.concurrency);
  const plannedCalls = plans.reduce((sum, plan) => sum + plan.planned, 0);
  options.onPlanned?.(plannedCalls, plans.length);

  let calls = 0;
  let resumed = 0;
  const scoreOne = async (plan: (typeof plans)[number], adapter: string, index: number): Promise<number> => {
    const example = plan.examples[index];
    const saved = options.results.get(plan.task.id, adapter, example.key);
    if (saved !== undefined) {
      resumed++;
      options.onCall?.(true);
      return saved;
    }
    const answer = await limit(() => askWithRetries(() => options.ask(adapter, example.prompt), options.retries ?? 2));
    const score = scoreAnswer(plan.metric, answer, example.target);
    options.results.add({ task: plan.task.id, adapter, example: example.key, score });
    calls++;
    options.onCall?.(false);
    return score;
  };
  const calibrated = Promise.all(
    plans.map(async (plan): Promise<TaskCalibrationResult> => {
      const scoreFor = (adapter: string, index: number) => scoreOne(plan, adapter, index);
      const result =
        options.strategy === 'bounds'
          ? await bestByBounds(plan.candidates, { budget: plan.planned, examples: plan.examples.length }, plan.task.id, scoreFor)
          : await successiveHalving(plan.candidates, plan.rounds, plan.task.id, scoreFor);
      options.onTaskDone?.(plan.task.id);
      return {
        task: plan.task.id,
        metric: plan.metric,
        examples: plan.examples.length,
        best: result.best,
        finalists: result.finalists,
        tallies: result.tallies,
        plannedCalls: plan.planned,
        fullCalls: plan.candidates.length * plan.examples.length,
      };
    }),
  );
  // Answers still being stored are stored whatever happened (a failed run resumes from them).
  const tasks = await calibrated.finally(() => options.results.flush?.());
  const fullCalls = tasks.reduce((sum, task) => sum + task.fullCalls, 0);
  const fullMatrixCalls = tasks.reduce((sum, task) => sum + adapters.length * task.examples, 0);
  return { tasks, skipped, adapters, calls, resumed, plannedCalls, fullCalls, fullMatrixCalls };
}

async function askWithRetries(ask: () => Promise<string>, retries: number): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ask();
    } catch (error) {
      // Only what may succeed on a second try is retried (timeouts, 429, 5xx, network); a refusal stops the run at once.
      const retriable = (error as { retriable?: boolean }).retriable ?? true;
      if (!retriable || attempt >= retries) throw new CalibrationError(`${(error as Error).message} (after ${attempt + 1} ${attempt ? 'tries' : 'try'}; rerun to resume where it stopped)`);
      await new Promise((resolve) => setTimeout(resolve, 200 * 3 ** attempt));
    }
  }
}

/** The registry with each calibrated task's scores: the last round's candidates, so that the best scores highest. */
export function withCalibratedScores(registry: TaskRegistry, report: CalibrationReport): TaskRegistry {
  const byTask = new Map(report.tasks.map((result) => [result.task, result]));
  return {
    ...registry,
    tasks: registry.tasks.map((task) => {
      const result = byTask.get(task.id);
      if (!result) return task;
      return { ...task, adapterScores: Object.fromEntries(result.finalists.map((tally) => [tally.adapter, Number(meanOf(tally).toFixed(6))])) };
    }),
  };
}
