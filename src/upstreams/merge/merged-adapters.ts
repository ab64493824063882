import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { DemandTracker } from '../../composition/demand.js';
import { mixtureKey, onGrid, weightsOf, withinRank, type Mixture } from '../../composition/mixture.js';
import type { ExpectedMixture } from '../../composition/warm-start.js';
import { chooseServed, planBuild, type Demand, type LiveMerge } from '../../composition/planner.js';
import { MergeRefusedError } from '../../lora/merge.js';
import { mergeOnThread } from '../../lora/threaded-merge.js';
import { inSpan } from '../../observability/tracing.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import type { AdapterDefinition } from '../../registry/types.js';
import type { UpstreamClient } from '../client.js';
import type { LoadableAdapter } from '../vllm/loadable.js';
import { readAdapterLayout } from '../../lora/streaming-merge.js';
import { readAdapterConfig } from '../../lora/adapter.js';

/** How one server kind loads and unloads adapters at run time (vLLM, SGLang). */
export interface AdapterLoadingApi {
  /** Label in logs and metrics. */
  kind: string;
  loadPath: string;
  unloadPath: string;
  /** Whether an answer to a load request means the adapter is loaded (already-loaded counts). */
  loaded(status: number, text: string): boolean;
  unloaded(status: number, text: string): boolean;
  /** Throws a MergeRefusedError for an adapter the server could not load once merged. */
  assertLoadable(id: string, adapter: LoadableAdapter): void;
  /** Whether the load request can pin the adapter (SGLang's `pinned`). */
  pins?: boolean;
}

export interface MergedAdaptersOptions {
  mergeDir: string;
  maxRank: number;
  maxLive: number;
  maxBytes: number;
  buildsAtOnce: number;
  maxNewPerMinute: number;
  weightStep: number;
  minWeight: number;
  /** `api`: load with the server's runtime API; `resolver`: a merge in the folder is live (vLLM's filesystem resolver). */
  loading: 'api' | 'resolver';
  /** The served model's name: vLLM's resolver loads only adapters whose base_model_name_or_path says it. */
  baseModel?: string;
  /** Warm-start merges loaded pinned (SGLang), the most typical first. */
  pinnedMerges: number;
  /** Bound on each load and unload call. */
  callTimeoutMs: number;
  unloadOnClose: boolean;
  demandHalfLifeMs?: number;
  demandCapacity?: number;
  minGain?: number;
  planDelayMs?: number;
}

/** What a routed request is served: the weights applied, how much of the request they deliver, and the merge. */
export interface ServedComposition {
  /** The request on the weight grid, light adapters dropped. */
  requested: Mixture;
  dropped: string[];
  served: Mixture;
  fidelity: number;
  /** The merged adapter's name on the upstream; undefined: the top adapter alone. */
  merge?: string;
  exact: boolean;
}

interface HeldMerge extends LiveMerge {
  name: string;
  directory: string;
  /** Source paths it was built from: a registry change that moves one makes it stale. */
  sources: string[];
}

/** A source adapter's rank and size, by its path. */
interface SourceInfo {
  rank: number;
  bytes: number;
  at: number;
}

const SOURCE_INFO_TTL_MS = 60_000;
const FAILED_RETRY_MS = 60_000;
// An example's mixture counts as half a request: evidence of what traffic will ask, not traffic (weighed more, it
// keeps its merges live against what traffic does ask; measured in the composition bench).
const WARM_START_DEMAND = 0.5;
const MERGE_PREFIX = 'lorauter-merge-';
// Mixtures whose demand is tracked, and the most asked for among them that a plan considers building:
// every tracked one counts toward a build's benefit; the candidates bound a plan to a few ms.
const DEMAND_CAPACITY = 1024;
const BUILD_CANDIDATES = 256;
// A build into free room is worth a tenth of a request served exactly (one that evicts, half of one): the warm
// start and the first traffic fill the budgets (measured in the composition bench: +0.005 to +0.013 fidelity).
const MIN_GAIN_IN_ROOM = 0.1;

