import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RETRY_POLICY,
  retryDelayMs,
  validateRetryPolicy,
} from '../../src/consumer/retry.js';
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

  it('defaults to 1 s, doubling up to 5 minutes, spread by 20 %', () => {
    expect(DEFAULT_RETRY_POLICY).toEqual({
      initialDelayMs: 1000,
      multiplier: 2,
      maxDelayMs: 300_000,
      jitter: 0.2,
    });
    const middle = (): number => 0.5;
    expect([1, 2, 3, 9, 10, 20].map((n) => retryDelayMs(DEFAULT_RETRY_POLICY, n, middle))).toEqual([
      1000, 2000, 4000, 256_000, 300_000, 300_000,
    ]);
    expect(retryDelayMs(DEFAULT_RETRY_POLICY, 1, () => 0)).toBe(800);
    expect(retryDelayMs(DEFAULT_RETRY_POLICY, 1, () => 1)).toBe(1200);
  });

  it('takes the default value of every field a policy leaves out', () => {
    for (const n of [1, 4, 12]) {
      const at = (random: number): number => retryDelayMs({}, n, () => random);
      expect([at(0), at(0.5), at(1)]).toEqual(
        [0, 0.5, 1].map((random) => retryDelayMs(DEFAULT_RETRY_POLICY, n, () => random)),
      );
    }
    expect(retryDelayMs({ maxDelayMs: 3000, jitter: 0 }, 5)).toBe(3000);
  });

  it('refuses unknown names, wrong types and out-of-range fields', () => {
    for (const bad of [
      { initialDelayMs: 0 },
      { initialDelayMs: 1.5 },
      { initialDelayMs: 10, multiplier: 0.5 },
      { initialDelayMs: 10, multiplier: Number.NaN },
      { initialDelayMs: 10, jitter: -1 },
      { maxDelayMs: '100' },
      { initialDelay: 10 },
      5,
      true,
      null,
      [],
      'exponential',
    ]) {
      expect(() => validateRetryPolicy(bad), JSON.stringify(bad)).toThrow(InvalidArgumentError);
    }
    for (const good of [
      undefined,
      false,
      {},
      { initialDelayMs: 10, multiplier: 1.5, maxDelayMs: 100, jitter: 0 },
    ]) {
      expect(() => validateRetryPolicy(good)).not.toThrow();
    }
  });
});
