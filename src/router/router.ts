import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { CachingEncoder, EmbeddingSource } from '../cache/caching-encoder.js';
import { textDigest } from '../cache/keys.js';
import { bestAdapterOf, candidateAdapters, type TaskDefinition, type TaskRegistry } from '../registry/types.js';
import { calibrateTasks, confidenceOf, evidenceOf, type TaskCalibration } from './calibration.js';
import { heldOutSimilarities, type EncoderForTasks } from './held-out.js';
import { dotAt, meanOfNormalized, tasksToAdapters, unitRowMatrix, vectorNorm, weighTasks, type WeightedAdapter, type WeightedTask } from './math.js';
import { RowDots } from './simd/row-dots.js';
import { TaskIndex, type TaskIndexOptions } from './task-index.js';

export interface RouteOptions {
  topK?: number;
  temperature?: number;
  /** The paper's out-of-domain protocol: route as if these tasks and their own adapters did not exist. */
  excludeTasks?: readonly string[];
}

/** Why a decision went to the base model: an unsure one, a prompt like a base example, or every candidate excluded by the request. */
export type AbstainReason = 'low_confidence' | 'base_example' | 'all_excluded';

export interface RouteDecision {
  tasks: WeightedTask[];
  /** Empty when the decision abstained: the request belongs to the base model. */
  adapters: WeightedAdapter[];
  /** Calibrated confidence in the top task, in [0, 1] (see calibration.ts). */
  confidence: number;
  abstained: boolean;
  abstainReason?: AbstainReason;
  /** Where the prompt's embedding came from; 'decision' when the whole decision was cached. */
  embeddingSource: EmbeddingSource | 'decision';
  timings: { embedMs: number; searchMs: number };
}

export interface RouterDefaults {
  topK: number;
  temperature: number;
  /** Entries in the LRU of whole decisions for repeated prompts (0: none). */
  decisionCacheSize?: number;
  /** Below this confidence the decision abstains (0: never on confidence). */
  minConfidence?: number;
  /** A base example must be this much closer (cosine) than the nearest example of the chosen tasks to win. */
  baseMargin?: number;
  /** Longer prompts are routed on their beginning and end, this many characters in all. */
  maxRoutedChars?: number;
  /** Task index tuning (HNSW parameters, exact-scan threshold). */
  index?: TaskIndexOptions;
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
/** What the router derives from one task's examples; reused by the next router when neither changed. */
interface TaskState {
  /** Hash of the examples it was derived from. */
  examplesKey: string;
  centroid: Float32Array;
  /** Held-out evidence the calibration is fitted on. */
  samples: number[];
  /** Unit example vectors, when the router keeps them (to compare with base examples). */
  exampleUnits?: UnitRows;
}

export class Router {
  private readonly tasksById: Map<string, TaskDefinition>;
  // The index never changes while a Router lives, so a decision depends only on (text, options).
  private readonly decisions: LRUCache<string, RouteDecision> | undefined;
  private readonly exampleVectors: Map<string, UnitRows>;

  private constructor(
    readonly registry: TaskRegistry,
    readonly encoder: CachingEncoder,
    private readonly index: TaskIndex,
    private readonly calibrations: Map<string, TaskCalibration>,
    private readonly states: Map<string, TaskState>,
    private readonly base: { key: string; vectors: BaseRows },
    readonly defaults: RouterDefaults,
  ) {
    this.tasksById = new Map(registry.tasks.map((task) => [task.id, task]));
    this.decisions = defaults.decisionCacheSize ? new LRUCache({ max: defaults.decisionCacheSize }) : undefined;
    this.exampleVectors = new Map([...states].flatMap(([id, state]) => (state.exampleUnits ? [[id, state.exampleUnits]] : [])));
  }

