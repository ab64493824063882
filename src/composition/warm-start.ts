import type { WeightedAdapter } from '../router/math.js';
import { mixtureKey, onGrid, type Mixture } from './mixture.js';

/**
 * Prototype mixtures for a warm start, from the decisions on each task's own examples: a task's
 * typical mixture is the mean of its examples' mixtures (abstentions left out), on the weight grid.
 * Tasks whose examples give the same prototype share it; each prototype's count is how many tasks gave it.
 */
export function typicalMixtures(
  decisionsByTask: ReadonlyMap<string, readonly (readonly WeightedAdapter[])[]>,
  grid: { step: number; minWeight: number; maxAdapters: number },
): { mixture: Mixture; tasks: number }[] {
  const prototypes = new Map<string, { mixture: Mixture; tasks: number }>();
  for (const decisions of decisionsByTask.values()) {
    const routed = decisions.filter((adapters) => adapters.length > 0);
    if (routed.length === 0) continue;
    const sums = new Map<string, number>();
    for (const adapters of routed) for (const adapter of adapters) sums.set(adapter.id, (sums.get(adapter.id) ?? 0) + adapter.weight / routed.length);
    const mean = [...sums].map(([id, weight]) => ({ id, weight })).sort((a, b) => b.weight - a.weight || (a.id < b.id ? -1 : 1)).slice(0, grid.maxAdapters);
    const total = mean.reduce((s, adapter) => s + adapter.weight, 0);
    const { mixture } = onGrid(mean.map((adapter) => ({ id: adapter.id, weight: adapter.weight / total })), grid.step, grid.minWeight);
    if (mixture.length < 2) continue;
    const key = mixtureKey(mixture);
    const known = prototypes.get(key);
    if (known) known.tasks++;
    else prototypes.set(key, { mixture, tasks: 1 });
  }
  return [...prototypes.values()].sort((a, b) => b.tasks - a.tasks);
}
