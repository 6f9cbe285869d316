import type { ClientEvents, Events } from '../events.js';
import type { Message } from './prepare.js';

/** Where one copy of a message was stored. */
export interface ConfirmTarget {
  readonly queue: string;
  /** The queue's partition that holds the copy (0 for a queue of one partition). */
  readonly partition: number;
  readonly streamId: string;
}

/** The confirm of a publish: the message is stored in every target queue. */
export interface PublishConfirm {
  readonly messageId: string;
  readonly targets: readonly ConfirmTarget[];
  /** True when the message was already published earlier (idempotent publish). */
  readonly duplicate: boolean;
}

/** A message on its way to its confirm, which settles once. */
export class Publication {
  settled = false;
  /** Redis confirmed the write; a wait for replicas or fsync may still be pending. */
  written = false;
  readonly confirmed: Promise<PublishConfirm>;
  private settle: { resolve(c: PublishConfirm): void; reject(e: unknown): void } | undefined;
  /** When the publish was called, for `publish.confirmed`; 0 when nobody listened then. */
  private readonly startedAt: number;

  constructor(
    readonly message: Message,
    private readonly events: Events<ClientEvents>,
  ) {
    this.confirmed = new Promise<PublishConfirm>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.startedAt = events.has('publish.confirmed') ? performance.now() : 0;
  }

  resolve(confirm: PublishConfirm): void {
    if (this.settled) return;
    this.settled = true;
    this.settle?.resolve(confirm);
    this.message.span?.end(false);
    if (this.startedAt > 0 && this.events.has('publish.confirmed')) {
      const { exchange, routingKey } = this.message;
      this.events.emit('publish.confirmed', {
        ...confirm,
        exchange,
        routingKey,
        durationMs: performance.now() - this.startedAt,
      });
    }
  }

  reject(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.settle?.reject(error);
    this.message.span?.end(true, error);
    if (this.events.has('publish.failed')) {
      const { messageId, exchange, routingKey } = this.message;
      this.events.emit('publish.failed', { messageId, exchange, routingKey, error });
    }
  }
}

/**
 * The confirm of a stored message. A duplicate's targets carry the first publish's stream ids;
 * its message id is the first publish's (kept in the marker when it was not the dedup key).
 */
export function toConfirm(
  message: Message,
  queues: readonly string[],
  partitions: readonly number[],
  duplicate: boolean,
  values: readonly string[],
): PublishConfirm {
  let messageId = duplicate ? message.dedupKey : message.messageId;
  const targets = queues.map((queue, t) => {
    const value = values[t] as string;
    const partition = partitions[t] as number;
    const space = value.indexOf(' ');
    if (space < 0) return { queue, partition, streamId: value };
    messageId = value.slice(space + 1);
    return { queue, partition, streamId: value.slice(0, space) };
  });
  return { messageId, targets, duplicate };
}
