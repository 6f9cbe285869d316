import { describe, expect, it } from 'vitest';
import { retryDelayMs, validateRetryPolicy } from '../../src/consumer/retry.js';
import { MAX_DELAY_MS } from '../../src/consumer/delivery.js';
import { InvalidArgumentError } from '../../src/errors/index.js';

describe('retry policy', () => {
  it('grows exponentially and stops at the cap', () => {
    const policy = { initialDelayMs: 100, multiplier: 2, maxDelayMs: 1000, jitter: 0 };
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(policy, n))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });

  it('spreads delays by the jitter fraction', () => {
    const policy = { initialDelayMs: 1000, jitter: 0.2 };
    expect(retryDelayMs(policy, 1, () => 0)).toBe(800);
    expect(retryDelayMs(policy, 1, () => 1)).toBe(1200);
    expect(retryDelayMs(policy, 1, () => 0.5)).toBe(1000);
  });

  it('never exceeds what nack accepts, whatever the jitter', () => {
    const policy = { initialDelayMs: MAX_DELAY_MS, maxDelayMs: MAX_DELAY_MS, jitter: 1 };
    expect(retryDelayMs(policy, 3, () => 1)).toBe(MAX_DELAY_MS);
  });

  it('refuses missing and out-of-range fields', () => {
    for (const bad of [
      {},
      { initialDelayMs: 0 },
      { initialDelayMs: 10, multiplier: 0.5 },
      { initialDelayMs: 10, jitter: -1 },
      5,
    ]) {
      expect(() => validateRetryPolicy(bad)).toThrow(InvalidArgumentError);
    }
    expect(() =>
      validateRetryPolicy({ initialDelayMs: 10, multiplier: 1.5, maxDelayMs: 100, jitter: 0 }),
    ).not.toThrow();
  });
});
