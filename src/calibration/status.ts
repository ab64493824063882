import type { TaskRegistry } from '../registry/types.js';
import { calibrate, planCalibration, type CalibrationOptions } from './calibrate.js';
import type { AnswerTable } from './results-file.js';

export interface CalibrationStatus {
  done: string[];
  pending: string[];
  answers: number;
  fullMatrixCalls: number;
  /** The most calls the pending tasks still take. */
  callsLeft: number;
  /** Answers a second over the run so far, from their timestamps (undefined without any). */
  rate?: number;
}

/**
 * How far a calibration got, from the answers saved (every shard's): a task is done when its strategy reaches its
 * choice from them alone, which is replayed here without a call.
 */
export async function calibrationStatus(registry: TaskRegistry, options: Pick<CalibrationOptions, 'adapters' | 'shortlist' | 'strategy' | 'budget' | 'maxExamples'>, results: AnswerTable): Promise<CalibrationStatus> {
  const { adapters, plans } = planCalibration(registry, options);
  const byTask = results.byTask();
  const notSaved = async () => {
    throw Object.assign(new Error('not saved yet'), { retriable: false });
  };
  const done: string[] = [];
  const pending: string[] = [];
  let callsLeft = 0;
  for (const plan of plans) {
    try {
      await calibrate({ ...registry, tasks: [plan.task] }, { ...options, adapters, concurrency: 64, results, ask: notSaved, retries: 0 });
      done.push(plan.task.id);
    } catch {
      pending.push(plan.task.id);
      callsLeft += Math.max(0, plan.planned - (byTask.get(plan.task.id) ?? 0));
    }
  }
  const fullMatrixCalls = plans.reduce((sum, plan) => sum + adapters.length * plan.examples.length, 0);
  const { first, last, timed } = results.timing;
  const rate = timed > 1 && last > first ? (timed - 1) / ((last - first) / 1000) : undefined;
  return { done, pending, answers: results.size, fullMatrixCalls, callsLeft, rate };
}
