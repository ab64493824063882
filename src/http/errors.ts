import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';

import { GatewayError, invalidRequest } from '../errors.js';

export function sendError(reply: FastifyReply, error: GatewayError): FastifyReply {
  return reply.code(error.statusCode).type('application/json; charset=utf-8').send(error.toBody());
}

interface AjvIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** For unions (anyOf), the branch that got deepest into the value says most about what is wrong. */
function mostSpecific(issues: AjvIssue[]): AjvIssue {
  const depth = (issue: AjvIssue) => issue.instancePath.split('/').length;
  return issues.filter((issue) => issue.keyword !== 'anyOf').reduce((best, issue) => (depth(issue) > depth(best) ? issue : best), issues[0]);
}

function fromValidation(issues: AjvIssue[], context: string | undefined): GatewayError {
  const issue = mostSpecific(issues);
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
  const subject = param ? `'${param}'` : context === 'body' ? 'The request body' : `The ${context ?? 'request'}`;
  const code = issue.keyword === 'type' ? 'invalid_type' : 'invalid_value';
  return invalidRequest(`Invalid value for ${subject}: ${issue.message ?? 'is invalid'}.`, param, code);
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
    sendError(reply, new GatewayError(404, `Unknown request URL: ${request.method} ${request.url.split('?')[0]}.`, 'not_found_error', null, 'unknown_url')),
  );
}
