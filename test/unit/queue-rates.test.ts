import { describe, expect, it } from 'vitest';
import { ratesBetween } from '../../src/queue/data.js';

const reading = (atMs: number, published: number, delivered: number, acked: number) => ({
  atMs,
  totals: { published, delivered, acked },
});

describe('queue rates between two readings', () => {
  it('are the totals’ increase per second over the interval', () => {
    expect(ratesBetween(reading(1000, 10, 5, 2), reading(3000, 30, 15, 12))).toEqual({
      publishedPerSecond: 10,
      deliveredPerSecond: 5,
      ackedPerSecond: 5,
      intervalMs: 2000,
    });
  });

  it('are undefined without an earlier reading or without time between them', () => {
    expect(ratesBetween(undefined, reading(1000, 1, 1, 1))).toBeUndefined();
    expect(ratesBetween(reading(1000, 1, 1, 1), reading(1000, 2, 2, 2))).toBeUndefined();
  });

  it('are undefined when a total went back (the queue was declared again)', () => {
    expect(ratesBetween(reading(1000, 10, 10, 10), reading(2000, 3, 12, 12))).toBeUndefined();
  });
});
