import { describe, expect, it } from 'vitest';
import { Keyspace } from '../../src/keys/index.js';
import { hashSlot } from '../../src/keys/slot.js';

describe('hash slots (test support)', () => {
  it('agrees with the values of the Redis Cluster specification', () => {
    expect(hashSlot('123456789')).toBe(0x31c3);
    expect(hashSlot('foo')).toBe(12182);
    expect(hashSlot('{user1000}.following')).toBe(hashSlot('{user1000}.followers'));
    // An empty tag does not count: the whole key is hashed.
    expect(hashSlot('foo{}{bar}')).toBe(hashSlot(Buffer.from('foo{}{bar}')));
    expect(hashSlot('foo{}{bar}')).not.toBe(hashSlot('bar'));
  });

  it('puts every key of one queue partition in one slot and the topology in another', () => {
    const keys = new Keyspace('shop');
    const queue = keys.queue('billing');
    const slots = new Set(
      [
        queue.stream,
        queue.fence,
        queue.deadLetters,
        queue.delayed,
        queue.delayedEntries,
        queue.stats,
        queue.slotGuard,
        ...keys.dedupSlots('billing', 60_000),
      ].map((k) => hashSlot(k)),
    );
    expect(slots.size).toBe(1);
    expect(hashSlot(keys.topologyVersion)).toBe(hashSlot(keys.topologyBindings));
    expect(slots.has(hashSlot(keys.topologyVersion))).toBe(false);
  });
});
