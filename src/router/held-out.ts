import type { Encoder } from '../encoders/encoder.js';
import type { TaskDefinition } from '../registry/types.js';
import { evidenceOf } from './calibration.js';
import { cosine, meanOfNormalized } from './math.js';

/** Builds the encoder for a set of tasks: fitted on them (built-in, hybrid) or the same for any (ONNX, remote). */
export type EncoderForTasks = (tasks: readonly { examples: readonly string[] }[]) => Encoder;

/**
 * Similarities of each task's examples to the task's centroid, each computed with the example held
 * out: fold f holds out the examples i with i % folds === f, fits the encoder on the rest when it is
 * fitted, and scores the held-out examples against the centroids of the rest. These are the
 * similarities a new prompt of the task gets, which an example scored against a centroid (and an
 * encoder) that already contains it would overstate.
 */
export async function heldOutSimilarities(
  tasks: readonly TaskDefinition[],
  encoderFor: EncoderForTasks,
  reuse: Encoder,
  folds = 3,
): Promise<number[][]> {
  const samples: number[][] = tasks.map(() => []);
  for (let fold = 0; fold < folds; fold++) {
    const kept = tasks.map((task) => task.examples.filter((_, i) => i % folds !== fold));
    const heldOut = tasks.map((task) => task.examples.filter((_, i) => i % folds === fold));
    const calibrated = tasks.filter((_, t) => kept[t].length > 0 && heldOut[t].length > 0);
    if (calibrated.length === 0) continue;
    const fitted = encoderFor(kept.map((examples) => ({ examples })));
    // An encoder that does not depend on the tasks is the one already in use, with its caches.
    const encoder = fitted.fingerprint === reuse.fingerprint ? reuse : fitted;
    const keptVectors = await encoder.encode(kept.flat(), 'example');
    const heldOutVectors = await encoder.encode(heldOut.flat());
    let nextKept = 0;
    let nextHeldOut = 0;
    tasks.forEach((_, t) => {
      const own = keptVectors.slice(nextKept, (nextKept += kept[t].length));
      const tests = heldOutVectors.slice(nextHeldOut, (nextHeldOut += heldOut[t].length));
      if (own.length === 0) return;
      const centroid = meanOfNormalized(own);
      for (const test of tests) samples[t].push(evidenceOf(cosine(test, centroid), test));
    });
  }
  return samples;
}
