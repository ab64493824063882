import hnswlib from 'hnswlib-node';
import { unitRowMatrix, vectorNorm, type ScoredTask } from './math.js';
import { RowDots } from './simd/row-dots.js';

const { HierarchicalNSW } = hnswlib;
type Hnsw = InstanceType<typeof HierarchicalNSW>;

export interface TaskIndexOptions {
  m?: number;
  efConstruction?: number;
  efSearch?: number;
  /** Scan exactly up to this many numbers (tasks × dimensions); HNSW beyond. */
  exactScanMaxNumbers?: number;
}

// Below this many numbers (tasks × dimensions) an exact scan in JS beats a call into HNSW
// (about 3 µs against 12 µs at 48 tasks) and is exact; above it HNSW's sublinear search wins.
const EXACT_SCAN_MAX_NUMBERS = 1 << 18;
// Points added to a new HNSW graph between two turns of the event loop, so that building a large
// one in the background does not hold requests up.
const BUILD_CHUNK = 256;

/** One HNSW graph, shared by the successive indexes that update it in place. */
interface SharedGraph {
  hnsw: Hnsw;
  capacity: number;
  /** Points marked deleted and still in the graph. */
  deleted: number;
  /** Bumped by each update: an index of an older generation filters out labels it does not know. */
  generation: number;
}

/**
 * Cosine index over task embeddings. HNSW (hnswlib) for large registries; small ones are scanned
 * exactly, which is both faster and free of approximation. After a registry change the HNSW graph
 * takes the added and replaced tasks in place (the old points marked deleted), and is rebuilt in
 * the background once deleted points pile up.
 */
export class TaskIndex {
  /** Unit task vectors, when scanned exactly. */
  private readonly matrix: RowDots | undefined;
  private readonly graph: SharedGraph | undefined;
  /** HNSW label → task id ('' for a deleted point), as of this index's generation. */
  private readonly labels: string[];
  private readonly generation: number;
  private readonly dimensions: number;
  private readonly efSearch: number;

  constructor(
    readonly taskIds: readonly string[],
    embeddings: readonly Float32Array[],
    options: TaskIndexOptions = {},
    graph?: { shared: SharedGraph; labels: string[] },
  ) {
    if (taskIds.length === 0) throw new Error('cannot index zero tasks');
    const dimensions = embeddings[0]?.length ?? graph!.shared.hnsw.getNumDimensions();
    this.dimensions = dimensions;
    this.efSearch = options.efSearch ?? 64;
    if (graph) {
      this.graph = graph.shared;
      this.labels = graph.labels;
      this.generation = graph.shared.generation;
      return;
    }
    this.labels = [...taskIds];
    this.generation = 0;
    if (!TaskIndex.usesHnsw(taskIds.length, dimensions, options)) {
      this.matrix = new RowDots(unitRowMatrix(embeddings, dimensions), taskIds.length, dimensions);
      return;
    }
    this.graph = TaskIndex.emptyGraph(taskIds.length, dimensions, options);
    embeddings.forEach((embedding, label) => this.graph!.hnsw.addPoint(Array.from(embedding), label));
  }

