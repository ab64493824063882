import type { Dispatcher } from 'undici';

/** The bound on an answer read whole, unless configured otherwise. */
export const DEFAULT_MAX_ANSWER_BYTES = 64 * 2 ** 20;

/** The body was larger than the bound; it was not read on, and its connection is closed. */
export class AnswerTooLargeError extends Error {
  override name = 'AnswerTooLargeError';
  constructor(readonly limit: number) {
    super(`the answer is larger than ${limit} bytes`);
  }
}

/**
 * An undici answer's body read whole as text, up to `limit` bytes: a larger one is refused by its declared
 * content-length before any of it is read, or, when chunked, as soon as its bytes pass the bound.
 */
export function boundedText(response: Dispatcher.ResponseData, limit: number): Promise<string> {
  const declared = Number(response.headers['content-length']);
  if (declared > limit) return Promise.reject(refuse(response, limit));
  // undici reads no more than a declared length; only a chunked answer is counted as it comes.
  return Number.isFinite(declared) ? response.body.text() : chunkedText(response, limit);
}

async function chunkedText(response: Dispatcher.ResponseData, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length;
    if (size > limit) throw refuse(response, limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function refuse(response: Dispatcher.ResponseData, limit: number): AnswerTooLargeError {
  // An 'error' listener first: destroying the body would otherwise throw where nobody listens.
  response.body.on('error', () => {}).destroy();
  return new AnswerTooLargeError(limit);
}
