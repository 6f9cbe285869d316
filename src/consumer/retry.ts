import { InvalidArgumentError } from '../errors/index.js';
import { optionNames, validateIntegerOption, validateOptionsObject } from '../validation/index.js';
import { MAX_DELAY_MS } from './delivery.js';

/**
 * Delayed retry of failed handlers: exponential backoff with jitter and a cap. The n-th
 * failed delivery waits `initialDelayMs * multiplier^(n-1)`, at most `maxDelayMs`, spread
 * by ± `jitter` (a fraction) so that a burst of failures does not come back all at once.
 */
export interface RetryPolicy {
  readonly initialDelayMs: number;
  /** Default 2. */
  readonly multiplier?: number | undefined;
  /** Default 10 minutes. */
  readonly maxDelayMs?: number | undefined;
  /** Default 0.2. */
  readonly jitter?: number | undefined;
}

const RETRY_OPTIONS = optionNames<RetryPolicy>({
  initialDelayMs: true,
  multiplier: true,
  maxDelayMs: true,
  jitter: true,
});

/** Checks a retry policy's fields and ranges. */
export function validateRetryPolicy(policy: unknown): asserts policy is RetryPolicy | undefined {
  if (policy === undefined) return;
  validateOptionsObject('retry', policy, RETRY_OPTIONS);
  const { initialDelayMs, multiplier, maxDelayMs, jitter } = policy as Record<string, unknown>;
  if (initialDelayMs === undefined)
    throw new InvalidArgumentError('retry.initialDelayMs is required');
  validateIntegerOption('retry.initialDelayMs', initialDelayMs, 1, MAX_DELAY_MS);
  validateIntegerOption('retry.maxDelayMs', maxDelayMs, 1, MAX_DELAY_MS);
  const fraction = (name: string, value: unknown, min: number, max: number): void => {
    if (value !== undefined && (typeof value !== 'number' || !(value >= min && value <= max))) {
      throw new InvalidArgumentError(`${name} must be a number from ${min} to ${max}`);
    }
  };
  fraction('retry.multiplier', multiplier, 1, 100);
  fraction('retry.jitter', jitter, 0, 1);
}

/** The delay before retrying a message whose `deliveryCount`-th delivery failed. */
export function retryDelayMs(
  policy: RetryPolicy,
  deliveryCount: number,
  random: () => number = Math.random,
): number {
  const base = policy.initialDelayMs * (policy.multiplier ?? 2) ** Math.max(0, deliveryCount - 1);
  const capped = Math.min(base, policy.maxDelayMs ?? 600_000);
  const jitter = policy.jitter ?? 0.2;
  // Jitter may not push a delay past what nack accepts.
  return Math.min(
    MAX_DELAY_MS,
    Math.max(0, Math.round(capped * (1 + jitter * (2 * random() - 1)))),
  );
}
