import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '../errors.js';

// Open whatever the keys: probes, and the API description.
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/openapi.json']);

const digest = (key: string) => createHash('sha256').update(key).digest();

/** Constant-time comparison against a set of keys (hashed first, so lengths leak nothing either). */
function matchesAny(candidate: string, keys: readonly Buffer[]): boolean {
  const hashed = digest(candidate);
  let found = false;
  for (const key of keys) found = timingSafeEqual(hashed, key) || found;
  return found;
}

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1];
}

/**
 * With API keys configured, every request but the probes needs `Authorization: Bearer <key>`
 * (OpenAI's 401 otherwise); /metrics takes its own key when one is set, else stays open; routes
 * marked `config: { auth: 'admin' }` take only the admin key.
 */
export function installAuth(app: FastifyInstance, options: { apiKeys: readonly string[]; metricsApiKey?: string; adminApiKey?: string }): void {
  const keys = options.apiKeys.map(digest);
  const metricsKeys = options.metricsApiKey ? [digest(options.metricsApiKey)] : undefined;
  const adminKeys = options.adminApiKey ? [digest(options.adminApiKey)] : undefined;
  if (keys.length === 0 && !metricsKeys && !adminKeys) return;
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0];
    if (OPEN_PATHS.has(path) || path.startsWith('/docs')) return;
    const admin = (request.routeOptions.config as { auth?: string } | undefined)?.auth === 'admin';
    const required = admin ? adminKeys : path === '/metrics' ? metricsKeys : keys.length > 0 ? keys : undefined;
    if (!required) return;
    const key = bearerOf(request);
    if (!key) throw new GatewayError(401, "You didn't provide an API key. Send it as Authorization: Bearer YOUR_KEY.", 'invalid_request_error', null, 'missing_api_key');
    if (!matchesAny(key, required)) throw new GatewayError(401, 'Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key');
  });
}
