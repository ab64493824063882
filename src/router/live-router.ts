import type { Logger } from 'pino';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { RegistrySnapshot } from '../registry/stores/store.js';
import type { TaskRegistry } from '../registry/types.js';
import { Router } from './router.js';

/**
 * The router in service, replaced whole when the registry changes: the new one is built in the
 * background while requests keep using the old one, then swapped in one assignment. Changes that
 * arrive during a build are coalesced into one more build of the newest registry.
 */
export class LiveRouter {
  private router: Router;
  private routedVersion: number;
  private pending: RegistrySnapshot | undefined;
  private building: Promise<void> | undefined;
  private retry: { timer: NodeJS.Timeout; delayMs: number } | undefined;
  private closed = false;

  constructor(
    initial: Router,
    version: number,
    private readonly build: (registry: TaskRegistry, previous: Router) => Promise<Router>,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    this.router = initial;
    this.routedVersion = version;
    metrics.registryVersion.set(version);
  }

  get current(): Router {
    return this.router;
  }

  /** The registry version the router in service was built from. */
  get version(): number {
    return this.routedVersion;
  }

  update(snapshot: RegistrySnapshot): void {
    if (this.closed || snapshot.version <= this.routedVersion) return;
    if (!this.pending || snapshot.version > this.pending.version) this.pending = snapshot;
    this.building ??= this.buildPending();
  }

  /** Resolves when no build is running or waiting. */
  async settled(): Promise<void> {
    while (this.building) await this.building;
  }

  /** No more builds or retries (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry?.timer);
    await this.settled();
  }

  /** A failed build is tried again (1 s, doubling to 60 s) until it succeeds or a newer change arrives. */
  private retryLater(snapshot: RegistrySnapshot): void {
    if (this.closed) return;
    const delayMs = Math.min(60_000, (this.retry?.delayMs ?? 500) * 2);
    clearTimeout(this.retry?.timer);
    const timer = setTimeout(() => this.update(snapshot), delayMs);
    timer.unref();
    this.retry = { timer, delayMs };
  }

  private async buildPending(): Promise<void> {
    try {
      while (this.pending) {
        const snapshot = this.pending;
        this.pending = undefined;
        const started = performance.now();
        try {
          const previous = this.router;
          const router = await this.build(snapshot.registry, previous);
          this.router = router;
          this.routedVersion = snapshot.version;
          // Requests still on the old router go on: a closed encoder encodes on the calling thread.
          if (previous.encoder !== router.encoder) void previous.encoder.close();
          clearTimeout(this.retry?.timer);
          this.retry = undefined;
          const seconds = (performance.now() - started) / 1000;
          this.metrics.registryRebuild.observe(seconds);
          this.metrics.registryVersion.set(snapshot.version);
          this.metrics.tasks.set(router.taskCount);
          this.logger.info(
            { version: snapshot.version, tasks: router.taskCount, derivedTasks: Router.changedTasks(router, previous), buildMs: Math.round(seconds * 1000) },
            'routing index rebuilt',
          );
        } catch (error) {
          this.logger.error({ version: snapshot.version, err: error }, 'routing index rebuild failed: the previous one stays in service');
          if (!this.pending) this.retryLater(snapshot);
        }
      }
    } finally {
      this.building = undefined;
    }
  }
}
