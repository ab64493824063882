import t from 'tap';
import { DemandTracker } from '../src/composition/demand.js';
import { fidelity, mixtureKey, onGrid, weightsOf, withinRank, type Mixture } from '../src/composition/mixture.js';
import { chooseServed, planBuild, type BuildBudgets, type Demand, type LiveMerge } from '../src/composition/planner.js';
import { expectedMixtures } from '../src/composition/warm-start.js';

const mix = (spec: Record<string, number>): Mixture => Object.entries(spec).map(([id, weight]) => ({ id, weight })).sort((a, b) => b.weight - a.weight);
const merge = (spec: Record<string, number>, bytes = 100, pinned = false): LiveMerge => {
  const mixture = mix(spec);
  return { key: mixtureKey(mixture), mixture, weights: weightsOf(mixture), bytes, pinned };
};
const demand = (spec: Record<string, number>, weight: number): Demand => {
  const mixture = mix(spec);
  return { key: mixtureKey(mixture), mixture, weights: weightsOf(mixture), weight };
};
const budgets: BuildBudgets = { maxLive: 8, maxBytes: 10_000, minGain: 0.5, hysteresis: 0.25 };

t.test('fidelity is Σ min(requested, served): 1 exact, the top weight alone, 0 for the base model', async (t) => {
  const requested = mix({ a: 0.5, b: 0.3, c: 0.2 });
  t.equal(fidelity(requested, weightsOf(requested)), 1);
  t.equal(fidelity(requested, new Map([['a', 1]])), 0.5);
  t.equal(fidelity(requested, new Map()), 0);
  // min(.5,.4) + min(.3,.6) + 0 = 0.7
  t.equal(Number(fidelity(requested, new Map([['a', 0.4], ['b', 0.6]])).toFixed(10)), 0.7);
});

t.test('chooseServed: the exact merge when live, else the live merge or single adapter with the highest fidelity', async (t) => {
  const requested = mix({ a: 0.5, b: 0.3, c: 0.2 });
  const exact = merge({ a: 0.5, b: 0.3, c: 0.2 });
  const near = merge({ a: 0.6, b: 0.4 }); // .5 + .3 = .8
  const far = merge({ b: 0.5, d: 0.5 }); // .3
  const live = (...merges: LiveMerge[]) => new Map(merges.map((m) => [m.key, m]));
  t.same(chooseServed(requested, exact.key, live(far, near, exact)), { served: exact.mixture, fidelity: 1, merge: exact.key });
  const nearest = chooseServed(requested, exact.key, live(far, near));
  t.equal(nearest.merge, near.key);
  t.equal(Number(nearest.fidelity.toFixed(10)), 0.8);
  t.same(chooseServed(requested, exact.key, live(far)), { served: [{ id: 'a', weight: 1 }], fidelity: 0.5 }, 'the top adapter beats a merge of lower fidelity');
  const tie = merge({ a: 0.5, d: 0.5 }); // .5: equal to the top alone
  t.equal(chooseServed(requested, exact.key, live(tie)).merge, undefined, 'a tie goes to the single adapter');
});

