import pRetry from 'p-retry';
import { classifyFailure, type Connection } from '../connection/connection.js';
import { ConnectionError } from '../errors/index.js';

/**
 * Retry budget of one publish call: at most 9 attempts, backoff from 20 ms doubling to 1 s,
 * each delay multiplied by a random factor in [1, 2). The confirm deadline bounds it as well.
 */
const RETRY_BUDGET = { retries: 8, minTimeout: 20, maxTimeout: 1000, factor: 2, randomize: true };

/** What the attempts of one publish call have learned, for the error it may end with. */
export class CallState {
  /** True once an attempt to write may have reached Redis without its reply reaching us. */
  mayBeApplied = false;
  /** The last error of an attempt, the cause of a timeout. */
  lastError: unknown;
  private writesInFlight = 0;

  /**
   * `signal` aborts at the call's deadline; every wait of the call gives up then. `onRetry` is
   * told of each failed attempt that is tried again.
   */
  constructor(
    readonly signal: AbortSignal,
    readonly onRetry?: (attempt: number, error: unknown) => void,
  ) {}

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
 * Runs Redis operations of the producer with p-retry: transient failures are retried with
 * jittered backoff until the budget or the call's deadline runs out; uncertain ones (the
 * command may have run) only when the operation is idempotent.
 */
export class Retrier {
  constructor(private readonly connection: Connection) {}

  run<R>(operation: () => Promise<R>, state: CallState, policy: RetryPolicy): Promise<R> {
    return pRetry(() => this.attempt(operation, state, policy), {
      ...RETRY_BUDGET,
      signal: state.signal,
      shouldRetry: ({ error, attemptNumber }) => {
        if (state.signal.aborted) return false;
        const kind = classifyFailure(error, this.connection.redis);
        const again = kind === 'unsent' || (kind === 'uncertain' && policy.idempotent);
        if (again) state.onRetry?.(attemptNumber, error);
        return again;
      },
    });
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
      return await untilAborted(result, state.signal);
    } catch (error) {
      if (!state.signal.aborted) {
        state.lastError = error;
        if (policy.write && classifyFailure(error, this.connection.redis) !== 'unsent') {
          state.mayBeApplied = true;
        }
      }
      throw error;
    }
  }
}
