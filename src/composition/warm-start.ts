import type { WeightedAdapter } from '../router/math.js';
import { mixtureKey, onGrid, type Mixture } from './mixture.js';

/** A mixture the registry's own examples asked for, and how many of them asked for it. */
export interface ExpectedMixture {
  mixture: Mixture;
  examples: number;
}

/**
 * What traffic is expected to ask for before any has arrived: the decisions on the tasks' own
 * examples, each on the weight grid (abstentions and single adapters left out), equal mixtures
 * counted together, the most asked for first. The planner then picks among them by benefit, as it
 * does for traffic, so that mixtures close to many examples are built first (a clustering by coverage).
 */
export function expectedMixtures(decisions: readonly (readonly WeightedAdapter[])[], grid: { step: number; minWeight: number }): ExpectedMixture[] {
  const expected = new Map<string, ExpectedMixture>();
  for (const adapters of decisions) {
    if (adapters.length < 2) continue;
    const { mixture } = onGrid(adapters, grid.step, grid.minWeight);
    if (mixture.length < 2) continue;
    const key = mixtureKey(mixture);
    const known = expected.get(key);
    if (known) known.examples++;
    else expected.set(key, { mixture, examples: 1 });
  }
  return [...expected.values()].sort((a, b) => b.examples - a.examples || (mixtureKey(a.mixture) < mixtureKey(b.mixture) ? -1 : 1));
}
