import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { CachingEncoder, EmbeddingSource } from '../cache/caching-encoder.js';
import { bestAdapterOf, type TaskDefinition, type TaskRegistry } from '../registry/types.js';
import { meanOfNormalized, tasksToAdapters, weighTasks, type WeightedAdapter, type WeightedTask } from './math.js';
import { TaskIndex } from './task-index.js';

export interface RouteOptions {
  topK?: number;
  temperature?: number;
  /** The paper's out-of-domain protocol: route as if these tasks and their own adapters did not exist. */
  excludeTasks?: readonly string[];
}

export interface RouteDecision {
  tasks: WeightedTask[];
  adapters: WeightedAdapter[];
  /** Where the prompt's embedding came from; 'decision' when the whole decision was cached. */
  embeddingSource: EmbeddingSource | 'decision';
  timings: { embedMs: number; searchMs: number };
}

export interface RouterDefaults {
  topK: number;
  temperature: number;
  /** Entries in the LRU of whole decisions for repeated prompts (0: none). */
  decisionCacheSize?: number;
}

export class UnknownTaskError extends Error {
  override name = 'UnknownTaskError';
  constructor(readonly taskIds: string[]) {
    super(`unknown task${taskIds.length > 1 ? 's' : ''}: ${taskIds.join(', ')}`);
  }
}

/**
 * LoRAuter: embed the prompt, take the top-K tasks by cosine similarity, weight them with
 * softmax(sim/τ), replace each task by its best adapter and sum the weights of duplicates.
 */
export class Router {
  private readonly tasksById: Map<string, TaskDefinition>;
  // The index never changes while a Router lives, so a decision depends only on (text, options).
  private readonly decisions: LRUCache<string, RouteDecision> | undefined;

  private constructor(
    readonly registry: TaskRegistry,
    readonly encoder: CachingEncoder,
    private readonly index: TaskIndex,
    readonly defaults: RouterDefaults,
  ) {
    this.tasksById = new Map(registry.tasks.map((task) => [task.id, task]));
    this.decisions = defaults.decisionCacheSize ? new LRUCache({ max: defaults.decisionCacheSize }) : undefined;
  }

  static async build(registry: TaskRegistry, encoder: CachingEncoder, defaults: RouterDefaults): Promise<Router> {
    const examples = await encoder.encode(registry.tasks.flatMap((task) => task.examples), 'example');
    let next = 0;
    const embeddings = registry.tasks.map((task) => meanOfNormalized(examples.slice(next, (next += task.examples.length))));
    const index = new TaskIndex(
      registry.tasks.map((task) => task.id),
      embeddings,
    );
    return new Router(registry, encoder, index, defaults);
  }

  task(id: string): TaskDefinition | undefined {
    return this.tasksById.get(id);
  }

  get taskCount(): number {
    return this.index.size;
  }

  async route(text: string, options: RouteOptions = {}): Promise<RouteDecision> {
    return (await this.routeMany([text], options))[0];
  }

  async routeMany(texts: readonly string[], options: RouteOptions = {}): Promise<RouteDecision[]> {
    const topK = options.topK ?? this.defaults.topK;
    const temperature = options.temperature ?? this.defaults.temperature;
    const excluded = this.exclusions(options.excludeTasks ?? []);
    const optionsKey = `${topK}\u0000${temperature}\u0000${[...excluded.tasks].sort().join('\u0000')}`;
    const keys = this.decisions ? texts.map((text) => decisionKey(optionsKey, text)) : [];
    const decisions: (RouteDecision | undefined)[] = keys.map((key) => this.decisions!.get(key));
    const missing = texts.map((_, i) => i).filter((i) => !decisions[i]);
    if (missing.length === 0) return decisions.map((decision) => cachedCopy(decision!));

    const started = performance.now();
    const { vectors, sources } = await this.encoder.embed(missing.map((i) => texts[i]));
    const embedMs = (performance.now() - started) / missing.length;
    missing.forEach((position, j) => {
      const searchStarted = performance.now();
      const candidates = this.index.search(vectors[j], topK + excluded.tasks.size);
      const kept = candidates.filter((task) => !excluded.tasks.has(task.id)).slice(0, topK);
      const tasks = weighTasks(kept, temperature);
      const adapters = renormalize(
        tasksToAdapters(tasks, (taskId) => bestAdapterOf(this.tasksById.get(taskId)!, excluded.adapters)),
      );
      const decision: RouteDecision = {
        tasks,
        adapters,
        embeddingSource: sources[j],
        timings: { embedMs, searchMs: performance.now() - searchStarted },
      };
      this.decisions?.set(keys[position], decision);
      decisions[position] = decision;
    });
    const computed = new Set(missing);
    return decisions.map((decision, i) => (computed.has(i) ? decision! : cachedCopy(decision!)));
  }

  private exclusions(taskIds: readonly string[]): { tasks: Set<string>; adapters: Set<string> } {
    const unknown = taskIds.filter((id) => !this.tasksById.has(id));
    if (unknown.length > 0) throw new UnknownTaskError(unknown);
    const adapters = new Set<string>();
    for (const id of taskIds) {
      const task = this.tasksById.get(id)!;
      adapters.add(id);
      const scored = Object.keys(task.adapterScores);
      if (scored.length === 1) adapters.add(scored[0]);
    }
    return { tasks: new Set(taskIds), adapters };
  }
}

/** Weights sum to 1 again after tasks whose adapters were all excluded dropped out. */
function renormalize(adapters: WeightedAdapter[]): WeightedAdapter[] {
  const total = adapters.reduce((sum, adapter) => sum + adapter.weight, 0);
  if (total === 0 || Math.abs(total - 1) < 1e-12) return adapters;
  return adapters.map((adapter) => ({ ...adapter, weight: adapter.weight / total }));
}

function cachedCopy(decision: RouteDecision): RouteDecision {
  return { ...decision, embeddingSource: 'decision', timings: { embedMs: 0, searchMs: 0 } };
}

function decisionKey(optionsKey: string, text: string): string {
  return createHash('sha256').update(optionsKey).update('\u0001').update(text).digest('base64');
}
