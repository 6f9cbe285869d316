import { ClosedError, ConnectionError, TimeoutError, type SluiceError } from '../errors/index.js';
import { classify, mayRetry, type Connection } from './connection.js';

/** How an operation may be retried. */
export interface OperationPolicy {
  /** Running the whole operation again after an uncertain failure (it may have run) is harmless. */
  readonly idempotent: boolean;
}

/** What {@link Operations} needs of a connection. */
export type OperationConnection = Pick<
  Connection,
  'redis' | 'resendsInFlightCommands' | 'nextConnectionLoss'
>;

/** Backoff before attempt `attempt + 1`: 20 ms doubling to 1 s, times a random factor in [1, 2). */
function backoffMs(attempt: number): number {
  return Math.min(20 * 2 ** (attempt - 1), 1000) * (1 + Math.random());
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs the operations other than publishing (declarations, bindings, deletes, reads, the DLQ
 * tools) to a deadline. A failed attempt is classified once ({@link classify}) and the whole
 * operation runs again, after a jittered backoff, when the classification allows it: always
 * when Redis did not run the command, after an uncertain failure only when the operation is
 * idempotent. At the deadline the call rejects with TimeoutError, whatever is still in flight:
 * ioredis queues commands while Redis is unreachable and waits for the replies of a
 * partitioned connection, so an attempt may never settle by itself.
 *
 * The happy path costs one timer and an entry in the set of calls in flight: nothing else is
 * set up until an attempt fails.
 *
 * An operation that reports progress (the `progress` callback, e.g. after each message of a
 * replay) is bounded by the time since its last progress instead, and is not repeated once it
 * made progress: a repeat would redo work that its result already counted.
 */
export class Operations {
  /** How to end each call in flight early (see {@link close}). */
  private readonly inFlight = new Set<(error: SluiceError) => void>();

  constructor(
    private readonly connection: OperationConnection,
    /** The deadline of one call (`operationTimeoutMs`). */
    readonly timeoutMs: number,
  ) {}

  /**
   * Rejects every call still in flight with ClosedError, once the connection is closed: ioredis
   * never settles the commands it queued while reconnecting when it is closed then.
   */
  close(): void {
    for (const end of this.inFlight) end(new ClosedError('sluice client is closed'));
  }

  /** Runs `operation` with retries until it settles or the deadline passes; `what` names it in errors. */
  async run<R>(
    what: string,
    operation: (progress: () => void) => Promise<R>,
    policy: OperationPolicy,
  ): Promise<R> {
    const startedAt = Date.now();
    let progressedAt: number | undefined;
    let lastFailure: SluiceError | undefined;
    /** The error that ended the call from outside its attempts: the deadline, or close(). */
    let ending: SluiceError | undefined;
    let end: (error: SluiceError) => void = () => undefined;
    let timer: NodeJS.Timeout | undefined;
    const ended = new Promise<never>((_, reject) => {
      end = (error) => {
        ending = error;
        reject(error);
      };
      const check = (): void => {
        const remainingMs = (progressedAt ?? startedAt) + this.timeoutMs - Date.now();
        if (remainingMs > 0) timer = setTimeout(check, remainingMs);
        else end(this.timeout(what, progressedAt !== undefined, lastFailure));
      };
      timer = setTimeout(check, this.timeoutMs);
    });
    this.inFlight.add(end);
    const progress = (): void => {
      progressedAt = Date.now();
    };
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await Promise.race([this.attempt(operation, progress), ended]);
        } catch (error) {
          if (error === ending) throw error;
          const failure = classify(error, this.connection.redis, what);
          if (progressedAt !== undefined || !mayRetry(failure.kind, policy.idempotent)) {
            throw failure.error;
          }
          lastFailure = failure.error;
          // No retries after progress, so the deadline is the first one here.
          const remainingMs = startedAt + this.timeoutMs - Date.now();
          await Promise.race([
            sleep(Math.max(0, Math.min(backoffMs(attempt), remainingMs))),
            ended,
          ]);
        }
      }
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(end);
    }
  }

  private attempt<R>(
    operation: (progress: () => void) => Promise<R>,
    progress: () => void,
  ): Promise<R> {
    const result = operation(progress);
    if (this.connection.resendsInFlightCommands) return result;
    // This client drops what was in flight at a connection loss without settling it: such an
    // attempt failed uncertainly, and waiting for it would only end at the deadline.
    const lost = this.connection.nextConnectionLoss().then(() => {
      throw new ConnectionError('the connection was lost with the operation in flight');
    });
    return Promise.race([result, lost]);
  }

  private timeout(what: string, progressed: boolean, cause: SluiceError | undefined): TimeoutError {
    const late = progressed
      ? `made no progress for ${this.timeoutMs} ms`
      : `did not finish within ${this.timeoutMs} ms`;
    return new TimeoutError(
      `${what} ${late} (connection to Redis: ${this.connection.redis.status})`,
      cause,
    );
  }
}
