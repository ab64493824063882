import t from 'tap';
import { CachingEncoder } from '../src/cache/caching-encoder.js';
import { BuiltinEncoder } from '../src/encoders/builtin/builtin-encoder.js';
import { GatewayMetrics } from '../src/observability/metrics.js';
import { loadRegistry } from '../src/registry/load.js';
import type { TaskRegistry } from '../src/registry/types.js';
import { Router, UnknownTaskError, type RouteDecision } from '../src/router/router.js';
import { FLAN_TASKS } from './helpers/gateway.js';

const flan = loadRegistry(FLAN_TASKS);
const split = (registry: TaskRegistry, from: number, to: number): TaskRegistry => ({
  ...registry,
  tasks: registry.tasks.map((task) => ({ ...task, examples: task.examples.slice(from, to) })),
});

async function routerFor(registry: TaskRegistry) {
  return Router.build(registry, new CachingEncoder(BuiltinEncoder.fit(registry.tasks), { maxEntries: 100, metrics: new GatewayMetrics() }), { topK: 3, temperature: 0.2 });
}

t.test('routes held-out FLAN prompts to their own task', async (t) => {
  const router = await routerFor(split(flan, 0, 15));
  let top1 = 0;
  let top3 = 0;
  let total = 0;
  for (const task of flan.tasks) {
    for (const decision of await router.routeMany(task.examples.slice(15))) {
      total++;
      if (decision.tasks[0].id === task.id) top1++;
      if (decision.tasks.some((d) => d.id === task.id)) top3++;
    }
  }
  t.ok(top1 / total > 0.75, `top-1 ${top1 / total}`);
  t.ok(top3 / total > 0.9, `top-3 ${top3 / total}`);
});

t.test('decision follows LoRAuter exactly', async (t) => {
  const router = await routerFor(split(flan, 0, 15));
  const decision = await router.route(flan.tasks.find((x) => x.id === 'sst2')!.examples[18], { topK: 4, temperature: 0.3 });
  t.equal(decision.tasks.length, 4);
  const sims = decision.tasks.map((x) => x.similarity);
  t.same(sims, [...sims].sort((a, b) => b - a), 'sorted by similarity');
  const exps = sims.map((s) => Math.exp((s - sims[0]) / 0.3));
  const sum = exps.reduce((a, b) => a + b);
  decision.tasks.forEach((x, i) => t.ok(Math.abs(x.weight - exps[i] / sum) < 1e-9, `softmax weight ${i}`));
  t.same(decision.adapters.map((a) => a.id).sort(), decision.tasks.map((x) => x.id).sort(), 'own adapters');
  t.ok(Math.abs(decision.adapters.reduce((s, a) => s + a.weight, 0) - 1) < 1e-9);
});

t.test('similarities equal the exact cosine to the task centroid', async (t) => {
  const registry = split(flan, 0, 10);
  const encoder = BuiltinEncoder.fit(registry.tasks);
  const router = await Router.build(registry, new CachingEncoder(encoder, { maxEntries: 0 }), { topK: 66, temperature: 0.2 });
  const prompt = flan.tasks[5].examples[12];
  const decision = await router.route(prompt, { topK: 66 });
  const [query] = await encoder.encode([prompt]);
  const { meanOfNormalized, cosine } = await import('../src/router/math.js');
  for (const task of decision.tasks.slice(0, 5)) {
    const centroid = meanOfNormalized(await encoder.encode(registry.tasks.find((x) => x.id === task.id)!.examples));
    t.ok(Math.abs(cosine(query, centroid) - task.similarity) < 1e-4, `${task.id}`);
  }
});

t.test('calibration: tasks map to their best adapter and duplicates add up', async (t) => {
  const registry = split(flan, 0, 15);
  const calibrated: TaskRegistry = {
    ...registry,
    tasks: registry.tasks.map((task) =>
      task.domain === 'sentiment' ? { ...task, adapterScores: { [task.id]: 0.7, sentiment_pool: 0.9 } } : task,
    ),
  };
  const router = await routerFor(calibrated);
  const decision = await router.route('Is the sentiment of this review positive or negative? The acting was superb and moving. OPTIONS: - negative - positive', { topK: 3 });
  const sentimentTasks = decision.tasks.filter((x) => calibrated.tasks.find((c) => c.id === x.id)!.domain === 'sentiment');
  t.ok(sentimentTasks.length >= 2, 'several sentiment tasks in the top 3');
  const pooled = decision.adapters.find((a) => a.id === 'sentiment_pool')!;
  t.ok(Math.abs(pooled.weight - sentimentTasks.reduce((s, x) => s + x.weight, 0)) < 1e-9, 'weights of one adapter summed');
  t.equal(decision.adapters.length, decision.tasks.length - sentimentTasks.length + 1);
});

