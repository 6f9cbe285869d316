/**
 * A message's death history, as it travels in the envelope: RabbitMQ's `x-death` records and
 * first and last death. Written by the dead-lettering code (src/dead-letter/death.ts).
 */
import { isErrorRecord, type ErrorRecord } from './error-record.js';

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
  /** The per-message expiration it still had when it died (its first death only). */
  readonly originalExpirationMs?: number | undefined;
  /**
   * The last error a handler threw for the message before its latest death of this queue and
   * reason (its message and a trimmed stack); absent when no handler failed. A sluice addition:
   * RabbitMQ's `x-death` has no such field.
   */
  readonly lastError?: ErrorRecord | undefined;
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

/** Every death reason, in the order that counts by reason are listed in. */
export const DEATH_REASONS: readonly DeathReason[] = [
  'rejected',
  'expired',
  'maxlen',
  'delivery_limit',
  'poison',
];

const REASONS = new Set<string>(DEATH_REASONS);

/** Reads a death history as `recordDeath` (dead-letter/death.ts) writes it; else undefined. */
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
  const { count, time, routingKeys, lastError } = value as unknown as Record<string, unknown>;
  return (
    typeof count === 'number' &&
    typeof time === 'number' &&
    Array.isArray(routingKeys) &&
    routingKeys.every((k) => typeof k === 'string') &&
    (lastError === undefined || isErrorRecord(lastError))
  );
}
