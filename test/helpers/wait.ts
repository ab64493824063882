/**
 * Waits (bounded) for a condition another thread, process or timer brings about, polling every `everyMs`; fails
 * after `limitMs`, naming `what` it waited for. Never a fixed time.
 */
export async function until(check: () => boolean | Promise<boolean>, what: string, { limitMs = 20_000, everyMs = 10 } = {}): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Where a request for an upstream slot stands once pending callbacks have run: 'granted', its error's code, or still 'waiting'. */
export function slotState(request: Promise<unknown>): Promise<unknown> {
  return Promise.race([request.then(() => 'granted', (error: { code?: string }) => error.code), new Promise((resolve) => setImmediate(() => resolve('waiting')))]);
}