/**
 * The merged adapters the gateway keeps on a server that takes one adapter a request (vLLM,
 * SGLang): serves each request from what is live now (never waiting for a build unless told to),
 * records what was asked for, and carries out the planner's decisions in the background: builds on
 * threads (streaming, bounded memory), loads, evictions (unload, then delete), within the budgets.
 */
export class MergedAdapters {
  private readonly live = new Map<string, HeldMerge>();
  private readonly building = new Map<string, { merge: HeldMerge; done: Promise<void>; controller: AbortController }>();
  private readonly failedUntil = new Map<string, number>();
  private readonly pending = new Set<Promise<void>>();
  private readonly demand: DemandTracker;
  private readonly infos = new Map<string, SourceInfo>();
  private prototypeKeys = new Set<string>();
  private recentBuilds: number[] = [];
  /** Builds the warm start may still make outside the per-minute budget (it ends sooner when nothing is worth building). */
  private warmBuildsLeft = 0;
  private timer?: NodeJS.Timeout;
  private timerDue = 0;
  private planning = false;
  private closed = false;
  private generation = 0;
  private readonly bootId = randomBytes(3).toString('hex');
  private readonly ready: Promise<void>;

  constructor(
    private readonly client: UpstreamClient,
    private readonly api: AdapterLoadingApi,
    private readonly adapters: Map<string, AdapterDefinition>,
    private readonly options: MergedAdaptersOptions,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    this.demand = new DemandTracker({ capacity: options.demandCapacity ?? DEMAND_CAPACITY, halfLifeMs: options.demandHalfLifeMs ?? 300_000 });
    this.ready = this.clearMergeDir();
  }

  /** The best composition live now for a routed mixture; the mixture is counted as demand for the planner. */
  serve(adapters: Mixture): ServedComposition {
    const request = this.onGrid(adapters);
    if (request.mixture.length > 1) {
      this.demand.add(request.key, request.mixture, this.clock());
      if (!this.live.has(request.key)) this.schedule();
    }
    return this.choose(adapters, request);
  }

