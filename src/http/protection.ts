import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { boundedRedis, whenReady } from '../redis.js';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { isOperational } from './routes/health.js';


/** A client is its API key when it sends one (hashed: keys never reach Redis or logs), else its address. */
function clientKey(request: FastifyRequest): string {
  const match = /^Bearer\s+(\S+)/i.exec(request.headers.authorization ?? '');
  return match ? `key:${createHash('sha256').update(match[1]).digest('base64url').slice(0, 22)}` : `ip:${request.ip}`;
}

/**
 * Per-client rate limit (@fastify/rate-limit): `max` requests a window, counted in Redis when the
 * gateway has one (so the limit holds across replicas), else in process. A Redis failure lets
 * requests through rather than failing them. Over the limit: 429 with Retry-After.
 */
export async function installRateLimit(app: FastifyInstance, config: Config): Promise<Redis | undefined> {
  const { max, windowMs } = config.rateLimit;
  if (max === 0) return undefined;
  const redis = config.cache.redisUrl
    ? boundedRedis(config.cache.redisUrl, Math.max(config.cache.redisTimeoutMs, 100), { connectTimeout: 1000 })
    : undefined;
  redis?.on('error', () => {});
  // Connected before the first request where possible (until then, and during outages, requests pass).
  if (redis) await whenReady(redis, 1000);
  await app.register(rateLimit, {
    max,
    timeWindow: windowMs,
    redis,
    nameSpace: `${config.registry.keyPrefix.replace(/registry:$/, '')}ratelimit:`,
    skipOnError: true,
    keyGenerator: clientKey,
    allowList: (request) => isOperational(request.url),
    errorResponseBuilder: (_request, context) => {
      const error = new GatewayError(429, `Rate limit reached: ${context.max} requests per ${context.after}. Try again in ${Math.ceil(context.ttl / 1000)} s.`, 'rate_limit_error', null, 'rate_limit_exceeded');
      error.retryAfterSeconds = Math.max(1, Math.ceil(context.ttl / 1000));
      return error;
    },
  });
  return redis;
}

/** How often the event loop's delay is read (@fastify/under-pressure's default). */
const SAMPLE_INTERVAL_MS = 1000;

/**
 * Sheds load (@fastify/under-pressure): while the event loop lags beyond the limit, 503 with Retry-After. The delay is
 * read every second, over the second before; readings that reach back before the gateway was ready are not acted on:
 * the loop is busy while the app starts (routes and schemas compiled), and that is not load.
 */
export async function installLoadShedding(app: FastifyInstance, config: Config): Promise<void> {
  if (config.maxEventLoopDelayMs === 0) return;
  const retryAfterSeconds = 1;
  let shedFrom = Infinity;
  app.addHook('onReady', (done) => {
    shedFrom = performance.now() + 2 * SAMPLE_INTERVAL_MS;
    done();
  });
  await app.register(underPressure, {
    maxEventLoopDelay: config.maxEventLoopDelayMs,
    sampleInterval: SAMPLE_INTERVAL_MS,
    retryAfter: retryAfterSeconds,
    pressureHandler: (request, reply, _type, value) => {
      // Not sending lets the request through; Fastify stops at a reply already sent.
      if (isOperational(request.url) || performance.now() < shedFrom) return;
      const error = new GatewayError(503, `The gateway is overloaded (event loop delay ${Math.round(Number(value))} ms); try again shortly.`, 'service_unavailable', null, 'overloaded');
      reply.code(503).header('retry-after', String(retryAfterSeconds)).type('application/json; charset=utf-8').send(error.toBody());
    },
  });
}
