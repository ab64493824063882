import type { TaskRegistry } from '../src/registry/types.js';

/** Deterministic PRNG (mulberry32) so every run benchmarks the same tasks. */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ren', 'tu', 'sa', 'vek', 'dor', 'pi', 'nal', 'qu', 'est', 'bar', 'zin', 'hol', 'ti', 'gra', 'mon'];

/** `count` synthetic tasks: each has its own template words plus shared filler, `examples` prompts a task. */
export function syntheticRegistry(count: number, examples = 2, seed = 7): TaskRegistry {
  const random = prng(seed);
  const word = () => Array.from({ length: 2 + Math.floor(random() * 2) }, () => SYLLABLES[Math.floor(random() * SYLLABLES.length)]).join('');
  const filler = Array.from({ length: 3000 }, word);
  const tasks = Array.from({ length: count }, (_, t) => {
    const template = Array.from({ length: 4 }, word);
    return {
      id: `task_${t}`,
      domain: `domain_${t % 10}`,
      examples: Array.from({ length: examples }, () =>
        [...template, ...Array.from({ length: 6 }, () => filler[Math.floor(random() * filler.length)])].join(' '),
      ),
      adapterScores: {},
    };
  });
  return { tasks, adapters: new Map(tasks.map((task) => [task.id, { id: task.id }])), source: `synthetic ${count}` };
}
