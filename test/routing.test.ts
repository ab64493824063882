import t from 'tap';
import { CachingEncoder } from '../src/cache/caching-encoder.js';
import { formatMixture } from '../src/composition/mixture.js';
import { BuiltinEncoder } from '../src/encoders/builtin/builtin-encoder.js';
import { routeMessages, type ChatRouting } from '../src/http/routing.js';
import type { ChatMessage } from '../src/http/schemas.js';
import { GatewayMetrics } from '../src/observability/metrics.js';
import { loadRegistry } from '../src/registry/load.js';
import { Router } from '../src/router/router.js';
import { FLAN_TASKS } from './helpers/gateway.js';

const flan = loadRegistry(FLAN_TASKS);
const registry = { ...flan, tasks: flan.tasks.map((task) => ({ ...task, examples: task.examples.slice(0, 15) })) };
const examplesOf = (id: string) => flan.tasks.find((task) => task.id === id)!.examples;

async function cachedRouter() {
  return Router.build(registry, new CachingEncoder(BuiltinEncoder.fit(registry.tasks), { maxEntries: 100, metrics: new GatewayMetrics() }), { topK: 3, temperature: 0.2, decisionCacheSize: 100 });
}

const lastUser = { conversation: 'last_user' as const, rerouteConfidence: 0.5 };
const sticky = { ...lastUser, conversation: 'sticky' as const };

t.test('a chat whose decision is cached is routed without a promise, to the same decision', async (t) => {
  const router = await cachedRouter();
  const messages: ChatMessage[] = [{ role: 'user', content: examplesOf('sst2')[16] }];
  const first = routeMessages(router, messages, 'last_user', lastUser, {}, 'exclude_tasks');
  t.ok(first instanceof Promise, 'not routed before: a promise');
  const routed = await first;
  const again = routeMessages(router, messages, 'last_user', lastUser, {}, 'exclude_tasks');
  t.notOk(again instanceof Promise, 'routed before: the routing itself');
  const cached = again as ChatRouting;
  t.equal(cached.decision.embeddingSource, 'decision');
  t.same(cached.decision.adapters, routed.decision.adapters);
  t.equal(cached.conversation, undefined, 'not a sticky conversation');
});

t.test('sticky conversations decide alike from the cache and from the encoder: kept, or rerouted on a confident change of task', async (t) => {
  const router = await cachedRouter();
  const [review, otherReview] = examplesOf('sst2').slice(16, 18);
  const translation = examplesOf('wmt16_translate_deen')[16];
  const conversation = (...turns: string[]): ChatMessage[] => turns.flatMap((content) => [{ role: 'user' as const, content }, { role: 'assistant' as const, content: 'ok' }]);
  for (const [turns, expected] of [
    [[review, otherReview], { conversation: 'sticky', task: 'sst2' }],
    [[review, translation], { conversation: 'rerouted', task: 'wmt16_translate_deen' }],
  ] as const) {
    const messages = conversation(...turns);
    const routed = await routeMessages(router, messages, 'last_user', sticky, {}, 'exclude_tasks');
    t.match({ conversation: routed.conversation, task: routed.decision.tasks[0].id }, expected, 'routed');
    const cached = routeMessages(router, messages, 'last_user', sticky, {}, 'exclude_tasks');
    t.notOk(cached instanceof Promise, 'both turns cached: no promise');
    t.match({ conversation: (cached as ChatRouting).conversation, task: (cached as ChatRouting).decision.tasks[0].id }, expected, 'the same from the cache');
  }
});

t.test('a mixture is formatted once and each mixture keeps its own text', async (t) => {
  const a = [{ id: 'sst2', weight: 0.712345 }, { id: 'imdb_reviews', weight: 0.287655 }];
  const b = [{ id: 'sst2', weight: 1 }];
  t.equal(formatMixture(a), 'sst2=0.7123,imdb_reviews=0.2877');
  t.equal(formatMixture(b), 'sst2=1');
  t.equal(formatMixture(a), 'sst2=0.7123,imdb_reviews=0.2877', 'the first mixture again');
  t.equal(formatMixture([...a]), 'sst2=0.7123,imdb_reviews=0.2877', 'an equal mixture in another array');
  t.equal(formatMixture([]), '');
});
