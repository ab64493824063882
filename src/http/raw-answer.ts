import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { GatewayError } from '../errors.js';

/** Answers written straight to Node's response, for the requests the gateway answers outside Fastify. */

export function writeJson(response: ServerResponse, status: number, headers: OutgoingHttpHeaders, json: string): void {
  headers['content-length'] = String(Buffer.byteLength(json));
  response.writeHead(status, headers);
  response.end(json);
}

/** As sendError answers through Fastify: the headers set so far, Retry-After when the error has one. */
export function writeError(response: ServerResponse, headers: OutgoingHttpHeaders, error: GatewayError): void {
  delete headers['content-length'];
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  headers['content-type'] = 'application/json; charset=utf-8';
  writeJson(response, error.statusCode, headers, JSON.stringify(error.toBody()));
}
