/** The hub answered a range request with the whole file: what was kept must be dropped and the file taken from its start. */
export class RangeIgnoredError extends Error {
  override name = 'RangeIgnoredError';
}

/** No answer (headers) within the time allowed, or a download silent for that long. */
export class HubTimeoutError extends Error {
  override name = 'HubTimeoutError';
}

/** What the fetch saw last: the hub's `X-Error-Code` of a refusal (GatedRepo, RepoNotFound, RevisionNotFound…), which the library's errors leave out. */
export interface HubFetchLog {
  lastErrorCode?: string;
  /**
   * The last error this fetch threw: the library's blob streams abort with an error's message only,
   * and a download must tell a range ignored (start again from 0) from a connection cut.
   */
  lastFailure?: Error;
}

/** The error behind a stream's abort reason (a message string, from the library's blob streams). */
export function failureOf(reason: unknown, log: HubFetchLog): unknown {
  if (typeof reason === 'string' && log.lastFailure?.message === reason) return log.lastFailure;
  return reason;
}

const rangeStart = (headers: Headers) => Number(/^bytes=(\d+)-/.exec(headers.get('range') ?? '')?.[1] ?? 0);

/** The body, failing with a HubTimeoutError once no bytes came for `timeoutMs`. */
function watchSilence(response: Response, timeoutMs: number, url: string): Response {
  if (!response.body) return response;
  const reader = response.body.getReader();
  let timer: NodeJS.Timeout | undefined;
  const body = new ReadableStream<Uint8Array>({
    pull: (controller) =>
      new Promise<void>((resolve) => {
        let finished = false;
        const finish = (act: () => void) => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          act();
          resolve();
        };
        timer = setTimeout(
          () =>
            finish(() => {
              const silence = new HubTimeoutError(`the hub went silent for ${timeoutMs} ms while sending ${url} (LORAUTER_HUB_TIMEOUT_MS)`);
              controller.error(silence);
              reader.cancel(silence).catch(() => {});
            }),
          timeoutMs,
        );
        reader.read().then(
          ({ done, value }) => finish(() => (done ? controller.close() : controller.enqueue(value))),
          (error) => finish(() => controller.error(error)),
        );
      }),
    cancel: (reason) => {
      clearTimeout(timer);
      return reader.cancel(reason);
    },
  });
  const watched = new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  // The library reads `url` (where a redirect ended) to fetch the file's bytes from there.
  Object.defineProperty(watched, 'url', { value: response.url });
  return watched;
}

/**
 * The fetch handed to @huggingface/hub: every request has `timeoutMs` until its headers, and its
 * body may not go silent for longer; a resumed download (a range from past the start) must be
 * answered with that range.
 */
export function hubFetch(timeoutMs: number, log: HubFetchLog = {}): typeof fetch {
  const fail = (error: Error): never => {
    log.lastFailure = error;
    throw error;
  };
  return async (input, init = {}) => {
    const url = String(input instanceof Request ? input.url : input);
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new HubTimeoutError(`the hub did not answer ${url} within ${timeoutMs} ms (LORAUTER_HUB_TIMEOUT_MS)`)), timeoutMs);
    const signals = init.signal ? [timeout.signal, init.signal] : [timeout.signal];
    let response: Response;
    try {
      response = await fetch(input, { ...init, signal: AbortSignal.any(signals) });
    } catch (error) {
      return fail(timeout.signal.aborted ? timeout.signal.reason : (error as Error));
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) log.lastErrorCode = response.headers.get('x-error-code') ?? undefined;
    const start = rangeStart(new Headers(init.headers));
    if (start > 0 && response.ok) {
      const range = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
      if (response.status !== 206 || !range || Number(range[1]) !== start) {
        await response.body?.cancel();
        fail(new RangeIgnoredError(`${url}: asked for bytes from ${start}, got ${response.status} ${response.headers.get('content-range') ?? 'without a Content-Range'}`));
      }
    }
    return watchSilence(response, timeoutMs, url);
  };
}
