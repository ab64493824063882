import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

import { GatewayError, invalidRequest, unknownUrl } from '../errors.js';

export function sendError(reply: FastifyReply, error: GatewayError): FastifyReply {
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  return reply.code(error.statusCode).type('application/json; charset=utf-8').send(error.toBody());
}

interface AjvIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

const depthOf = (issue: AjvIssue) => issue.instancePath.split('/').length;

/**
 * What to say about a value that failed: for unions (anyOf), the branch that got deepest into the value says most,
 * and a branch of the value's own type (an array too long) more than the types it is not; a value of no allowed
 * type or constant is told every one allowed.
 */
function describeFailure(issues: AjvIssue[]): { issue: AjvIssue; message: string } {
  const specific = issues.filter((issue) => issue.keyword !== 'anyOf');
  const deepest = Math.max(...specific.map(depthOf));
  const atDeepest = specific.filter((issue) => depthOf(issue) === deepest);
  const pathOf = atDeepest[0].instancePath;
  const here = atDeepest.filter((issue) => issue.instancePath === pathOf);
  const ofItsType = here.find((issue) => issue.keyword !== 'type' && issue.keyword !== 'const');
  if (ofItsType) return { issue: ofItsType, message: messageOf(ofItsType) };
  const constants = here.filter((issue) => issue.keyword === 'const').map((issue) => JSON.stringify(issue.params.allowedValue));
  if (constants.length > 0) return { issue: here[0], message: `must be one of ${constants.join(', ')}` };
  const types = [...new Set(here.filter((issue) => issue.keyword === 'type').map((issue) => String(issue.params.type)))];
  if (types.length > 0) return { issue: here[0], message: `must be ${types.map((type) => (type === 'object' ? 'an object' : type === 'array' ? 'an array' : `a ${type}`)).join(' or ')}` };
  return { issue: here[0], message: messageOf(here[0]) };
}

function messageOf(issue: AjvIssue): string {
  const limit = Number(issue.params.limit);
  if (issue.keyword === 'maxItems') return `must have at most ${limit} item${limit === 1 ? '' : 's'}`;
  if (issue.keyword === 'minItems') return `must have at least ${limit} item${limit === 1 ? '' : 's'}`;
  if (issue.keyword === 'minLength' && limit === 1) return 'must not be empty';
  return issue.message ?? 'is invalid';
}

function fromValidation(issues: AjvIssue[], context: string | undefined): GatewayError {
  const { issue, message } = describeFailure(issues);
  const path = issue.instancePath.split('/').slice(1);
  if (issue.keyword === 'additionalProperties') {
    const name = String(issue.params.additionalProperty);
    const param = [...path, name].join('.');
    return invalidRequest(`Unrecognized request argument supplied: ${param}`, param, 'unknown_parameter');
  }
  if (issue.keyword === 'required') {
    const param = [...path, String(issue.params.missingProperty)].join('.');
    return invalidRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
  }
  const param = path.join('.') || null;
  const code = issue.keyword === 'type' ? 'invalid_type' : 'invalid_value';
  if (!param) return invalidRequest(`The ${context === 'body' || context === undefined ? 'request body' : context} ${message}.`, null, code);
  return invalidRequest(`Invalid value for '${param}': ${message}.`, param, code);
}

const FASTIFY_CODES: Record<string, (error: FastifyError) => GatewayError> = {
  FST_ERR_CTP_INVALID_JSON_BODY: (e) => invalidRequest(`We could not parse the JSON body of your request. (${e.message})`, null, 'invalid_json'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => invalidRequest('The request body is empty; expected a JSON object.', null, 'invalid_json'),
  FST_ERR_CTP_BODY_TOO_LARGE: () => new GatewayError(413, 'The request body is larger than this gateway accepts.', 'invalid_request_error', null, 'request_too_large'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (e) => new GatewayError(415, e.message, 'invalid_request_error', null, 'unsupported_media_type'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: (e) => invalidRequest(e.message, null, 'invalid_content_length'),
};

/** One error handler for the whole app: every error leaves in the OpenAI shape. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError & { validation?: AjvIssue[]; validationContext?: string }, request, reply) => {
    let gatewayError: GatewayError;
    if (error instanceof GatewayError) gatewayError = error;
    else if (error.validation) gatewayError = fromValidation(error.validation, error.validationContext);
    else if (error.code && FASTIFY_CODES[error.code]) gatewayError = FASTIFY_CODES[error.code](error);
    else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      gatewayError = new GatewayError(error.statusCode, error.message, 'invalid_request_error', null, error.code ?? null);
    } else {
      request.log.error({ err: error }, 'unhandled error');
      gatewayError = new GatewayError(500, 'The gateway had an internal error while handling your request.', 'server_error', null, 'internal_error');
    }
    return sendError(reply, gatewayError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, unknownUrl(request.method, request.url)),
  );
}

const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'The request headers are larger than this gateway accepts.', 'headers_too_large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'The request was not received in time (LORAUTER_REQUEST_TIMEOUT_MS).', 'request_timeout'],
};

/**
 * Node's HTTP parser rejects some requests before Fastify sees them (bad headers, headers too
 * large, malformed request lines, a request not received in time): answer those in the OpenAI shape too, then close.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, message, code] = CLIENT_ERRORS[error.code ?? ''] ?? [400, `The request could not be parsed as HTTP (${error.code ?? error.message}).`, 'bad_request'];
  const body = JSON.stringify(new GatewayError(status, message, 'invalid_request_error', null, code).toBody());
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** JSON bodies nest at most this deep; deeper ones would overflow the stack when re-serialised. */
export const MAX_JSON_DEPTH = 128;

/** Whether a parsed JSON value nests deeper than `limit` (iterative, so the check itself cannot overflow). */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Object.values(node)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'DELETE']);

function isValidJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Valid JSON that Fastify's parser refused: it holds a key that could reach a prototype. */
const forbiddenKey = () => invalidRequest('The JSON body has a "__proto__" key or a "constructor" with a "prototype", which the gateway refuses (they can alter objects\' prototypes); rename the key.', null, 'forbidden_key');

/**
 * Fastify's own JSON parser (prototype-poisoning checks included), refusing bodies nested deeper than
 * MAX_JSON_DEPTH; GET, HEAD and DELETE take an empty body whatever its content type and refuse any other.
 */
export function installJsonParsing(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (BODYLESS_METHODS.has(request.method)) {
      // Many clients send `content-type: application/json` on every request: no body is fine, a body is a mistake.
      if ((body as string).trim() === '') return done(null, undefined);
      return done(invalidRequest(`${request.method} takes no body; send the request without one.`, null, 'unexpected_body'), undefined);
    }
    parseJson(request, body as string, (error, value) => {
      if (error) return done(isValidJson(body as string) ? forbiddenKey() : error, undefined);
      if (nestsDeeperThan(value, MAX_JSON_DEPTH)) return done(invalidRequest(`The JSON body nests deeper than ${MAX_JSON_DEPTH} levels.`, null, 'too_deep'), undefined);
      done(null, value);
    });
  });
}
