import type {
  DeathHistory,
  DeathReason,
  DeathRecord,
  DeathSummary,
} from '../message/death-history.js';
import type { ErrorRecord } from '../message/error-record.js';

/** One dead-lettering event. */
export interface DeathEvent {
  readonly queue: string;
  readonly reason: DeathReason;
  readonly time: number;
  readonly exchange: string;
  readonly routingKey: string;
  readonly expirationMs?: number;
  /** The last error a handler threw for the message before it died, if one did. */
  readonly lastError?: ErrorRecord;
}

/**
 * Adds a death to a history as RabbitMQ does: the record of the same queue and reason
 * has its count raised and moves to the front; otherwise a new record goes in front. The
 * record's `lastError` is this death's (none if no handler failed before it).
 */
export function recordDeath(history: DeathHistory | undefined, event: DeathEvent): DeathHistory {
  const summary: DeathSummary = {
    queue: event.queue,
    reason: event.reason,
    exchange: event.exchange,
  };
  const previous = history?.deaths ?? [];
  const same = previous.find((d) => d.queue === event.queue && d.reason === event.reason);
  const others = previous.filter((d) => d !== same);
  const record: { -readonly [K in keyof DeathRecord]: DeathRecord[K] } =
    same === undefined
      ? {
          queue: event.queue,
          reason: event.reason,
          count: 1,
          time: event.time,
          exchange: event.exchange,
          routingKeys: [event.routingKey],
          // On whatever death the message still had its expiration at, as RabbitMQ 3.10 does
          // (the copy loses it, so only the first death of a message that had one).
          ...(event.expirationMs !== undefined ? { originalExpirationMs: event.expirationMs } : {}),
        }
      : { ...same, count: same.count + 1 };
  // An earlier death's error does not explain this one.
  if (event.lastError === undefined) delete record.lastError;
  else record.lastError = event.lastError;
  return { deaths: [record, ...others], first: history?.first ?? summary, last: summary };
}

/**
 * RabbitMQ's cycle rule: dead-lettering into `queue` is a cycle (and the copy for that
 * queue is dropped) when the queue already appears in the history and no death since,
 * its own included, was a rejection. A rejection means a client chose to send it round.
 */
export function isDeadLetterCycle(history: DeathHistory, queue: string): boolean {
  const index = history.deaths.findIndex((d) => d.queue === queue);
  if (index === -1) return false;
  return history.deaths.slice(0, index + 1).every((d) => d.reason !== 'rejected');
}
