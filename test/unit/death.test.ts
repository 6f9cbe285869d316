import { describe, expect, it } from 'vitest';
import { isDeadLetterCycle, recordDeath } from '../../src/dead-letter/death.js';
import { parseDeathHistory, type DeathHistory } from '../../src/message/death-history.js';

const event = { exchange: 'orders', routingKey: 'order.created', time: 1000 };

describe('death history', () => {
  it('starts with one record and sets first and last death', () => {
    const history = recordDeath(undefined, { ...event, queue: 'work', reason: 'rejected' });
    expect(history).toEqual({
      deaths: [
        {
          queue: 'work',
          reason: 'rejected',
          count: 1,
          time: 1000,
          exchange: 'orders',
          routingKeys: ['order.created'],
        },
      ],
      first: { queue: 'work', reason: 'rejected', exchange: 'orders' },
      last: { queue: 'work', reason: 'rejected', exchange: 'orders' },
    });
  });

  it('raises the count of the same queue and reason and moves it to the front', () => {
    let history = recordDeath(undefined, { ...event, queue: 'a', reason: 'rejected' });
    history = recordDeath(history, { ...event, queue: 'b', reason: 'expired', time: 2000 });
    history = recordDeath(history, { ...event, queue: 'a', reason: 'rejected', time: 3000 });
    expect(history.deaths.map((d) => [d.queue, d.reason, d.count, d.time])).toEqual([
      ['a', 'rejected', 2, 1000],
      ['b', 'expired', 1, 2000],
    ]);
    expect(history.first).toEqual({ queue: 'a', reason: 'rejected', exchange: 'orders' });
    expect(history.last).toEqual({ queue: 'a', reason: 'rejected', exchange: 'orders' });
  });

  it('keeps the original expiration of a message that died with one, whatever the reason', () => {
    const rejected = recordDeath(undefined, {
      ...event,
      queue: 'q',
      reason: 'rejected',
      expirationMs: 60_000,
    });
    expect(rejected.deaths[0]?.originalExpirationMs).toBe(60_000);
    const without = recordDeath(rejected, { ...event, queue: 'r', reason: 'rejected' });
    expect(without.deaths[0]?.originalExpirationMs).toBeUndefined();
  });

  it('keeps the original expiration of an expired message', () => {
    const history = recordDeath(undefined, {
      ...event,
      queue: 'q',
      reason: 'expired',
      expirationMs: 50,
    });
    expect(history.deaths[0]?.originalExpirationMs).toBe(50);
  });

  it('keeps the last handler error with the death it explains, and only with that one', () => {
    const lastError = { message: 'card declined', stack: 'Error: card declined\n    at pay' };
    let history = recordDeath(undefined, {
      ...event,
      queue: 'q',
      reason: 'delivery_limit',
      lastError,
    });
    expect(history.deaths[0]).toMatchObject({ reason: 'delivery_limit', count: 1, lastError });
    const later = { message: 'gateway down' };
    history = recordDeath(history, {
      ...event,
      queue: 'q',
      reason: 'delivery_limit',
      lastError: later,
    });
    expect(history.deaths[0]).toMatchObject({ count: 2, lastError: later });
    // The same queue and reason again, with no handler failure before it: no error to show.
    history = recordDeath(history, { ...event, queue: 'q', reason: 'delivery_limit' });
    expect(history.deaths[0]?.count).toBe(3);
    expect(history.deaths[0]).not.toHaveProperty('lastError');
    expect(parseDeathHistory(JSON.parse(JSON.stringify(history)))).toEqual(history);
  });

  it('round-trips through JSON and refuses other shapes', () => {
    const history = recordDeath(undefined, { ...event, queue: 'q', reason: 'maxlen' });
    expect(parseDeathHistory(JSON.parse(JSON.stringify(history)))).toEqual(history);
    expect(
      parseDeathHistory({ deaths: [{}], first: history.first, last: history.last }),
    ).toBeUndefined();
    expect(
      parseDeathHistory({ ...history, last: { ...history.last, reason: 'bored' } }),
    ).toBeUndefined();
    expect(parseDeathHistory('x')).toBeUndefined();
    const withError = recordDeath(undefined, {
      ...event,
      queue: 'q',
      reason: 'rejected',
      lastError: { message: 'boom' },
    });
    expect(parseDeathHistory(JSON.parse(JSON.stringify(withError)))).toEqual(withError);
    const [death] = withError.deaths;
    expect(
      parseDeathHistory({ ...withError, deaths: [{ ...death, lastError: { message: 1 } }] }),
    ).toBeUndefined();
  });
});

describe('dead-letter cycles (RabbitMQ rule)', () => {
  const after = (...deaths: [string, 'rejected' | 'expired' | 'delivery_limit'][]): DeathHistory =>
    deaths.reduce<DeathHistory | undefined>(
      (history, [queue, reason]) => recordDeath(history, { ...event, queue, reason }),
      undefined,
    ) as DeathHistory;

  it('is a cycle when the queue was left before without any rejection since', () => {
    expect(isDeadLetterCycle(after(['a', 'expired'], ['b', 'expired']), 'a')).toBe(true);
    expect(isDeadLetterCycle(after(['a', 'delivery_limit']), 'a')).toBe(true);
  });

  it('is not a cycle when a rejection happened on the way round', () => {
    expect(isDeadLetterCycle(after(['a', 'expired'], ['b', 'rejected']), 'a')).toBe(false);
    expect(isDeadLetterCycle(after(['a', 'rejected']), 'a')).toBe(false);
  });

  it('is not a cycle for a queue the message never left', () => {
    expect(isDeadLetterCycle(after(['a', 'expired']), 'c')).toBe(false);
  });
});