  /**
   * `encoderFor` gives the encoder for a subset of the tasks, for calibration on held-out examples.
   * With `previous` built on the same encoder (a neural one, which does not depend on the registry),
   * tasks whose examples did not change keep what was derived from them: a change encodes and
   * calibrates only the tasks it touched.
   */
  static async build(registry: TaskRegistry, encoder: CachingEncoder, defaults: RouterDefaults, encoderFor: EncoderForTasks = () => encoder, previous?: Router): Promise<Router> {
    const baseExamples = registry.baseExamples ?? [];
    const totalExamples = registry.tasks.reduce((sum, task) => sum + task.examples.length, 0);
    const keepExamples = baseExamples.length > 0 && totalExamples * encoder.dimensions <= MAX_KEPT_EXAMPLE_NUMBERS;
    const reusable = previous && previous.encoder === encoder && previous.exampleVectors.size > 0 === keepExamples ? previous : undefined;
    const keyOf = new Map(registry.tasks.map((task) => [task.id, examplesKey(task.examples)]));
    const changed = registry.tasks.filter((task) => reusable?.states.get(task.id)?.examplesKey !== keyOf.get(task.id));
    const baseKey = examplesKey(baseExamples);
    const baseChanged = reusable?.base.key !== baseKey;

    const vectors = await encoder.encode([...changed.flatMap((task) => task.examples), ...(baseChanged ? baseExamples : [])], 'example');
    const samples = await heldOutSimilarities(changed, encoderFor, encoder);
    const states = new Map<string, TaskState>();
    let next = 0;
    changed.forEach((task, i) => {
      const own = vectors.slice(next, (next += task.examples.length));
      states.set(task.id, { examplesKey: keyOf.get(task.id)!, centroid: meanOfNormalized(own), samples: samples[i], exampleUnits: keepExamples ? unitRows(own) : undefined });
    });
    for (const task of registry.tasks) if (!states.has(task.id)) states.set(task.id, reusable!.states.get(task.id)!);
    const ordered = registry.tasks.map((task) => states.get(task.id)!);
    const index = await TaskIndex.next(
      reusable?.index,
      registry.tasks.map((task) => task.id),
      ordered.map((state) => state.centroid),
      new Set(changed.map((task) => task.id)),
      defaults.index,
    );
    const calibrations = calibrateTasks(ordered.map((state) => state.samples));
    const base = baseChanged ? { key: baseKey, vectors: baseRows(vectors.slice(next)) } : reusable!.base;
    return new Router(registry, encoder, index, new Map(registry.tasks.map((task, i) => [task.id, calibrations[i]])), states, base, defaults);
  }

  /** How many tasks the last build derived afresh (the rest were reused from the router before). */
  static changedTasks(router: Router, previous: Router | undefined): number {
    if (!previous) return router.states.size;
    let count = 0;
    for (const [id, state] of router.states) if (previous.states.get(id) !== state) count++;
    return count;
  }