t.test('exclude_tasks: route as if the task and its own adapter were absent', async (t) => {
  const registry = split(flan, 0, 15);
  const router = await routerFor(registry);
  const prompt = flan.tasks.find((x) => x.id === 'sst2')!.examples[19];
  const normal = await router.route(prompt);
  t.equal(normal.tasks[0].id, 'sst2');
  const ood = await router.route(prompt, { excludeTasks: ['sst2'] });
  t.equal(ood.tasks.length, 3, 'still K tasks');
  t.notOk(ood.tasks.some((x) => x.id === 'sst2'));
  t.notOk(ood.adapters.some((a) => a.id === 'sst2'));
  t.equal(ood.tasks[0].id, normal.tasks[1].id, 'next best moves up');
  await t.rejects(router.route(prompt, { excludeTasks: ['nope'] }), UnknownTaskError);

  const calibrated: TaskRegistry = {
    ...registry,
    tasks: registry.tasks.map((task) => (task.id === 'imdb_reviews' ? { ...task, adapterScores: { sst2: 0.9, imdb_reviews: 0.8 } } : task)),
  };
  const calibratedRouter = await routerFor(calibrated);
  const excluded = await calibratedRouter.route(prompt, { excludeTasks: ['sst2'] });
  t.notOk(excluded.adapters.some((a) => a.id === 'sst2'), 'an excluded own adapter is not used by other tasks either');
  t.ok(Math.abs(excluded.adapters.reduce((s, a) => s + a.weight, 0) - 1) < 1e-9);
});

t.test('top_k larger than the registry and prompts with no known feature', async (t) => {
  const registry = loadRegistry(undefined);
  const router = await routerFor(registry);
  const all = await router.route('translate this', { topK: 64 });
  t.equal(all.tasks.length, registry.tasks.length);
  const unknown = await router.route('', { topK: 3 });
  t.equal(unknown.tasks.length, 3);
  t.ok(unknown.tasks.every((x) => Math.abs(x.weight - 1 / 3) < 1e-9), 'no signal: uniform weights');
});

t.test('the decision cache: a repeated prompt reuses its decision, short or long, and no other prompt gets it', async (t) => {
  const registry = split(flan, 0, 15);
  const router = await Router.build(registry, new CachingEncoder(BuiltinEncoder.fit(registry.tasks), { maxEntries: 100, metrics: new GatewayMetrics() }), { topK: 3, temperature: 0.2, decisionCacheSize: 100 });
  const short = flan.tasks.find((task) => task.id === 'sst2')!.examples[18];
  // Past the length at which texts are keyed by their digest instead of as they are.
  const long = `${short} ${'and then some more words about the film '.repeat(40)}`;
  t.ok(long.length > 1024);
  for (const text of [short, long]) {
    const first = await router.route(text);
    const again = await router.route(text);
    t.not(first.embeddingSource, 'decision');
    t.equal(again.embeddingSource, 'decision', `repeated (${text.length} chars): the cached decision`);
    t.same(again.tasks, first.tasks);
    t.not((await router.route(text, { topK: 2 })).embeddingSource, 'decision', 'other options: decided again');
  }
  // A short prompt that spells out the long one's digest is a prompt of its own.
  const { textDigest } = await import('../src/cache/keys.js');
  t.not((await router.route(textDigest(long))).embeddingSource, 'decision');
  t.not((await router.route(`h${textDigest(long)}`)).embeddingSource, 'decision');
});

t.test('decisions in the decision cache are served without a promise: all of the prompts or none, per options; the rest routed from the same look-up', async (t) => {
  const registry = split(flan, 0, 15);
  const router = await Router.build(registry, new CachingEncoder(BuiltinEncoder.fit(registry.tasks), { maxEntries: 100, metrics: new GatewayMetrics() }), { topK: 3, temperature: 0.2, decisionCacheSize: 10 });
  const [a, b] = flan.tasks[0].examples.slice(16, 18);
  const first = router.decide([a]);
  t.ok(first instanceof Promise, 'nothing before the prompt was routed: a promise');
  const [routed] = await first;
  const again = router.decide([a]);
  t.ok(Array.isArray(again), 'routed before: the decisions themselves');
  const [cached] = again as RouteDecision[];
  t.same({ ...cached, embeddingSource: routed.embeddingSource, timings: routed.timings }, routed, 'the same decision');
  t.equal(cached.embeddingSource, 'decision');
  t.same(cached.timings, { embedMs: 0, searchMs: 0 });
  const partly = router.decide([a, b]);
  t.ok(partly instanceof Promise, 'one of the prompts not routed yet: a promise');
  const [fromCache, routedNow] = await partly;
  t.equal(fromCache.embeddingSource, 'decision', 'the cached one still comes from the cache');
  t.not(routedNow.embeddingSource, 'decision');
  const otherOptions = router.decide([a], { topK: 2 });
  t.ok(otherOptions instanceof Promise, 'other options: another decision');
  await otherOptions;
  t.throws(() => router.decide([a], { excludeTasks: ['no_such_task'] }), UnknownTaskError, 'an unknown exclusion throws before any promise');
  const uncached = await routerFor(registry);
  await uncached.routeMany([a]);
  const alwaysRouted = uncached.decide([a]);
  t.ok(alwaysRouted instanceof Promise, 'no decision cache: always routed');
  await alwaysRouted;
});
