import pRetry from 'p-retry';
import { classifyFailure, type Connection } from '../connection/connection.js';
import { ConnectionError, TimeoutError } from '../errors/index.js';

/**
 * Retry budget of one publish call: at most 9 attempts, backoff from 20 ms doubling to 1 s,
 * each delay multiplied by a random factor in [1, 2). The confirm deadline bounds it as well.
 */
const RETRY_BUDGET = { retries: 8, minTimeout: 20, maxTimeout: 1000, factor: 2, randomize: true };

/**
 * What the attempts of one publish call have learned, for the error it may end with, and its
 * deadline. The abort signal that makes every wait of the call give up at the deadline is
 * made only when something waits on it (a retry, a wait for durability): the first attempt of
 * a call that succeeds at once costs no AbortController, listener or timer of its own.
 */
export class CallState {
  /** True once an attempt to write may have reached Redis without its reply reaching us. */
  mayBeApplied = false;
  /** The last error of an attempt, the cause of a timeout. */
  lastError: unknown;
  /** Set once the call's deadline has passed. */
  expired = false;
  private writesInFlight = 0;
  private controller: AbortController | undefined;

  /** `onRetry` is told of each failed attempt that is tried again. */
  constructor(readonly onRetry?: (attempt: number, error: unknown) => void) {}

  /** Aborts at the call's deadline (at once if it has passed). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.expired) this.controller.abort();
    }
    return this.controller.signal;
  }

  /** Whether something waits on the signal (then every attempt gives up at the deadline). */
  get watched(): boolean {
    return this.controller !== undefined;
  }

  /** The deadline passed: what waits on the signal gives up. */
  expire(): void {
    this.expired = true;
    this.controller?.abort();
  }

  /** True when a write may have been applied: one failed uncertainly, or one is still in flight. */
  get writeMayBeApplied(): boolean {
    return this.mayBeApplied || this.writesInFlight > 0;
  }

  /** Counts a write attempt in flight until `attempt` settles. */
  async track<R>(attempt: Promise<R>): Promise<R> {
    this.writesInFlight++;
    try {
      return await attempt;
    } finally {
      this.writesInFlight--;
    }
  }
}

/** How an operation may be retried. */
export interface RetryPolicy {
  /** A write: its uncertain failures make the publish "may be applied". */
  readonly write: boolean;
  /** Running it again after an uncertain failure is harmless (reads; deduplicated writes). */
  readonly idempotent: boolean;
}

/** Resolves or rejects as `promise`, or rejects with the abort reason once `signal` aborts. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  const onAbort = new AbortController();
  const aborted = new Promise<never>((_, reject) => {
    const abort = (): void => reject(signal.reason as Error);
    if (signal.aborted) abort();
    else signal.addEventListener('abort', abort, { once: true, signal: onAbort.signal });
  });
  return Promise.race([promise, aborted]).finally(() => onAbort.abort());
}

/**
 * Runs Redis operations of the producer: the first attempt as it is, then, if it failed in a
 * way that may be retried, p-retry: transient failures are retried with jittered backoff until
 * the budget or the call's deadline runs out; uncertain ones (the command may have run) only
 * when the operation is idempotent. The retry machinery is set up only when an attempt fails.
 */
export class Retrier {
  constructor(private readonly connection: Connection) {}

  async run<R>(operation: () => Promise<R>, state: CallState, policy: RetryPolicy): Promise<R> {
    // Past the deadline the call is settled: nothing more is sent for it.
    if (state.expired) throw new TimeoutError('the confirm deadline has passed');
    try {
      return await this.attempt(operation, state, policy);
    } catch (error) {
      if (!this.retriable(error, state, policy)) throw error;
      state.onRetry?.(1, error);
    }
    // The first retry waits as p-retry's would have (it runs the attempts after it).
    const { minTimeout } = RETRY_BUDGET;
    await untilAborted(
      new Promise((resolve) => setTimeout(resolve, minTimeout * (1 + Math.random()))),
      state.signal,
    );
    return pRetry(() => this.attempt(operation, state, policy), {
      ...RETRY_BUDGET,
      retries: RETRY_BUDGET.retries - 1,
      minTimeout: 2 * minTimeout,
      signal: state.signal,
      shouldRetry: ({ error, attemptNumber }) => {
        if (!this.retriable(error, state, policy)) return false;
        state.onRetry?.(attemptNumber + 1, error);
        return true;
      },
    });
  }

  /** Whether a failed attempt may be tried again: transient, and safe to repeat. */
  private retriable(error: unknown, state: CallState, policy: RetryPolicy): boolean {
    if (state.expired) return false;
    const kind = classifyFailure(error, this.connection.redis);
    return kind === 'unsent' || (kind === 'uncertain' && policy.idempotent);
  }

  private async attempt<R>(
    operation: () => Promise<R>,
    state: CallState,
    policy: RetryPolicy,
  ): Promise<R> {
    let result = operation();
    if (!this.connection.resendsInFlightCommands) {
      // This client drops what was in flight at a connection loss without settling it.
      const lost = this.connection.nextConnectionLoss().then(() => {
        throw new ConnectionError('the connection was lost with the command in flight');
      });
      result = Promise.race([result, lost]);
    }
    if (policy.write) result = state.track(result);
    try {
      // Retrying, every attempt gives up at the deadline; a first attempt is left alone: the
      // deadline settles the publications by itself, and what the attempt learns is unused.
      return await (state.watched ? untilAborted(result, state.signal) : result);
    } catch (error) {
      if (!state.expired) {
        state.lastError = error;
        if (policy.write && classifyFailure(error, this.connection.redis) !== 'unsent') {
          state.mayBeApplied = true;
        }
      }
      throw error;
    }
  }
}
