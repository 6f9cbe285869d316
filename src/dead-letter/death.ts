/** Why a message was dead-lettered; RabbitMQ's reasons plus `poison` for unreadable entries. */
export type DeathReason = 'rejected' | 'expired' | 'maxlen' | 'delivery_limit' | 'poison';

/** One entry of a message's death history, like an element of RabbitMQ's `x-death`. */
export interface DeathRecord {
  /** The queue the message was dead-lettered from. */
  readonly queue: string;
  readonly reason: DeathReason;
  /** How many times the message was dead-lettered from this queue for this reason. */
  readonly count: number;
  /** When it first happened for this queue and reason, milliseconds since the epoch. */
  readonly time: number;
  /** The exchange the message had been published to (a DLX when dead-lettered before). */
  readonly exchange: string;
  readonly routingKeys: readonly string[];
  /** The per-message expiration it had, when it was dead-lettered for expiring. */
  readonly originalExpirationMs?: number;
}

/** Where a message died, as RabbitMQ's `x-first-death-*` and `x-last-death-*` headers. */
export interface DeathSummary {
  readonly queue: string;
  readonly reason: DeathReason;
  readonly exchange: string;
}

/** A message's death history: records most recent first, plus the first and last death. */
export interface DeathHistory {
  readonly deaths: readonly DeathRecord[];
  readonly first: DeathSummary;
  readonly last: DeathSummary;
}

/** One dead-lettering event. */
export interface DeathEvent {
  readonly queue: string;
  readonly reason: DeathReason;
  readonly time: number;
  readonly exchange: string;
  readonly routingKey: string;
  readonly expirationMs?: number;
}

/**
 * Adds a death to a history as RabbitMQ does: the record of the same queue and reason
 * has its count raised and moves to the front; otherwise a new record goes in front.
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
  const record: DeathRecord =
    same === undefined
      ? {
          queue: event.queue,
          reason: event.reason,
          count: 1,
          time: event.time,
          exchange: event.exchange,
          routingKeys: [event.routingKey],
          ...(event.reason === 'expired' && event.expirationMs !== undefined
            ? { originalExpirationMs: event.expirationMs }
            : {}),
        }
      : { ...same, count: same.count + 1 };
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

const REASONS = new Set<string>(['rejected', 'expired', 'maxlen', 'delivery_limit', 'poison']);

/** Reads a death history written by {@link recordDeath}; undefined when it is not one. */
export function parseDeathHistory(value: unknown): DeathHistory | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { deaths, first, last } = value as Record<string, unknown>;
  if (!Array.isArray(deaths) || !isSummary(first) || !isSummary(last)) return undefined;
  if (!deaths.every(isRecord)) return undefined;
  return { deaths, first, last };
}

function isSummary(value: unknown): value is DeathSummary {
  if (typeof value !== 'object' || value === null) return false;
  const { queue, reason, exchange } = value as Record<string, unknown>;
  return (
    typeof queue === 'string' &&
    typeof exchange === 'string' &&
    typeof reason === 'string' &&
    REASONS.has(reason)
  );
}

function isRecord(value: unknown): value is DeathRecord {
  if (!isSummary(value)) return false;
  const { count, time, routingKeys } = value as unknown as Record<string, unknown>;
  return (
    typeof count === 'number' &&
    typeof time === 'number' &&
    Array.isArray(routingKeys) &&
    routingKeys.every((k) => typeof k === 'string')
  );
}
