import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { startTracing } from '../src/observability/tracing.js';
import { startGateway } from './helpers/gateway.js';

/** The hooks Fastify runs for one route, by lifecycle stage (from printRoutes' own listing). */
function hooksOf(app: FastifyInstance, path: string): Record<string, string[]> {
  const listing = app.printRoutes({ includeHooks: true, commonPrefix: false }).split('\n');
  const at = listing.findIndex((line) => line.includes(`${path} (`) && line.includes('POST'));
  const hooks: Record<string, string[]> = {};
  for (const line of listing.slice(at + 1)) {
    const match = /• \((\w+)\) (\[.*\])/.exec(line);
    if (!match) break;
    hooks[match[1]] = JSON.parse(match[2]);
  }
  return hooks;
}

t.test('what is off costs nothing on a request: no hooks for auth, rate limit, tracing or shedding unless they are on', async (t) => {
  const off = await startGateway({ maxEventLoopDelayMs: 0 });
  t.teardown(() => off.close());
  for (const path of ['/v1/route', '/v1/chat/completions']) {
    t.same(hooksOf(off.app, path), { onRequest: ['echoRequestId()'], onResponse: ['countResponse()'] }, `${path}: the request id and the metrics only`);
  }

  // Each feature, once on, brings its hooks (so the listing above would show a hook left on by mistake).
  const tracing = startTracing(new SimpleSpanProcessor({ exporter: new InMemorySpanExporter() }));
  const on = await startGateway({ apiKeys: ['client-key-1'], rateLimit: { max: 100, windowMs: 60_000 } });
  t.teardown(async () => {
    await on.close();
    await tracing.shutdown();
  });
  const hooks = hooksOf(on.app, '/v1/route');
  t.ok(hooks.onRequest.length >= 5, `auth, rate limit, tracing and shedding add onRequest hooks: ${hooks.onRequest}`);
  t.ok(hooks.preHandler?.length > 0, 'tracing names the route in a preHandler hook');
});
