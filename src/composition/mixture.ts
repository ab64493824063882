import type { WeightedAdapter } from '../router/math.js';

/** Adapters with weights that sum to 1, heaviest first. */
export type Mixture = readonly WeightedAdapter[];

/**
 * How much of the requested mixture a served one delivers: Σ_a min(requested_a, served_a).
 * 1 for the exact mixture, the top weight for the top adapter alone, 0 for the base model.
 */
export function fidelity(requested: Mixture, served: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const adapter of requested) {
    const weight = served.get(adapter.id);
    if (weight !== undefined) total += Math.min(adapter.weight, weight);
  }
  return total;
}

export function weightsOf(mixture: Mixture): Map<string, number> {
  return new Map(mixture.map((adapter) => [adapter.id, adapter.weight]));
}

/** Adapters lighter than `minWeight` leave the mixture (the heaviest always stays); the rest are renormalised. */
export function dropLightAdapters(adapters: Mixture, minWeight: number): { kept: WeightedAdapter[]; dropped: string[] } {
  const kept = adapters.filter((adapter, i) => i === 0 || adapter.weight >= minWeight);
  const total = kept.reduce((sum, adapter) => sum + adapter.weight, 0);
  return {
    kept: kept.map((adapter) => ({ id: adapter.id, weight: adapter.weight / total })),
    dropped: adapters.filter((adapter) => !kept.includes(adapter)).map((adapter) => adapter.id),
  };
}

/** Weights rounded to `step` and renormalised, heaviest first; adapters that round to 0 drop out. */
export function roundWeights(adapters: Mixture, step: number): WeightedAdapter[] {
  const rounded = adapters.map((adapter) => ({ id: adapter.id, weight: Math.round(adapter.weight / step) * step })).filter((a) => a.weight > 0);
  if (rounded.length === 0) return [{ id: adapters[0].id, weight: 1 }];
  const total = rounded.reduce((sum, adapter) => sum + adapter.weight, 0);
  return rounded
    .map((adapter) => ({ id: adapter.id, weight: Number((adapter.weight / total).toFixed(6)) }))
    .sort((a, b) => b.weight - a.weight || (a.id < b.id ? -1 : 1));
}

/** The mixture a merge would hold for a request: light adapters dropped, weights on the grid. */
export function onGrid(adapters: Mixture, step: number, minWeight: number): { mixture: WeightedAdapter[]; dropped: string[] } {
  const { kept, dropped } = dropLightAdapters(adapters, minWeight);
  return { mixture: roundWeights(kept, step), dropped };
}

/** One name for one mixture whatever the order of its adapters. */
export function mixtureKey(mixture: Mixture): string {
  return [...mixture]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((adapter) => `${adapter.id}=${adapter.weight}`)
    .join(',');
}

/** `sst2=0.71,imdb_reviews=0.29`: weights to 4 decimals without trailing zeros. */
export function formatMixture(mixture: Mixture): string {
  let text = formatted.get(mixture);
  if (text === undefined) {
    text = mixture.map((item) => `${item.id}=${Number(item.weight.toFixed(4))}`).join(',');
    formatted.set(mixture, text);
  }
  return text;
}

// A cached decision's mixtures are the same arrays on every hit (decisions are never changed once made):
// each is formatted once, not on every answer that names it.
const formatted = new WeakMap<Mixture, string>();

/**
 * The mixture within a rank budget: the lightest adapters leave until Σ r fits (the heaviest always
 * stays), the rest renormalised and put back on the grid. Undefined ranks count as 0.
 */
export function withinRank(mixture: Mixture, rankOf: (id: string) => number | undefined, maxRank: number, step: number): WeightedAdapter[] {
  const kept = [...mixture];
  while (kept.length > 1 && kept.reduce((sum, adapter) => sum + (rankOf(adapter.id) ?? 0), 0) > maxRank) kept.pop();
  if (kept.length === mixture.length) return kept;
  return roundWeights(dropLightAdapters(kept, 0).kept, step);
}
