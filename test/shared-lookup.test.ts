import t from 'tap';
import { SharedLookup } from '../src/upstreams/shared-lookup.js';

/** A lookup over a clock the test moves, whose reads the test answers one by one. */
function setup() {
  let now = 0;
  const reads: { signal: AbortSignal; answer: (value: number) => void; fail: (error: Error) => void }[] = [];
  const failures: string[] = [];
  const lookup = new SharedLookup<number>({
    read: (signal) => new Promise((answer, fail) => reads.push({ signal, answer, fail })),
    fallback: -1,
    ttlMs: 30_000,
    timeoutMs: 2_000,
    failureMemoryMs: 5_000,
    minRefreshMs: 5_000,
    onFailure: (error) => failures.push(error.message),
    clock: () => now,
  });
  /** A get that must start read number `count`, answered with `value`: resolves to what the get gave. */
  const answered = (pending: Promise<number>, count: number, value: number) => {
    if (reads.length !== count) throw new Error(`expected read ${count}, saw ${reads.length}`);
    reads[count - 1].answer(value);
    return pending;
  };
  return { lookup, reads, failures, answered, advance: (ms: number) => (now += ms) };
}

t.test('one read at a time, shared by every caller; the value kept for its TTL', async (t) => {
  const { lookup, reads, answered, advance } = setup();
  const callers = [lookup.get(), lookup.get(), lookup.get(true)];
  t.equal(reads.length, 1, 'three callers, one read');
  reads[0].answer(7);
  t.same(await Promise.all(callers), [7, 7, 7]);
  advance(29_999);
  t.equal(await lookup.get(), 7);
  t.equal(reads.length, 1, 'within the TTL: no read');
  advance(1);
  t.equal(await answered(lookup.get(), 2, 8), 8, 'past the TTL: read again');
});

t.test('a failed read is remembered: the last value (or the fallback) at once, no read for failureMemoryMs', async (t) => {
  const { lookup, reads, failures, answered, advance } = setup();
  const first = lookup.get();
  reads[0].fail(new Error('connection refused'));
  t.equal(await first, -1, 'never read: the fallback');
  t.same(failures, ['connection refused']);
  t.equal(await lookup.get(), -1);
  t.equal(await lookup.get(true), -1, 'even a forced refresh waits out the failure');
  t.equal(reads.length, 1, 'one failed read for every caller');
  advance(5_000);
  t.equal(await answered(lookup.get(), 2, 3), 3, 'after failureMemoryMs: read again');
  advance(30_000);
  const stale = lookup.get();
  reads[2].fail(new Error('timeout'));
  t.equal(await stale, 3, 'a failure after a success: the last value');
});

t.test('a forced refresh at most once per minRefreshMs; invalidate forgets the value', async (t) => {
  const { lookup, reads, answered, advance } = setup();
  const first = lookup.get();
  reads[0].answer(1);
  await first;
  t.equal(await lookup.get(true), 1, 'refresh right after a read: the value, no read');
  t.equal(reads.length, 1);
  advance(5_000);
  t.equal(await answered(lookup.get(true), 2, 2), 2, 'refresh after minRefreshMs: read');
  lookup.invalidate();
  t.equal(await answered(lookup.get(), 3, 4), 4, 'invalidated: read at once');
});

t.test('each read carries its own timeout signal', async (t) => {
  const lookup = new SharedLookup<string>({
    read: (signal) => new Promise((_, fail) => signal.addEventListener('abort', () => fail(signal.reason))),
    fallback: 'none',
    ttlMs: 1_000,
    timeoutMs: 50,
    failureMemoryMs: 1_000,
    minRefreshMs: 1_000,
  });
  // AbortSignal.timeout does not keep a process alive: the test does, as a server does.
  const alive = setTimeout(() => {}, 10_000);
  t.teardown(() => clearTimeout(alive));
  const started = performance.now();
  t.equal(await lookup.get(), 'none', 'a read that never answers ends at its timeout with the fallback');
  t.ok(performance.now() - started < 5_000);
});