  /** Like serve, but a mixture whose merge is not live is built first, waiting up to `waitMs` for it. */
  async serveWaiting(adapters: Mixture, waitMs: number): Promise<ServedComposition> {
    const first = this.serve(adapters);
    if (first.exact || first.requested.length < 2) return first;
    const key = mixtureKey(first.requested);
    let build = this.building.get(key)?.done;
    if (!build && !this.failedUntil.has(key)) {
      await this.ready;
      const entry = (await this.buildable([{ key, mixture: first.requested, weights: weightsOf(first.requested), weight: 1 }]))[0];
      if (entry && this.building.size < this.options.buildsAtOnce && this.withinRate(this.clock())) {
        const plan = planBuild({ ...this.planInput([entry]), budgets: { ...this.budgets(), minGain: 0 } });
        if (plan) build = this.carryOut(plan.build, plan.evict);
      }
    }
    if (build) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([build, new Promise<void>((done) => (timer = setTimeout(done, waitMs)))]);
      clearTimeout(timer);
    }
    // Chosen again from what is live now; the request was counted once, above.
    return this.choose(adapters, this.onGrid(adapters));
  }

  private onGrid(adapters: Mixture): { mixture: Mixture; dropped: string[]; key: string } {
    const { mixture, dropped } = onGrid(adapters, this.options.weightStep, this.options.minWeight);
    return { mixture, dropped, key: mixtureKey(mixture) };
  }

  private choose(adapters: Mixture, { mixture, dropped, key }: { mixture: Mixture; dropped: string[]; key: string }): ServedComposition {
    const choice = chooseServed(adapters, key, this.live);
    const merge = choice.merge ? this.live.get(choice.merge)?.name : undefined;
    return { requested: mixture, dropped, served: choice.served, fidelity: choice.fidelity, merge, exact: choice.merge === key || (mixture.length === 1 && !merge) };
  }

  /**
   * The mixtures the registry's examples ask for, counted as demand so that the planner builds
   * prototypes close to many of them in the background, outside the per-minute budget (up to the live
   * budget, until nothing more is worth building); the first `pinnedMerges` built are loaded pinned.
   * Merges built from adapter files that have since moved are evicted.
   */
  warmStart(expected: readonly ExpectedMixture[]): void {
    const now = this.clock();
    for (const merge of [...this.live.values()]) {
      if (merge.mixture.some((adapter, i) => this.adapters.get(adapter.id)?.path !== merge.sources[i])) this.evict(merge.key);
    }
    this.prototypeKeys = new Set(expected.map(({ mixture }) => mixtureKey(mixture)));
    for (const { mixture, examples } of expected) this.demand.add(mixtureKey(mixture), mixture, now, examples * WARM_START_DEMAND);
    // A burst of at most the live budget, once per start or registry change: throttled like traffic, it
    // would leave the first minute of traffic with half its prototypes and no build budget.
    this.warmBuildsLeft = this.options.maxLive;
    this.schedule(0);
  }

  /** The upstream no longer has this merge (it was restarted): drop it; a later build gets a new name. */
  forget(name: string): void {
    for (const merge of this.live.values()) {
      if (merge.name !== name) continue;
      this.live.delete(merge.key);
      this.track(rm(merge.directory, { recursive: true, force: true }).catch(() => {}));
      this.updateGauges();
    }
  }

  get liveNames(): string[] {
    return [...this.live.values()].map((merge) => merge.name);
  }

  /** Live merges' mixtures by name, for tests and the bench. */
  get liveMixtures(): Map<string, Mixture> {
    return new Map([...this.live.values()].map((merge) => [merge.name, merge.mixture]));
  }

  /** Resolves when no build is running or due within a second; one waiting for the build budget is not waited for (tests, the bench). */
  async settled(): Promise<void> {
    while (this.building.size > 0 || this.planning || (this.timer && this.timerDue - Date.now() < 1000)) {
      await Promise.race([...[...this.building.values()].map((build) => build.done), new Promise((done) => setTimeout(done, 20))]);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const build of this.building.values()) build.controller.abort(new Error('the gateway is stopping'));
    await Promise.allSettled([...this.building.values()].map((build) => build.done));
    if (this.options.unloadOnClose) for (const key of [...this.live.keys()]) this.evict(key);
    await Promise.allSettled(this.pending);
  }

  private schedule(delay = this.options.planDelayMs ?? 100): void {
    if (this.timer || this.closed) return;
    this.timerDue = Date.now() + delay;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.plan();
    }, delay);
    this.timer.unref();
  }

  private pinnedCount(): number {
    return [...this.live.values(), ...[...this.building.values()].map((build) => build.merge)].filter((merge) => merge.pinned).length;
  }

  private withinRate(now: number): boolean {
    this.recentBuilds = this.recentBuilds.filter((at) => now - at < 60_000);
    return this.recentBuilds.length < this.options.maxNewPerMinute;
  }

  private budgets() {
    return { maxLive: this.options.maxLive, maxBytes: this.options.maxBytes, minGain: this.options.minGain ?? 0.5, minGainInRoom: MIN_GAIN_IN_ROOM, hysteresis: 0.25 };
  }

  private planInput(demand: Demand[]) {
    return {
      demand,
      live: [...this.live.values()],
      building: [...this.building.values()].map((build) => build.merge),
      bytesOf: (mixture: Mixture) => this.estimatedBytes(mixture),
      candidates: BUILD_CANDIDATES,
    };
  }

  private async plan(): Promise<void> {
    if (this.planning || this.closed) return;
    this.planning = true;
    try {
      await this.ready;
      while (!this.closed && this.building.size < this.options.buildsAtOnce) {
        const now = this.clock();
        for (const [key, until] of this.failedUntil) if (until <= now) this.failedUntil.delete(key);
        const demand = await this.buildable(this.demand.snapshot(now).filter((entry) => !this.failedUntil.has(entry.key)));
        const plan = planBuild({ ...this.planInput(demand), budgets: this.budgets() });
        if (!plan) {
          this.warmBuildsLeft = 0;
          break;
        }
        if (this.warmBuildsLeft > 0) {
          this.warmBuildsLeft--;
          void this.carryOut(plan.build, plan.evict, false);
          continue;
        }
        if (!this.withinRate(now)) {
          this.metrics.mergeBuilds.inc({ outcome: 'skipped_budget' });
          this.schedule(60_000 - (now - this.recentBuilds[0]) + 10);
          break;
        }
        void this.carryOut(plan.build, plan.evict);
      }
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'planning merged adapters failed');
    } finally {
      this.planning = false;
    }
  }

  /** Demand the planner may build: adapters with PEFT folders, each mixture within the rank budget. */
  private async buildable(demand: readonly Demand[]): Promise<Demand[]> {
    const ids = new Set(demand.flatMap((entry) => entry.mixture.map((adapter) => adapter.id)));
    await Promise.all([...ids].map((id) => this.sourceInfo(id)));
    const merged = new Map<string, Demand>();
    for (const entry of demand) {
      if (entry.mixture.some((adapter) => !this.infoOf(adapter.id))) continue;
      const mixture = withinRank(entry.mixture, (id) => this.infoOf(id)?.rank, this.options.maxRank, this.options.weightStep);
      if (mixture.length < 2) continue;
      const key = mixtureKey(mixture);
      const known = merged.get(key);
      if (known) known.weight += entry.weight;
      else merged.set(key, { key, mixture, weights: weightsOf(mixture), weight: entry.weight });
    }
    return [...merged.values()];
  }

  private carryOut(entry: Demand, evict: readonly string[], counted = true): Promise<void> {
    for (const key of evict) this.evict(key);
    const now = this.clock();
    if (counted) this.recentBuilds.push(now);
    const name = `${MERGE_PREFIX}${createHash('sha256').update(entry.key).digest('hex').slice(0, 12)}-${this.bootId}-${++this.generation}`;
    const directory = resolve(join(this.options.mergeDir, name));
    const merge: HeldMerge = {
      key: entry.key,
      mixture: entry.mixture,
      weights: entry.weights,
      bytes: this.estimatedBytes(entry.mixture),
      pinned: this.api.pins === true && this.prototypeKeys.has(entry.key) && this.pinnedCount() < this.options.pinnedMerges,
      name,
      directory,
      sources: entry.mixture.map((adapter) => this.adapters.get(adapter.id)?.path ?? ''),
    };
    const controller = new AbortController();
    this.metrics.mergeBuilds.inc({ outcome: 'queued' });
    const done = inSpan('lorauter.merge', { 'lorauter.merge.name': name, 'lorauter.adapters': entry.mixture.map((adapter) => `${adapter.id}=${adapter.weight}`) }, () =>
      this.build(merge, controller.signal),
    ).finally(() => {
      this.building.delete(entry.key);
      this.updateGauges();
      this.schedule(0);
    });
    this.building.set(entry.key, { merge, done, controller });
    this.updateGauges();
    return done;
  }

  private async build(merge: HeldMerge, signal: AbortSignal): Promise<void> {
    const started = performance.now();
    try {
      await mkdir(this.options.mergeDir, { recursive: true });
      for (const [i, adapter] of merge.mixture.entries()) this.api.assertLoadable(adapter.id, await readAdapterLayout(merge.sources[i]));
      const sources = merge.mixture.map((adapter, i) => ({ directory: merge.sources[i], weight: adapter.weight }));
      const config = this.options.loading === 'resolver' && this.options.baseModel ? { base_model_name_or_path: this.options.baseModel, peft_type: 'LORA' } : { peft_type: 'LORA' };
      const outcome = await mergeOnThread(sources, merge.directory, { maxRank: this.options.maxRank, signal, config });
      merge.bytes = outcome.bytes;
      if (this.options.loading === 'api') await this.load(merge, signal);
      signal.throwIfAborted();
      this.live.set(merge.key, merge);
      this.metrics.mergeBuilds.inc({ outcome: 'done' });
      this.metrics.mergeBuildDuration.observe((performance.now() - started) / 1000);
      this.logger.info({ name: merge.name, adapters: merge.mixture, rank: outcome.rank, bytes: outcome.bytes, ms: Math.round(performance.now() - started) }, `merged LoRA adapter live on ${this.api.kind}`);
    } catch (error) {
      await rm(merge.directory, { recursive: true, force: true }).catch(() => {});
      if (signal.aborted) return;
      this.failedUntil.set(merge.key, this.clock() + FAILED_RETRY_MS);
      this.metrics.mergeBuilds.inc({ outcome: 'failed' });
      const reason = error instanceof MergeRefusedError ? error.reason : 'load_failed';
      this.metrics.compositionFallbacks.inc({ upstream: this.api.kind, reason });
      this.logger.warn({ name: merge.name, adapters: merge.mixture, reason, err: (error as Error).message }, 'building a merged adapter failed; its mixture is served by the nearest live composition');
    }
  }

  private async load(merge: HeldMerge, signal: AbortSignal): Promise<void> {
    const body: Record<string, unknown> = { lora_name: merge.name, lora_path: merge.directory };
    if (merge.pinned) body.pinned = true;
    const { status, text } = await this.client.json('POST', this.api.loadPath, body, undefined, AbortSignal.any([signal, AbortSignal.timeout(this.options.callTimeoutMs)]));
    if (!this.api.loaded(status, text)) {
      this.metrics.mergedAdapters.inc({ outcome: 'load_failed' });
      throw new Error(`${this.api.kind} refused to load merged adapter ${merge.name} (${status}: ${text.slice(0, 200)})`);
    }
    this.metrics.mergedAdapters.inc({ outcome: 'loaded' });
  }

  /** Out of service at once; unloaded from the server (api), then its files deleted. */
  private evict(key: string): void {
    const merge = this.live.get(key);
    if (!merge) return;
    this.live.delete(key);
    this.updateGauges();
    this.track(this.unload(merge));
  }

  private async unload(merge: HeldMerge): Promise<void> {
    if (this.options.loading === 'api') {
      try {
        const { status, text } = await this.client.json('POST', this.api.unloadPath, { lora_name: merge.name }, undefined, AbortSignal.timeout(this.options.callTimeoutMs));
        if (!this.api.unloaded(status, text)) this.logger.warn({ name: merge.name, status, text: text.slice(0, 200) }, `${this.api.kind} did not unload merged adapter`);
        else this.metrics.mergedAdapters.inc({ outcome: 'unloaded' });
      } catch (error) {
        this.logger.warn({ name: merge.name, err: (error as Error).message }, 'unloading merged adapter failed');
      }
    }
    await rm(merge.directory, { recursive: true, force: true }).catch(() => {});
  }

  private track(work: Promise<void>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  private updateGauges(): void {
    this.metrics.liveMerges.set(this.live.size);
    let bytes = 0;
    for (const merge of this.live.values()) bytes += merge.bytes;
    for (const { merge } of this.building.values()) bytes += merge.bytes;
    this.metrics.mergeDirBytes.set(bytes);
  }

  /** A merge's size before it is built: its sources' sizes (the same dtype, rank Σ r). */
  private estimatedBytes(mixture: Mixture): number {
    return mixture.reduce((sum, adapter) => sum + (this.infoOf(adapter.id)?.bytes ?? 0), 0);
  }

  private infoOf(id: string): SourceInfo | undefined {
    const path = this.adapters.get(id)?.path;
    return path ? this.infos.get(path) : undefined;
  }

  /** An adapter's rank and size, read from its PEFT folder (cached a minute); undefined when it has none. */
  private async sourceInfo(id: string): Promise<SourceInfo | undefined> {
    const path = this.adapters.get(id)?.path;
    if (!path) return undefined;
    const known = this.infos.get(path);
    if (known && this.clock() - known.at < SOURCE_INFO_TTL_MS) return known;
    try {
      const config = await readAdapterConfig(path);
      const { size } = await stat(join(path, 'adapter_model.safetensors'));
      const info = { rank: config.r, bytes: size, at: this.clock() };
      this.infos.set(path, info);
      return info;
    } catch {
      this.infos.delete(path);
      return undefined;
    }
  }

  /** Merges left by an earlier run of the gateway (the folder is this gateway's alone): never named again, so deleted. */
  private async clearMergeDir(): Promise<void> {
    try {
      const names = await readdir(this.options.mergeDir);
      await Promise.all(names.filter((name) => name.startsWith(MERGE_PREFIX)).map((name) => rm(join(this.options.mergeDir, name), { recursive: true, force: true })));
    } catch {
      // No folder yet: the first build makes it.
    }
  }
}