  /** The calibration of a task: the typical similarity of its prompts and their spread. */
  calibration(taskId: string): TaskCalibration | undefined {
    return this.calibrations.get(taskId);
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

  async routeMany(prompts: readonly string[], options: RouteOptions = {}): Promise<RouteDecision[]> {
    return this.decide(prompts, options);
  }

  /**
   * The decisions as they are when every prompt's is in the decision cache (no encoding and no promise: the
   * repeated-prompt path), else a promise of them with the missing ones routed. An unknown task in the exclusions
   * throws here, before any promise.
   */
  decide(prompts: readonly string[], options: RouteOptions = {}): RouteDecision[] | Promise<RouteDecision[]> {
    const lookUp = this.lookUp(prompts, options);
    return lookUp.decisions.every((decision) => decision !== undefined) ? lookUp.decisions.map((decision) => cachedCopy(decision!)) : this.routeMissing(lookUp);
  }

  private async routeMissing({ texts, topK, temperature, excluded, keys, decisions }: LookUp): Promise<RouteDecision[]> {
    const missing = texts.map((_, i) => i).filter((i) => !decisions[i]);
    const started = performance.now();
    const { vectors, sources } = await this.encoder.embed(missing.map((i) => texts[i]), 'query');
    const embedMs = (performance.now() - started) / missing.length;
    missing.forEach((position, j) => {
      const searchStarted = performance.now();
      const candidates = this.index.search(vectors[j], topK + excluded.tasks.size);
      const kept = candidates.filter((task) => !excluded.tasks.has(task.id)).slice(0, topK);
      const tasks = weighTasks(kept, temperature);
      const judged = this.judge(tasks, vectors[j]);
      const { confidence } = judged;
      const adapters = judged.abstainReason
        ? []
        : renormalize(tasksToAdapters(tasks, (taskId) => bestAdapterOf(this.tasksById.get(taskId)!, excluded.adapters)));
      const abstainReason = judged.abstainReason ?? (adapters.length === 0 ? 'all_excluded' : undefined);
      const decision: RouteDecision = {
        tasks,
        adapters,
        confidence,
        abstained: abstainReason !== undefined,
        ...(abstainReason ? { abstainReason } : {}),
        embeddingSource: sources[j],
        timings: { embedMs, searchMs: performance.now() - searchStarted },
      };
      this.decisions?.set(keys[position], decision);
      decisions[position] = decision;
    });
    const computed = new Set(missing);
    return decisions.map((decision, i) => (computed.has(i) ? decision! : cachedCopy(decision!)));
  }

  /** The prompts as routed (bounded), the options in force, and each prompt's cached decision where there is one. */
  private lookUp(prompts: readonly string[], options: RouteOptions): LookUp {
    const maxChars = this.defaults.maxRoutedChars;
    const texts = maxChars ? prompts.map((prompt) => boundedText(prompt, maxChars)) : prompts;
    const topK = options.topK ?? this.defaults.topK;
    const temperature = options.temperature ?? this.defaults.temperature;
    const excluded = this.exclusions(options.excludeTasks ?? []);
    const optionsKey = `${topK}\u0000${temperature}\u0000${[...excluded.tasks].sort().join('\u0000')}`;
    const keys = this.decisions ? texts.map((text) => decisionKey(optionsKey, text)) : [];
    const decisions: (RouteDecision | undefined)[] = this.decisions ? keys.map((key) => this.decisions!.get(key)) : texts.map(() => undefined);
    return { texts, topK, temperature, excluded, keys, decisions };
  }

  /** Confidence in the top task, and whether the prompt belongs to the base model instead. */
  private judge(tasks: readonly WeightedTask[], query: Float32Array): { confidence: number; abstainReason?: AbstainReason } {
    const top = tasks[0];
    if (!top) return { confidence: 0 };
    const confidence = confidenceOf(evidenceOf(top.similarity, query), this.calibrations.get(top.id)!);
    const norm = vectorNorm(query);
    const baseSimilarity = nearestBase(this.base.vectors, query, norm);
    const margin = this.defaults.baseMargin ?? 0;
    // The bound settles most prompts without comparing with every example of the chosen tasks.
    if (baseSimilarity !== undefined && baseSimilarity >= this.taskSimilarityBound(tasks) + margin && baseSimilarity >= this.taskSimilarityForBase(tasks, query, norm) + margin) {
      return { confidence, abstainReason: 'base_example' };
    }
    if (confidence < (this.defaults.minConfidence ?? 0)) return { confidence, abstainReason: 'low_confidence' };
    return { confidence };
  }

  /**
   * What the nearest base example is compared with: like with like, the nearest example of the
   * chosen tasks when examples are kept, else the top task's centroid similarity.
   */
  private taskSimilarityForBase(tasks: readonly WeightedTask[], query: Float32Array, norm: number): number {
    let best = -1;
    for (const task of tasks) {
      const examples = this.exampleVectors.get(task.id);
      if (!examples) return tasks[0].similarity;
      best = Math.max(best, nearest(examples, query, norm) ?? -1);
    }
    return best;
  }

  /**
   * A lower bound of taskSimilarityForBase from the similarities already known: the mean of a
   * prompt's cosines with a task's unit examples is its cosine with their centroid times the norm
   * of their mean, and the nearest example is at least the mean (less a rounding allowance).
   */
  private taskSimilarityBound(tasks: readonly WeightedTask[]): number {
    let bound = -1;
    for (const task of tasks) {
      const examples = this.exampleVectors.get(task.id);
      if (!examples) return tasks[0].similarity;
      bound = Math.max(bound, task.similarity * examples.meanNorm);
    }
    return bound - 1e-4;
  }

  private exclusions(taskIds: readonly string[]): Exclusions {
    if (taskIds.length === 0) return NO_EXCLUSIONS;
    const unknown = taskIds.filter((id) => !this.tasksById.has(id));
    if (unknown.length > 0) throw new UnknownTaskError(unknown);
    const adapters = new Set<string>();
    for (const id of taskIds) {
      const task = this.tasksById.get(id)!;
      // A task's own adapter: its id, or the one adapter it is mapped to.
      adapters.add(id);
      const candidates = candidateAdapters(task);
      if (candidates.length === 1) adapters.add(candidates[0]);
    }
    return { tasks: new Set(taskIds), adapters };
  }
}

interface LookUp {
  texts: readonly string[];
  topK: number;
  temperature: number;
  excluded: Exclusions;
  keys: string[];
  decisions: (RouteDecision | undefined)[];
}

interface Exclusions {
  tasks: ReadonlySet<string>;
  adapters: ReadonlySet<string>;
}

// The usual request excludes nothing: no sets built for it.
const NO_EXCLUSIONS: Exclusions = { tasks: new Set(), adapters: new Set() };

// Example vectors kept for comparing with base examples, at most this many numbers (16 MB).
const MAX_KEPT_EXAMPLE_NUMBERS = 1 << 22;

/** Unit vectors in one row-major array: compared with a query in one tight loop. */
interface UnitRows {
  rows: Float32Array;
  count: number;
  dimensions: number;
  /** Norm of the mean of the rows. */
  meanNorm: number;
}

/** The base examples: compared with every prompt, so with the SIMD kernel. */
interface BaseRows {
  count: number;
  dots: RowDots;
}

function baseRows(vectors: readonly Float32Array[]): BaseRows {
  const dimensions = vectors[0]?.length ?? 0;
  return { count: vectors.length, dots: new RowDots(unitRowMatrix(vectors, dimensions), vectors.length, dimensions) };
}

/** Highest cosine between the query (of norm `norm`) and the base examples; undefined when there are none. */
function nearestBase({ count, dots }: BaseRows, query: Float32Array, norm: number): number | undefined {
  if (count === 0) return undefined;
  if (norm === 0) return 0;
  const similarities = dots.with(query);
  let best = -Infinity;
  for (let row = 0; row < count; row++) best = Math.max(best, similarities[row]);
  return best / norm;
}

function unitRows(vectors: readonly Float32Array[]): UnitRows {
  const dimensions = vectors[0]?.length ?? 0;
  const rows = unitRowMatrix(vectors, dimensions);
  const sum = new Float64Array(dimensions);
  for (let at = 0; at < rows.length; at++) sum[at % dimensions] += rows[at];
  const meanNorm = vectors.length > 0 ? Math.sqrt(sum.reduce((total, value) => total + value * value, 0)) / vectors.length : 0;
  return { rows, count: vectors.length, dimensions, meanNorm };
}

/** Highest cosine between the query (of norm `norm`) and the unit rows; undefined when there are none. */
function nearest({ rows, count, dimensions }: UnitRows, query: Float32Array, norm: number): number | undefined {
  if (count === 0) return undefined;
  if (norm === 0) return 0;
  let best = -Infinity;
  for (let row = 0; row < count; row++) best = Math.max(best, dotAt(rows, row * dimensions, query, dimensions));
  return best / norm;
}

/**
 * A prompt cut to `max` characters: its first and last halves, where instructions and questions
 * usually are, so that a 1 MB prompt costs no more to route than a long one.
 */
export function boundedText(text: string, max: number): string {
  if (text.length <= max) return text;
  const half = Math.floor(max / 2);
  return `${text.slice(0, half)}\n${text.slice(text.length - (max - half))}`;
}

/** Weights sum to 1 again after tasks whose adapters were all excluded dropped out. */
function renormalize(adapters: WeightedAdapter[]): WeightedAdapter[] {
  const total = adapters.reduce((sum, adapter) => sum + adapter.weight, 0);
  if (total === 0 || Math.abs(total - 1) < 1e-12) return adapters;
  return adapters.map((adapter) => ({ ...adapter, weight: adapter.weight / total }));
}

/** Short texts key the decision cache as they are (a hash costs more than the lookup); long ones by their digest. */
const DIRECT_KEY_MAX_CHARS = 1024;

function decisionKey(optionsKey: string, text: string): string {
  return text.length <= DIRECT_KEY_MAX_CHARS ? `${optionsKey}\u0001t${text}` : `${optionsKey}\u0001h${textDigest(text)}`;
}

function cachedCopy(decision: RouteDecision): RouteDecision {
  return { ...decision, embeddingSource: 'decision', timings: { embedMs: 0, searchMs: 0 } };
}

function examplesKey(examples: readonly string[]): string {
  const hash = createHash('sha256');
  for (const example of examples) hash.update(example).update('\u0000');
  return hash.digest('base64');
}
