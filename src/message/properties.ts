import type { DeathHistory } from './death-history.js';
import type { Headers } from './headers.js';

/** What a stored message carries besides its body, as a delivery and the DLQ tools show it. */
export interface MessageProperties {
  /** The entry's id in the queue's stream. */
  readonly streamId: string;
  readonly messageId: string;
  /**
   * The key the producer deduplicated on: its `dedupKey`, else the message id. It travels with
   * every copy (dead letters, replays), so a consumer can deduplicate on it long after the
   * publish dedup window (the default key of an idempotent consumer).
   */
  readonly dedupKey: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly headers: Headers;
  readonly contentType: string;
  /** Publish time, milliseconds since the epoch. */
  readonly publishedAt: number;
  /** Set when the message was dead-lettered before: its death records, first and last death. */
  readonly deathHistory: DeathHistory | undefined;
  /**
   * The W3C trace context the message was published in (`traceparent` header format): the
   * publish span's when `@opentelemetry/api` traced it, else the publish's `traceparent`
   * option. Dead letters and replays keep it.
   */
  readonly traceparent: string | undefined;
  /** The W3C `tracestate` that goes with {@link traceparent}. */
  readonly tracestate: string | undefined;
}