t.test('planBuild: the demanded mixture that adds the most expected fidelity, counting mixtures close to it', async (t) => {
  // ab is asked for twice; two ac mixtures less often each, but close to each other: building one also serves the other.
  const entries = [demand({ a: 0.5, b: 0.5 }, 2), demand({ a: 0.6, c: 0.4 }, 1.5), demand({ a: 0.55, c: 0.45 }, 2)];
  // gains over the top adapters: ab → 2·(1 − .5) = 1.0
  // ac(.6/.4) → 1.5·(1 − .6) + 2·(.55 + .4 − .55) = 1.4;  ac(.55/.45) → 1.5·(.55 + .4 − .6) + 2·(1 − .55) = 1.425
  const plan = planBuild({ demand: entries, live: [], building: [], budgets, bytesOf: () => 100 });
  t.ok(plan);
  t.equal(plan!.build.key, mixtureKey(mix({ a: 0.55, c: 0.45 })), 'the ac that serves both ac requests best, ahead of the more frequent ab');
  t.equal(Number(plan!.gain.toFixed(10)), 1.425);
  t.same(plan!.evict, []);
  // Once ac is building, ab is next.
  const next = planBuild({ demand: entries, live: [], building: [merge({ a: 0.55, c: 0.45 })], budgets, bytesOf: () => 100 });
  t.equal(next!.build.key, mixtureKey(mix({ a: 0.5, b: 0.5 })));
  t.equal(Number(next!.gain.toFixed(10)), 1);
  // With one candidate only the first entry (the tracker gives the most asked for first) may be built.
  const one = planBuild({ demand: [entries[1], entries[0], entries[2]], live: [], building: [], budgets, bytesOf: () => 100, candidates: 1 });
  t.equal(one!.build.key, entries[1].key, 'one candidate: ac(.6/.4), though ac(.55/.45) would gain more');
  t.equal(Number(one!.gain.toFixed(10)), 1.4, 'its gain still counts every entry close to it');
  // Into free room a smaller gain is worth a build (minGainInRoom); one that must evict still needs minGain.
  const modest = [demand({ a: 0.7, b: 0.3 }, 1)]; // gain 1 · (1 − .7) = 0.3
  const roomy = { ...budgets, minGainInRoom: 0.1 };
  t.equal(planBuild({ demand: modest, live: [], building: [], budgets: roomy, bytesOf: () => 100 })?.build.key, modest[0].key, '0.3 > 0.1 with room to spare');
  t.equal(planBuild({ demand: modest, live: [merge({ c: 0.5, d: 0.5 })], building: [], budgets: { ...roomy, maxLive: 1 }, bytesOf: () => 100 }), undefined, '0.3 ≤ 0.5 when cd would have to go');
  t.equal(planBuild({ demand: modest, live: [], building: [], budgets: { ...roomy, maxBytes: 50 }, bytesOf: () => 100 }), undefined, 'nothing larger than the bytes budget');
  // A gain under minGain is not worth a build.
  t.equal(planBuild({ demand: [demand({ a: 0.9, b: 0.1 }, 1)], live: [], building: [], budgets, bytesOf: () => 100 }), undefined, '1 · 0.1 < 0.5');
  t.equal(planBuild({ demand: [demand({ a: 1 }, 10)], live: [], building: [], budgets, bytesOf: () => 100 }), undefined, 'a single adapter needs no merge');
});

t.test('planBuild: evicts the live merge that loses least, only when the build is worth more, never a pinned one', async (t) => {
  const small = { ...budgets, maxLive: 2 };
  const liveMerges = [merge({ a: 0.5, b: 0.5 }), merge({ c: 0.5, d: 0.5 })];
  // ab is still asked for (loss 3·.5 = 1.5), cd hardly (loss .005); ef is asked for 5 times (gain 5·.5 = 2.5).
  const entries = [demand({ a: 0.5, b: 0.5 }, 3), demand({ c: 0.5, d: 0.5 }, 0.01), demand({ e: 0.5, f: 0.5 }, 5)];
  const plan = planBuild({ demand: entries, live: liveMerges, building: [], budgets: small, bytesOf: () => 100 });
  t.equal(plan!.build.key, mixtureKey(mix({ e: 0.5, f: 0.5 })));
  t.same(plan!.evict, [liveMerges[1].key], 'cd: the least used');
  t.equal(Number(plan!.loss.toFixed(10)), 0.005);
  t.equal(planBuild({ demand: entries, live: [liveMerges[0], merge({ c: 0.5, d: 0.5 }, 100, true)], building: [], budgets: small, bytesOf: () => 100 })!.evict[0], liveMerges[0].key, 'cd is pinned: ab goes (net 2.5 − 1.5 = 1 is worth it)');
  // ef asked for about as often as ab: swapping would only churn.
  const even = [demand({ a: 0.5, b: 0.5 }, 3), demand({ c: 0.5, d: 0.5 }, 3), demand({ e: 0.5, f: 0.5 }, 3.2)];
  t.equal(planBuild({ demand: even, live: liveMerges, building: [], budgets: small, bytesOf: () => 100 }), undefined, 'net gain 0.1 of 1.6 is under minGain');
  // Ten times the demand: net gain 16.5 − 15 = 1.5 clears minGain, but is under a quarter of the gain (4.1).
  const evenBusy = [demand({ a: 0.5, b: 0.5 }, 30), demand({ c: 0.5, d: 0.5 }, 30), demand({ e: 0.5, f: 0.5 }, 33)];
  t.equal(planBuild({ demand: evenBusy, live: liveMerges, building: [], budgets: small, bytesOf: () => 100 }), undefined, 'the hysteresis keeps a near-equal from churning');
  t.ok(planBuild({ demand: evenBusy, live: liveMerges, building: [], budgets: { ...small, hysteresis: 0 }, bytesOf: () => 100 }), 'without it the swap would be made');
  // Bytes: room for one 100-byte merge only.
  const bytePlan = planBuild({ demand: entries, live: liveMerges, building: [], budgets: { ...budgets, maxBytes: 250 }, bytesOf: () => 100 });
  t.same(bytePlan!.evict, [liveMerges[1].key], 'the byte budget evicts as the count budget does');
  t.equal(planBuild({ demand: entries, live: [], building: [], budgets: { ...budgets, maxBytes: 50 }, bytesOf: () => 100 }), undefined, 'a merge larger than the folder budget is never built');
  t.equal(planBuild({ demand: entries, live: [], building: [merge({ x: 0.5, y: 0.5 })], budgets: { ...budgets, maxLive: 1 }, bytesOf: () => 100 }), undefined, 'builds count against the live budget');
});

