/** Errors the gateway answers with itself, in the OpenAI error shape; shared by every layer. */

export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'not_found_error'
  | 'authentication_error'
  | 'rate_limit_error'
  | 'upstream_error'
  | 'timeout_error'
  | 'server_error'
  | 'service_unavailable';

export interface OpenAIErrorBody {
  error: { message: string; type: OpenAIErrorType | string; param: string | null; code: string | null };
}

/** An error the gateway answers with itself, in the OpenAI error shape. */
export class GatewayError extends Error {
  override name = 'GatewayError';
  constructor(
    readonly statusCode: number,
    message: string,
    readonly type: OpenAIErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  /** Seconds a client should wait before trying again (sent as Retry-After). */
  retryAfterSeconds?: number;

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 404 for a path the gateway neither serves nor passes on; `note` says why, when there is more to say. */
export const unknownUrl = (method: string, url: string, note = '') =>
  new GatewayError(404, `Unknown request URL: ${method} ${url.split('?')[0]}.${note ? ` ${note}` : ''}`, 'not_found_error', null, 'unknown_url');

/** The gateway is stopping: a request refused, or an answer cut short (`message` says which). */
export const shuttingDown = (message: string) => new GatewayError(503, message, 'service_unavailable', null, 'shutting_down');

export const invalidRequest = (message: string, param: string | null = null, code: string | null = 'invalid_value') =>
  new GatewayError(400, message, 'invalid_request_error', param, code);

/** The encoder could not embed a prompt (embeddings server down, model run failed): the request cannot be routed. */
export class EncoderUnavailableError extends GatewayError {
  override name = 'EncoderUnavailableError';
  constructor(message: string) {
    super(503, message, 'service_unavailable', null, 'encoder_unavailable');
  }
}
