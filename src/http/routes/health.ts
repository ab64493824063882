import type { FastifyPluginAsync } from 'fastify';
import type { Gateway } from '../../gateway.js';
import { ErrorResponse, HealthResponse, TasksResponse } from '../schemas.js';
import { bestAdapterOf } from '../../registry/types.js';

/** Probes and scrapes: never traced, rate limited or shed, so that a busy gateway still says how it is. */
export const OPERATIONAL_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);
export const isOperational = (url: string) => OPERATIONAL_PATHS.has(url.split('?')[0]);

/** What the health, tasks and metrics routes use. */
export type HealthServices = Pick<Gateway, 'accepting' | 'config' | 'redis' | 'upstream' | 'router' | 'registry' | 'encoder' | 'metrics' | 'liveRegistry' | 'liveRouter'>;

/** What /readyz answers: ready once the index is built, while not shutting down, with the upstream up where that is required. */
function readiness(gateway: HealthServices): { ready: boolean; upstream: string } {
  const upstream = gateway.upstream ? gateway.upstream.health.state : 'none';
  const upstreamOk = !gateway.config.upstream.readyRequiresUpstream || upstream === 'up' || upstream === 'none';
  return { ready: gateway.accepting && gateway.router.taskCount > 0 && upstreamOk, upstream };
}

export const healthPlugin: FastifyPluginAsync<{ gateway: HealthServices }> = async (app, { gateway }) => {
  // Probes and scrapes come every few seconds: their request lines are logged at debug only.
  app.get('/healthz', { logLevel: 'warn', schema: { summary: 'Liveness', tags: ['health'], response: { 200: HealthResponse } } }, async () => ({ status: 'ok' }));

  app.get(
    '/readyz',
    { logLevel: 'warn', schema: { summary: 'Readiness: the routing index is built and the instance is not shutting down', tags: ['health'], response: { 200: HealthResponse, 503: HealthResponse } } },
    async (_request, reply) => {
      const redis = gateway.redis ? (gateway.redis.isHealthy ? 'up' : 'down') : 'disabled';
      const { ready, upstream } = readiness(gateway);
      // The registry version this replica knows and the one its routing index is built from (equal once a change is in).
      const registry = { store: gateway.liveRegistry.storeKind, version: gateway.liveRegistry.version, routed_version: gateway.liveRouter.version };
      const { fingerprint, model } = gateway.encoder;
      const encoder = { fingerprint, ...(model ? { model } : {}) };
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', tasks: gateway.router.taskCount, redis, upstream, registry, encoder });
    },
  );

  app.get(
    '/v1/tasks',
    { schema: { summary: 'Tasks in the routing index', tags: ['routing'], response: { 200: TasksResponse, '4xx': ErrorResponse } } },
    async () => ({
      object: 'list' as const,
      source: gateway.registry.source,
      encoder: gateway.encoder.fingerprint,
      data: gateway.registry.tasks.map((task) => ({
        id: task.id,
        domain: task.domain ?? null,
        description: task.description ?? null,
        examples: task.examples.length,
        adapter: bestAdapterOf(task) ?? null,
        adapter_scores: task.adapterScores,
      })),
    }),
  );

  app.get('/metrics', { logLevel: 'warn', schema: { summary: 'Prometheus metrics', tags: ['health'], produces: ['text/plain'] } }, async (_request, reply) => {
    gateway.metrics.ready.set(readiness(gateway).ready ? 1 : 0);
    reply.type(gateway.metrics.registry.contentType);
    return gateway.metrics.registry.metrics();
  });
};
