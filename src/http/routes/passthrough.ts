import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Gateway } from '../../gateway.js';
import { GatewayError, unknownUrl } from '../../errors.js';
import { relayRaw, type RawRequest } from '../proxy.js';

/** What the pass-through routes use. */
export type PassthroughServices = Pick<Gateway, 'config' | 'upstream' | 'metrics' | 'inflight'>;

export const PASSTHROUGH_PATHS = ['/v1/*', '/tokenize', '/detokenize'];

const GATEWAY_PATHS: Record<string, string> = { '/v1/route': 'POST', '/v1/tasks': 'GET', '/v1/chat/completions': 'POST', '/v1/completions': 'POST', '/v1/models': 'GET' };
const GATEWAY_PREFIXES = ['/v1/tasks/', '/v1/adapters'];

/**
 * Every other endpoint of the upstream — /v1/embeddings, /v1/responses, /v1/audio/…, /tokenize,
 * /detokenize — passes through untouched: bodies as bytes (any content type), answers and streams
 * as they come. Routes the gateway defines itself (/v1/route, /v1/chat/completions, …) win.
 */
export const passthroughPlugin: FastifyPluginAsync<{ gateway: PassthroughServices }> = async (app, { gateway }) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  async function forward(request: FastifyRequest, reply: FastifyReply) {
    const path = request.url.split('?')[0];
    // The gateway's own paths never reach the upstream: another method, or an id too long to match.
    const allowed = GATEWAY_PATHS[path];
    if (allowed) {
      reply.header('allow', allowed);
      throw new GatewayError(405, `${request.method} is not supported on ${path} (use ${allowed}).`, 'invalid_request_error', null, 'method_not_allowed');
    }
    if (GATEWAY_PREFIXES.some((prefix) => path.startsWith(prefix))) {
      throw unknownUrl(request.method, path);
    }
    const upstream = gateway.upstream;
    if (!upstream) {
      throw unknownUrl(request.method, request.url, '(No upstream is configured to pass it to.)');
    }
    const raw: RawRequest = {
      method: request.method as RawRequest['method'],
      url: request.url,
      body: Buffer.isBuffer(request.body) && request.body.length > 0 ? request.body : undefined,
      contentType: request.headers['content-type'],
    };
    return relayRaw(request, reply, { client: upstream.client, kind: upstream.kind, apiKey: gateway.config.upstream.apiKey, checksKeys: gateway.config.apiKeys.length > 0, inflight: gateway.inflight, limiter: upstream.limiter, metrics: gateway.metrics }, raw);
  }

  for (const url of PASSTHROUGH_PATHS) {
    app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url, schema: { hide: true }, handler: forward });
  }
};
