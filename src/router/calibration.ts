import { vectorNorm } from './math.js';

/**
 * Calibrated confidence (pure). For each task, the similarities of its held-out examples to the
 * centroid of its other examples (held-out.ts) say how similar a new prompt of that task typically
 * is to the task's centroid; a prompt's similarity becomes the normal CDF of its standardised score
 * under that task's distribution. The same number means the same thing for every task and every
 * encoder, whatever the encoder's similarity scale.
 */

export interface TaskCalibration {
  /** Typical similarity of a prompt of this task to the task's centroid. */
  mean: number;
  /** Its spread (standard deviation), shrunk towards the registry's for tasks with few examples. */
  spread: number;
}

// Prior weights, in examples, of the registry-wide mean and spread for each task's own estimate.
const MEAN_PRIOR = 2;
const SPREAD_PRIOR = 4;
const MIN_SPREAD = 1e-3;

/** Per task, from its held-out similarities; tasks with few or none borrow the registry-wide figures. */
export function calibrateTasks(samples: readonly (readonly number[])[]): TaskCalibration[] {
  const all = samples.flat();
  const pooledMean = all.length > 0 ? mean(all) : 0.5;
  const withSpread = samples.filter((sample) => sample.length >= 2);
  const pooledVariance = withSpread.length > 0 ? mean(withSpread.map(variance)) : 0.01;
  return samples.map((sample) => {
    const n = sample.length;
    const taskMean = n > 0 ? (MEAN_PRIOR * pooledMean + n * mean(sample)) / (MEAN_PRIOR + n) : pooledMean;
    const taskVariance = n >= 2 ? (SPREAD_PRIOR * pooledVariance + (n - 1) * variance(sample)) / (SPREAD_PRIOR + n - 1) : pooledVariance;
    return { mean: taskMean, spread: Math.max(MIN_SPREAD, Math.sqrt(taskVariance)) };
  });
}

/**
 * What confidence is calibrated on: a prompt's cosine to a task centroid times the length of its
 * embedding. Neural encoders give unit vectors, so this is the cosine; the built-in encoder's vector
 * is the part of the prompt that its fitted features cover, so a prompt made of words no task has
 * (a greeting, random letters) scores low however its few known features point.
 */
export function evidenceOf(cosine: number, embedding: Float32Array): number {
  return cosine * vectorNorm(embedding);
}

/** In [0, 1], increasing in the similarity: how typical it is for a prompt of the task. */
export function confidenceOf(similarity: number, calibration: TaskCalibration): number {
  return normalCdf((similarity - calibration.mean) / calibration.spread);
}

/** Standard normal CDF (Abramowitz & Stegun 7.1.26 for erf, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

function variance(values: readonly number[]): number {
  const m = mean(values);
  return values.reduce((sum, value) => sum + (value - m) ** 2, 0) / (values.length - 1);
}
