import { InvalidArgumentError } from '../errors/index.js';
import { optionNames, validateIntegerOption, validateOptionsObject } from '../validation/index.js';
import { MAX_DELAY_MS } from './delivery.js';

/**
 * Delayed retry of failed handlers: exponential backoff with jitter and a cap. The n-th
 * failed delivery waits `initialDelayMs * multiplier^(n-1)`, at most `maxDelayMs`, spread
 * by ± `jitter` (a fraction) so that a burst of failures does not come back all at once.
 * A field left out takes the default policy's value (what a consumer without `retry` uses).
 */
export interface RetryPolicy {
  /** Default 1 000. */
  readonly initialDelayMs?: number | undefined;
  /** Default 2. */
  readonly multiplier?: number | undefined;
  /** Default 300 000 (5 minutes). */
  readonly maxDelayMs?: number | undefined;
  /** Default 0.2. */
  readonly jitter?: number | undefined;
}

/**
 * The retry policy of a consumer that sets no `retry`: 1 s, 2 s, 4 s, ... up to 5 minutes, ± 20 %.
 * A failing dependency gets room to recover (a restart, a deploy, a failover take seconds to
 * minutes) while a handler that always fails costs one attempt per few minutes instead of a
 * busy loop; with the default delivery limit (21 deliveries, ./admission.ts) such a message is
 * dead-lettered about an hour after its first failure.
 */
export const DEFAULT_RETRY_POLICY = {
  initialDelayMs: 1_000,
  multiplier: 2,
  maxDelayMs: 300_000,
  jitter: 0.2,
} as const satisfies Required<RetryPolicy>;

const RETRY_OPTIONS = optionNames<RetryPolicy>({
  initialDelayMs: true,
  multiplier: true,
  maxDelayMs: true,
  jitter: true,
});

/**
 * Checks the `retry` consume option: undefined (the default policy), `false` (requeue at once)
 * or a policy whose fields are known and in range.
 */
export function validateRetryPolicy(
  policy: unknown,
): asserts policy is RetryPolicy | false | undefined {
  if (policy === undefined || policy === false) return;
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
    throw new InvalidArgumentError(
      'retry must be a retry policy (an object) or false to requeue failed messages at once',
    );
  }
  validateOptionsObject('retry', policy, RETRY_OPTIONS);
  const { initialDelayMs, multiplier, maxDelayMs, jitter } = policy as Record<string, unknown>;
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
  const initialDelayMs = policy.initialDelayMs ?? DEFAULT_RETRY_POLICY.initialDelayMs;
  const multiplier = policy.multiplier ?? DEFAULT_RETRY_POLICY.multiplier;
  const base = initialDelayMs * multiplier ** Math.max(0, deliveryCount - 1);
  const capped = Math.min(base, policy.maxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs);
  const jitter = policy.jitter ?? DEFAULT_RETRY_POLICY.jitter;
  // Jitter may not push a delay past what nack accepts.
  return Math.min(
    MAX_DELAY_MS,
    Math.max(0, Math.round(capped * (1 + jitter * (2 * random() - 1)))),
  );
}