  /**
   * The index for a changed registry. An HNSW index takes the tasks in `changed` (added or
   * replaced) and drops the tasks no longer listed, in place; the previous index stays usable (it
   * no longer finds those tasks). A new graph is built, a chunk at a time, when there is none to
   * update or deleted points would exceed a quarter of the live ones; exact scans are rebuilt.
   */
  static async next(
    previous: TaskIndex | undefined,
    taskIds: readonly string[],
    embeddings: readonly Float32Array[],
    changed: ReadonlySet<string>,
    options: TaskIndexOptions = {},
  ): Promise<TaskIndex> {
    const dimensions = embeddings[0].length;
    if (!TaskIndex.usesHnsw(taskIds.length, dimensions, options)) return new TaskIndex(taskIds, embeddings, options);
    const graph = previous?.graph;
    if (graph && previous.dimensions === dimensions && previous.generation === graph.generation) {
      const wanted = new Set(taskIds);
      const stale = previous.labels.flatMap((id, label) => (id !== '' && (!wanted.has(id) || changed.has(id)) ? [label] : []));
      const known = new Set(previous.labels);
      const live = taskIds.length;
      if (graph.deleted + stale.length <= Math.max(64, live / 4)) {
        const labels = [...previous.labels];
        for (const label of stale) {
          graph.hnsw.markDelete(label);
          labels[label] = '';
        }
        graph.deleted += stale.length;
        const adds = taskIds.flatMap((id, i) => (changed.has(id) || !known.has(id) ? [i] : []));
        if (labels.length + adds.length > graph.capacity) {
          graph.capacity = Math.ceil((labels.length + adds.length) * 1.5);
          graph.hnsw.resizeIndex(graph.capacity);
        }
        for (const i of adds) {
          graph.hnsw.addPoint(Array.from(embeddings[i]), labels.length);
          labels.push(taskIds[i]);
        }
        graph.generation++;
        return new TaskIndex(taskIds, [], options, { shared: graph, labels });
      }
    }
    const fresh = TaskIndex.emptyGraph(taskIds.length, dimensions, options);
    for (let start = 0; start < taskIds.length; start += BUILD_CHUNK) {
      for (let label = start; label < Math.min(start + BUILD_CHUNK, taskIds.length); label++) fresh.hnsw.addPoint(Array.from(embeddings[label]), label);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return new TaskIndex(taskIds, [], options, { shared: fresh, labels: [...taskIds] });
  }

  private static usesHnsw(tasks: number, dimensions: number, options: TaskIndexOptions): boolean {
    return tasks * dimensions > (options.exactScanMaxNumbers ?? EXACT_SCAN_MAX_NUMBERS);
  }

  private static emptyGraph(tasks: number, dimensions: number, options: TaskIndexOptions): SharedGraph {
    const hnsw = new HierarchicalNSW('cosine', dimensions);
    // Headroom for tasks added at run time before the graph must grow.
    const capacity = Math.ceil(tasks * 1.25) + 16;
    hnsw.initIndex({ maxElements: capacity, m: options.m ?? 16, efConstruction: options.efConstruction ?? 200, randomSeed: 100 });
    return { hnsw, capacity, deleted: 0, generation: 0 };
  }

  get size(): number {
    return this.taskIds.length;
  }

  /** Whether this index updates `other`'s HNSW graph rather than holding its own (for tests and logs). */
  sharesGraphWith(other: TaskIndex): boolean {
    return this.graph !== undefined && this.graph === other.graph;
  }

  /** The k nearest tasks by cosine similarity, highest first. */
  search(query: Float32Array, k: number): ScoredTask[] {
    const count = Math.min(k, this.taskIds.length);
    if (count <= 0) return [];
    if (vectorNorm(query) === 0) {
      // No known feature in the query: every task is equally (dis)similar.
      return this.taskIds.slice(0, count).map((id) => ({ id, similarity: 0 }));
    }
    if (this.matrix) return this.scan(query, count);
    const { hnsw, generation } = this.graph!;
    hnsw.setEf(Math.max(this.efSearch, count));
    // An index the graph has moved on from sees only the points it knows (requests still in flight
    // on the router before a change).
    const labels = this.labels;
    const filter = generation === this.generation ? undefined : (label: number) => label < labels.length && labels[label] !== '';
    const { neighbors, distances } = hnsw.searchKnn(Array.from(query), Math.min(count, hnsw.getCurrentCount() - this.graph!.deleted), filter);
    return neighbors.map((label, i) => ({ id: labels[label], similarity: 1 - distances[i] }));
  }

  private scan(query: Float32Array, count: number): ScoredTask[] {
    const dots = this.matrix!.with(query);
    const scale = 1 / vectorNorm(query);
    const best: ScoredTask[] = [];
    for (let row = 0; row < this.taskIds.length; row++) {
      const similarity = dots[row] * scale;
      if (best.length === count && similarity <= best[count - 1].similarity) continue;
      // Insertion into the short sorted list of the best so far; ties keep the lower label first.
      let at = Math.min(best.length, count - 1);
      best[at] = { id: this.taskIds[row], similarity };
      while (at > 0 && best[at - 1].similarity < similarity) {
        [best[at - 1], best[at]] = [best[at], best[at - 1]];
        at--;
      }
    }
    return best;
  }
}
