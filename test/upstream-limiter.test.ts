import t from 'tap';
import { UpstreamLimiter } from '../src/upstreams/limiter.js';
import { slotState } from './helpers/wait.js';


t.test('a slot when one is free; the queue bounded; the wait counted from when the request began waiting on the upstream', async (t) => {
  const limiter = new UpstreamLimiter({ maxConcurrency: 1, maxQueue: 2, queueTimeoutMs: 60_000 });
  const release = await limiter.acquire();
  // Began waiting (a driver's lookup) longer ago than the queue timeout: refused at once, not after another minute.
  t.equal(await slotState(limiter.acquire(undefined, performance.now() - 60_001)), 'upstream_busy');
  const queued = limiter.acquire(undefined, performance.now() - 30_000);
  const alsoQueued = limiter.acquire();
  t.equal(await slotState(queued), 'waiting', 'half the wait left: queued');
  t.equal(await slotState(limiter.acquire()), 'upstream_busy', 'the queue holds two');
  release();
  t.equal(await slotState(queued), 'granted', 'first in, first served');
  t.equal(await slotState(alsoQueued), 'waiting');
  (await queued)();
  t.equal(await slotState(alsoQueued), 'granted');
  (await alsoQueued)();
  // With a free slot, how long the request already waited does not matter.
  t.equal(await slotState(limiter.acquire(undefined, performance.now() - 120_000)), 'granted');
});

t.test('a free slot taken without a promise; none while every slot is taken; and a queued request is served first', async (t) => {
  const limiter = new UpstreamLimiter({ maxConcurrency: 1, maxQueue: 1, queueTimeoutMs: 60_000 });
  const release = limiter.tryAcquire();
  t.type(release, 'function');
  t.equal(limiter.tryAcquire(), undefined, 'the one slot is taken');
  const queued = limiter.acquire();
  release!();
  t.equal(limiter.tryAcquire(), undefined, 'the slot went to the request waiting for it');
  (await queued)();
  const again = limiter.tryAcquire();
  t.type(again, 'function', 'free once that one is done');
  again!();
});
