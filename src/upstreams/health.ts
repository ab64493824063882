import type { Logger } from 'pino';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { UpstreamClient } from './client.js';

export type UpstreamState = 'up' | 'down' | 'unknown';

/**
 * Asks the upstream's health endpoint every `intervalMs` (bounded by a timeout), keeps the answer
 * for /readyz and `lorauter_upstream_up`, and logs when it changes.
 */
export class UpstreamHealth {
  state: UpstreamState = 'unknown';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: UpstreamClient,
    private readonly path: string,
    private readonly intervalMs: number,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    metrics.registry.registerMetric(metrics.upstreamUp);
  }

  start(): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  async check(): Promise<UpstreamState> {
    let next: UpstreamState;
    try {
      const response = await this.client.request({ method: 'GET', path: this.path, signal: AbortSignal.timeout(Math.min(this.intervalMs, 2000)) });
      await response.body.dump();
      next = response.statusCode >= 200 && response.statusCode < 300 ? 'up' : 'down';
    } catch {
      next = 'down';
    }
    if (next !== this.state && this.state !== 'unknown') this.logger.warn({ from: this.state, to: next }, 'upstream health changed');
    this.state = next;
    this.metrics.upstreamUp.set(next === 'up' ? 1 : 0);
    return next;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
