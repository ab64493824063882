import type { FastifyBaseLogger } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Bindings, ChildLoggerOptions, Logger } from 'pino';

/**
 * A request's logger. Nothing is logged at level silent: the requests share the gateway's logger rather than each
 * making a child (pino's child serialises its bindings as it is made, a cost on every request for lines never written).
 */
export function requestChildLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return (logger as Logger).isLevelEnabled('fatal') ? logger.child(bindings, options) : logger;
}

/**
 * The two lines Fastify logs for each request it serves, for the requests answered outside it: the same fields, which
 * Fastify's `req` and `res` serializers (on the app's logger) make of what they are given here.
 */
export const requestLines = {
  incoming(log: FastifyBaseLogger, request: IncomingMessage): void {
    if (!(log as Logger).isLevelEnabled('info')) return;
    const req = { method: request.method, url: request.url, headers: request.headers, host: request.headers.host ?? '', ip: request.socket.remoteAddress, socket: request.socket };
    log.info({ req }, 'incoming request');
  },
  completed(log: FastifyBaseLogger, statusCode: number, responseTime: number, error?: Error): void {
    if (error) log.error({ res: { statusCode }, err: error, responseTime }, 'request errored');
    else log.info({ res: { statusCode }, responseTime }, 'request completed');
  },
};
