import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { createServer } from 'node:http';
import type { Gateway } from '../gateway.js';
import { installAuth } from './auth.js';
import { installTracing } from './tracing-hooks.js';
import { installLoadShedding, installRateLimit } from './protection.js';
import { clientErrorHandler, installErrorHandling, installJsonParsing, jsonBodyParser, sendError, type JsonBodyParser } from './errors.js';
import { directProxy, type BodyValidator, type DirectHandler } from './direct-proxy.js';
import { createOpenAIProxy, type OpenAIProxy } from './openai-proxy.js';
import { requestIdOf } from './request-id.js';
import { requestChildLogger } from './request-log.js';
import { tracingStarted } from '../observability/tracing.js';
import type { OpenAIEndpoint } from '../upstreams/types.js';
import { invalidRequest } from '../errors.js';
import { adminDisabledPlugin, adminPlugin } from './routes/admin.js';
import { healthPlugin } from './routes/health.js';
import { openAIPlugin } from './routes/openai.js';
import { passthroughPlugin } from './routes/passthrough.js';
import { routePlugin } from './routes/route.js';
import { ErrorResponse, RouteDecisionSchema } from './schemas.js';

export const OPENAPI_INFO = {
  title: 'LoRAuter Gateway',
  description: 'Routes prompts to LoRA adapters through tasks (LoRAuter) and proxies OpenAI-compatible requests to multi-LoRA servers.',
  version: '0.1.0',
};

/** The Fastify app; tests start it in-process with inject() or on port 0. */
export async function buildApp(gateway: Gateway): Promise<FastifyInstance> {
  const { config } = gateway;
  // Node checks open connections for requestTimeout every second here, not every 30 s.
  const http = { headersTimeout: Math.min(60_000, config.requestTimeoutMs), connectionsCheckingInterval: Math.min(1000, config.requestTimeoutMs) };
  // Set once the app is ready, when the direct path is on (LORAUTER_DIRECT_PROXY) and nothing it skips is.
  let direct: DirectHandler | undefined;
  const app = Fastify({
    loggerInstance: gateway.logger as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    // The server Fastify would make, with the direct path in front (requests it does not take go to Fastify untouched).
    serverFactory: (fastifyHandler) => {
      const server = createServer(http, (request, response) => {
        if (!direct?.(request, response)) fastifyHandler(request, response);
      });
      // Slow clients: the whole request within requestTimeout, idle keep-alive connections closed after keepAliveTimeout.
      server.requestTimeout = config.requestTimeoutMs;
      server.keepAliveTimeout = config.keepAliveTimeoutMs;
      return server;
    },
    // Registry ids are up to 200 characters; longer path parameters are checked (400), not unmatched (404).
    routerOptions: { maxParamLength: 256 },
    requestIdHeader: false,
    genReqId: (request) => requestIdOf(request.headers),
    childLoggerFactory: requestChildLogger,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    clientErrorHandler,
    // Errors Fastify raises before routing (a URL that does not decode), in the OpenAI shape too.
    frameworkErrors: (error, _request, reply) => void sendError(reply, invalidRequest(`The request URL is not valid: ${error.message}.`, null, 'invalid_url')),
  });
  app.addHook('onRequest', function echoRequestId(request, reply, done) {
    reply.header('x-request-id', request.id);
    done();
  });
  // Labelled by the route pattern (not the URL), so that the label set stays bounded.
  app.addHook('onResponse', function countResponse(request, reply, done) {
    const route = request.routeOptions.url ?? 'unmatched';
    gateway.metrics.httpRequests.inc({ route, method: request.method, status: String(reply.statusCode) });
    gateway.metrics.httpDuration.observe({ route }, reply.elapsedTime / 1000);
    done();
  });
  // JSON only: a text/plain body would otherwise reach validation as a string.
  app.removeContentTypeParser('text/plain');
  const parseJson = jsonBodyParser(app);
  installJsonParsing(app, parseJson);
  installErrorHandling(app);
  installTracing(app);
  installAuth(app, gateway.config);
  await installLoadShedding(app, gateway.config);
  const rateLimitRedis = await installRateLimit(app, gateway.config);
  if (rateLimitRedis) app.addHook('onClose', async () => void rateLimitRedis.disconnect());
  app.addSchema(ErrorResponse);
  app.addSchema(RouteDecisionSchema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: OPENAPI_INFO,
      components: { securitySchemes: { adminKey: { type: 'http', scheme: 'bearer', description: 'LORAUTER_ADMIN_API_KEY' } } },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(healthPlugin, { gateway });
  await app.register(routePlugin, { gateway });
  const proxy = createOpenAIProxy(gateway);
  const onBodyValidators = directPathMaker(app, gateway, proxy, parseJson, (handler) => (direct = handler));
  await app.register(openAIPlugin, { gateway, proxy, onBodyValidators });
  await app.register(gateway.config.adminApiKey ? adminPlugin : adminDisabledPlugin, { gateway });
  await app.register(passthroughPlugin, { gateway });
  return app;
}

/**
 * What makes the direct path once the endpoints' schemas are compiled, when it is on (LORAUTER_DIRECT_PROXY) and
 * nothing it leaves out is (API keys, a rate limit, tracing); it hands each request over to Fastify while the app
 * sheds load or closes.
 */
function directPathMaker(app: FastifyInstance, gateway: Gateway, proxy: OpenAIProxy, parse: JsonBodyParser, install: (handler: DirectHandler) => void) {
  const { config } = gateway;
  if (!config.directProxy || config.apiKeys.length > 0 || config.rateLimit.max > 0 || tracingStarted()) return undefined;
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  const underPressure = config.maxEventLoopDelayMs > 0 ? () => app.isUnderPressure() : () => false;
  return (validators: Record<OpenAIEndpoint, BodyValidator>) =>
    install(
      directProxy({
        proxy,
        parse,
        validators,
        bodyLimit: config.bodyLimitBytes,
        requestLog: (id) => requestChildLogger(app.log, { reqId: id }, {}),
        metrics: gateway.metrics,
        handOver: () => closing || underPressure(),
      }),
    );
}
