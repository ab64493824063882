import type { EmbeddingCache, EmbeddingSource } from '../cache/embedding-cache.js';
import type { Encoder } from '../encoders/encoder.js';
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
  embeddingSource: EmbeddingSource;
  timings: { embedMs: number; searchMs: number };
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

  private constructor(
    readonly registry: TaskRegistry,
    readonly encoder: Encoder,
    private readonly index: TaskIndex,
    private readonly cache: EmbeddingCache,
    readonly defaults: { topK: number; temperature: number },
  ) {
    this.tasksById = new Map(registry.tasks.map((task) => [task.id, task]));
  }

  static async build(
    registry: TaskRegistry,
    encoder: Encoder,
    cache: EmbeddingCache,
    defaults: { topK: number; temperature: number },
  ): Promise<Router> {
    const embeddings: Float32Array[] = [];
    for (const task of registry.tasks) embeddings.push(meanOfNormalized(await encoder.encode(task.examples)));
    const index = new TaskIndex(
      registry.tasks.map((task) => task.id),
      embeddings,
    );
    return new Router(registry, encoder, index, cache, defaults);
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
    const started = performance.now();
    const { vectors, sources } = await this.cache.embed(this.encoder, texts);
    const embedMs = (performance.now() - started) / texts.length;
    return vectors.map((vector, i) => {
      const searchStarted = performance.now();
      const candidates = this.index.search(vector, topK + excluded.tasks.size);
      const kept = candidates.filter((task) => !excluded.tasks.has(task.id)).slice(0, topK);
      const tasks = weighTasks(kept, temperature);
      const adapters = renormalize(
        tasksToAdapters(tasks, (taskId) => bestAdapterOf(this.tasksById.get(taskId)!, excluded.adapters)),
      );
      return {
        tasks,
        adapters,
        embeddingSource: sources[i],
        timings: { embedMs, searchMs: performance.now() - searchStarted },
      };
    });
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