t.test('the grid, the rank budget and the demand tracker', async (t) => {
  const { mixture, dropped } = onGrid(mix({ a: 0.52, b: 0.31, c: 0.14, d: 0.03 }), 0.05, 0.05);
  t.same(dropped, ['d']);
  // kept a,b,c renormalised by .97: .536, .320, .144 → .55, .30, .15 (sum 1)
  t.same(mixture, [{ id: 'a', weight: 0.55 }, { id: 'b', weight: 0.3 }, { id: 'c', weight: 0.15 }]);
  const ranks: Record<string, number> = { a: 16, b: 16, c: 8 };
  t.same(withinRank(mixture, (id) => ranks[id], 32, 0.05), [{ id: 'a', weight: 0.65 }, { id: 'b', weight: 0.35 }], 'c leaves; .55/.85 = .647 → .65');
  t.same(withinRank(mixture, (id) => ranks[id], 40, 0.05), mixture, 'fits as it is');

  const tracker = new DemandTracker({ capacity: 2, halfLifeMs: 1000 });
  tracker.add('x', mix({ a: 0.5, b: 0.5 }), 0);
  tracker.add('x', mix({ a: 0.5, b: 0.5 }), 1000);
  t.equal(tracker.snapshot(1000)[0].weight, 1.5, 'halved after a half-life, plus the new request');
  t.equal(tracker.snapshot(2000)[0].weight, 0.75);
  for (const key of ['y', 'z', 'w', 'v']) tracker.add(key, mix({ c: 0.5, d: 0.5 }), 2000);
  t.ok(tracker.size <= 4, 'bounded at twice the capacity');
  t.equal(tracker.snapshot(2000).length, 2);
});

t.test('warm start: each example\'s mixture on the grid, equal ones counted together, abstentions and single adapters left out', async (t) => {
  const decisions = [
    mix({ a: 0.61, b: 0.39 }),
    mix({ a: 0.59, b: 0.38, c: 0.03 }), // c under the minimum weight: the same a .6, b .4
    mix({ a: 0.8, b: 0.2 }),
    [],
    mix({ c: 1 }),
    mix({ c: 0.97, d: 0.03 }), // d dropped: c alone, no merge
  ];
  t.same(expectedMixtures(decisions, { step: 0.05, minWeight: 0.05 }), [
    { mixture: [{ id: 'a', weight: 0.6 }, { id: 'b', weight: 0.4 }], examples: 2 },
    { mixture: [{ id: 'a', weight: 0.8 }, { id: 'b', weight: 0.2 }], examples: 1 },
  ]);
});
