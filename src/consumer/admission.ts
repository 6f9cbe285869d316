/**
 * Admission: whether a stream entry may reach a handler. Pure: the same entry, count, queue
 * arguments and time always give the same answer, and nothing is read or written.
 */
import type { Codec } from '../message/codec.js';
import { decodeEnvelope, type Envelope } from '../message/envelope.js';
import type { QueueRecord } from '../topology/types.js';

/** Why an entry is dead-lettered instead of delivered. */
export type Refusal = 'poison' | 'delivery_limit' | 'expired';

/** The queue arguments admission looks at. */
export type AdmissionRules = Pick<QueueRecord, 'maxDeliveries' | 'messageTtlMs'>;

/** Deliver the decoded message, or dead-letter the entry. */
export type Admission =
  | {
      readonly deliver: true;
      readonly envelope: Envelope;
      readonly body: unknown;
      /** Deliveries of the message across requeues, this one included. */
      readonly deliveryCount: number;
    }
  | {
      readonly deliver: false;
      readonly reason: Refusal;
      /** Undefined when the entry was not a readable message. */
      readonly messageId: string | undefined;
      /**
       * Past the delivery limit: the message as it would have been delivered (an ordered
       * consumer that halts on poison keeps it).
       */
      readonly message?: Delivered;
    };

/** A readable message: its envelope, decoded body and delivery count. */
export interface Delivered {
  readonly envelope: Envelope;
  readonly body: unknown;
  /** Deliveries of the message across requeues, this one included. */
  readonly deliveryCount: number;
}

/**
 * How many deliveries a message gets in a queue declared without `maxDeliveries`: the default
 * that RabbitMQ 4.0 gave quorum queues, `x-delivery-limit` 20 (20 redeliveries, so 21
 * deliveries). With the default retry policy (./retry.ts) a message whose handler always fails
 * is dead-lettered about an hour after its first delivery, instead of being redelivered forever.
 */
export const DEFAULT_MAX_DELIVERIES = 21;

/** The most deliveries a message gets in a queue with these rules (Infinity: no limit). */
export function deliveryLimit(rules: AdmissionRules): number {
  const { maxDeliveries } = rules;
  if (maxDeliveries === 'unlimited') return Infinity;
  return maxDeliveries ?? DEFAULT_MAX_DELIVERIES;
}

/**
 * The time a message first entered its queue: kept by a requeue in the entry, else the
 * milliseconds part of its stream id.
 */
function enqueuedAt(envelope: Envelope, streamId: string): number {
  return envelope.enqueuedAt ?? Number(streamId.slice(0, streamId.indexOf('-')));
}

/**
 * Decides what becomes of entry `streamId`, read for the `timesDelivered`-th time (the PEL's
 * count): unreadable (no data, not a sluice envelope, a body the codec refuses) is `poison`;
 * a delivery count past the queue's {@link deliveryLimit} is `delivery_limit`; past its
 * per-message expiration (counted from publish) or the queue's `messageTtlMs` (counted from
 * first entering the queue, requeues notwithstanding) at `nowMs` is `expired`; in that order. Anything else is delivered.
 * A zero expiration or TTL means "deliver now or dead-letter": the read that meets the entry is
 * that delivery, and one that no consumer took at once is dead-lettered by the expiry sweep.
 */
export function admit(
  streamId: string,
  fields: readonly Buffer[] | null,
  timesDelivered: number,
  rules: AdmissionRules,
  nowMs: number,
  codec: Codec,
): Admission {
  let envelope: Envelope;
  let body: unknown;
  try {
    if (fields === null) return { deliver: false, reason: 'poison', messageId: undefined };
    envelope = decodeEnvelope(fields);
    body = codec.decode(envelope.body, envelope.contentType);
  } catch {
    return { deliver: false, reason: 'poison', messageId: undefined };
  }
  const deliveryCount = envelope.redeliveries + timesDelivered;
  const { messageId, expirationMs, publishedAt } = envelope;
  if (deliveryCount > deliveryLimit(rules)) {
    return {
      deliver: false,
      reason: 'delivery_limit',
      messageId,
      message: { envelope, body, deliveryCount },
    };
  }
  const ttl = rules.messageTtlMs;
  if (
    (expirationMs !== undefined && expirationMs > 0 && nowMs >= publishedAt + expirationMs) ||
    (ttl !== undefined && ttl > 0 && nowMs >= enqueuedAt(envelope, streamId) + ttl)
  ) {
    return { deliver: false, reason: 'expired', messageId };
  }
  return { deliver: true, envelope, body, deliveryCount };
}
