import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Gateway } from '../gateway.js';
import { installAuth } from './auth.js';
import { installTracing } from './tracing-hooks.js';
import { installLoadShedding, installRateLimit } from './protection.js';
import { clientErrorHandler, installErrorHandling, installJsonParsing, sendError } from './errors.js';
import { GatewayError, invalidRequest, shuttingDown } from '../errors.js';
import { adminDisabledPlugin, adminPlugin } from './routes/admin.js';
import { healthPlugin } from './routes/health.js';
import { openAIPlugin } from './routes/openai.js';
import { passthroughPlugin } from './routes/passthrough.js';
import { routePlugin } from './routes/route.js';
import { ErrorResponse, RouteDecisionSchema } from './schemas.js';

const REQUEST_ID = /^[\w.:\-]{1,128}$/;

export const OPENAPI_INFO = {
  title: 'LoRAuter Gateway',
  description: 'Routes prompts to LoRA adapters through tasks (LoRAuter) and proxies OpenAI-compatible requests to multi-LoRA servers.',
  version: '0.1.0',
};

function refusedWhileClosing(): GatewayError {
  const error = shuttingDown('The gateway is shutting down; send the request again (another replica will take it).');
  error.retryAfterSeconds = 1;
  return error;
}

/** The Fastify app; tests start it in-process with inject() or on port 0. */
export async function buildApp(gateway: Gateway): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: gateway.logger as FastifyBaseLogger,
    bodyLimit: gateway.config.bodyLimitBytes,
    // Slow clients: the whole request within requestTimeout (Node checks open connections every
    // second here, not every 30 s), idle keep-alive connections closed after keepAliveTimeout.
    requestTimeout: gateway.config.requestTimeoutMs,
    keepAliveTimeout: gateway.config.keepAliveTimeoutMs,
    http: {
      headersTimeout: Math.min(60_000, gateway.config.requestTimeoutMs),
      connectionsCheckingInterval: Math.min(1000, gateway.config.requestTimeoutMs),
    },
    // Registry ids are up to 200 characters; longer path parameters are checked (400), not unmatched (404).
    routerOptions: { maxParamLength: 256 },
    // An incoming x-request-id is used only when it is a sane token (it ends up in every log line).
    requestIdHeader: false,
    genReqId: (request) => {
      const incoming = request.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    // Nothing is logged at level silent: the requests share the gateway's logger rather than each making a child
    // (pino's child serialises its bindings as it is made, a cost on every request for lines never written).
    childLoggerFactory: (logger, bindings, options) => ((logger as Logger).isLevelEnabled('fatal') ? logger.child(bindings, options) : logger),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    clientErrorHandler,
    return503OnClosing: false,
    // Errors Fastify raises before routing (a URL that does not decode), in the OpenAI shape too.
    frameworkErrors: (error, _request, reply) => void sendError(reply, invalidRequest(`The request URL is not valid: ${error.message}.`, null, 'invalid_url')),
  });
  // Requests that still come on open connections once the app closes (its load balancer stopped sending during the
  // drain): refused here, in the OpenAI shape, rather than with Fastify's own 503 body; Fastify closes their connections.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', function echoRequestId(request, reply, done) {
    reply.header('x-request-id', request.id);
    if (closing) return void sendError(reply, refusedWhileClosing());
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
  installJsonParsing(app);
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
  await app.register(openAIPlugin, { gateway });
  await app.register(gateway.config.adminApiKey ? adminPlugin : adminDisabledPlugin, { gateway });
  await app.register(passthroughPlugin, { gateway });
  return app;
}
