import type { Encoder } from '../encoders/encoder.js';
import { candidateAdapters, type TaskRegistry } from '../registry/types.js';
import { cosine, meanOfNormalized } from '../router/math.js';

/**
 * Each task's candidates: the adapters of its `k` nearest tasks by centroid cosine (itself
 * included), as LoRAuter narrows a large adapter pool before measuring.
 */
export async function nearestTaskAdapters(registry: TaskRegistry, encoder: Encoder, k: number): Promise<Map<string, string[]>> {
  const vectors = await encoder.encode(registry.tasks.flatMap((task) => task.examples), 'example');
  let next = 0;
  const centroids = registry.tasks.map((task) => meanOfNormalized(vectors.slice(next, (next += task.examples.length))));
  const shortlist = new Map<string, string[]>();
  registry.tasks.forEach((task, i) => {
    const nearest = registry.tasks
      .map((other, j) => ({ other, similarity: j === i ? Infinity : cosine(centroids[i], centroids[j]) }))
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, k);
    shortlist.set(task.id, [...new Set(nearest.flatMap(({ other }) => candidateAdapters(other)))]);
  });
  return shortlist;
}
