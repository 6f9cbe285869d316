import { describe, expect, it } from 'vitest';
import { ratesBetween, type QueueTotals } from '../../src/queue/data.js';

const NO_DEATHS = { rejected: 0, expired: 0, maxlen: 0, delivery_limit: 0, poison: 0 };

const reading = (
  atMs: number,
  published: number,
  delivered: number,
  acked: number,
  failures: Partial<Pick<QueueTotals, 'redelivered' | 'deadLettered' | 'dropped'>> = {},
) => ({
  atMs,
  totals: {
    published,
    delivered,
    acked,
    redelivered: 0,
    deadLettered: NO_DEATHS,
    dropped: 0,
    ...failures,
  },
});

describe('queue rates between two readings', () => {
  it('are the totals’ increase per second over the interval', () => {
    expect(ratesBetween(reading(1000, 10, 5, 2), reading(3000, 30, 15, 12))).toEqual({
      publishedPerSecond: 10,
      deliveredPerSecond: 5,
      ackedPerSecond: 5,
      redeliveredPerSecond: 0,
      deadLetteredPerSecond: 0,
      droppedPerSecond: 0,
      intervalMs: 2000,
    });
  });

  it('give the dead letters of every reason as one rate, with redeliveries and drops', () => {
    const before = reading(1000, 10, 10, 0, {
      redelivered: 4,
      deadLettered: { ...NO_DEATHS, delivery_limit: 2 },
      dropped: 1,
    });
    const after = reading(2000, 10, 20, 0, {
      redelivered: 12,
      deadLettered: { ...NO_DEATHS, delivery_limit: 5, expired: 3, poison: 1 },
      dropped: 3,
    });
    expect(ratesBetween(before, after)).toMatchObject({
      redeliveredPerSecond: 8,
      deadLetteredPerSecond: 7,
      droppedPerSecond: 2,
    });
  });

  it('are undefined without an earlier reading or without time between them', () => {
    expect(ratesBetween(undefined, reading(1000, 1, 1, 1))).toBeUndefined();
    expect(ratesBetween(reading(1000, 1, 1, 1), reading(1000, 2, 2, 2))).toBeUndefined();
  });

  it('are undefined when a total went back (the queue was declared again)', () => {
    expect(ratesBetween(reading(1000, 10, 10, 10), reading(2000, 3, 12, 12))).toBeUndefined();
    const dead = (atMs: number, maxlen: number) =>
      reading(atMs, 1, 1, 1, { deadLettered: { ...NO_DEATHS, maxlen } });
    expect(ratesBetween(dead(1000, 5), dead(2000, 2))).toBeUndefined();
  });
});
