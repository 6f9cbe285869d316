import type { BindingArguments } from '../routing/headers.js';

/** The four RabbitMQ exchange types. */
export type ExchangeType = 'direct' | 'topic' | 'fanout' | 'headers';

/** A declared exchange as stored in the topology. */
export interface ExchangeRecord {
  readonly name: string;
  readonly type: ExchangeType;
  readonly durable: boolean;
  readonly internal: boolean;
  readonly alternateExchange?: string;
}

/** What happens when a queue is at `maxLength`. */
export type OverflowPolicy = 'reject-publish' | 'drop-head' | 'reject-publish-dlx';

/** Queue arguments, stored with the queue and enforced by producers and consumers. */
export interface QueueOptions {
  /** Recorded for RabbitMQ parity; all topology is stored in Redis. Default true. */
  readonly durable?: boolean;
  /** Exchange that dead letters of this queue are published to (`''`: the default exchange). */
  readonly deadLetterExchange?: string | undefined;
  /** Routing key of dead letters; default: the message's own routing key. */
  readonly deadLetterRoutingKey?: string | undefined;
  /**
   * How many deliveries a message gets (1 to 1 000 000): the one after them is dead-lettered
   * (`delivery_limit`) instead. Default 21 (RabbitMQ 4.0's `x-delivery-limit` 20); `'unlimited'`
   * redelivers a message for as long as it fails.
   */
  readonly maxDeliveries?: number | 'unlimited' | undefined;
  /** How long a delivery may stay unacked without a lease renewal before it is reclaimed. Default 30 000. */
  readonly ackTimeoutMs?: number | undefined;
  /** Messages older than this (since entering the queue) are dead-lettered (`expired`). */
  readonly messageTtlMs?: number | undefined;
  /** Most ready messages the queue holds; see `overflow`. */
  readonly maxLength?: number | undefined;
  /** What a publish to a full queue does. */
  readonly overflow?: OverflowPolicy | undefined;
  /**
   * How many partitions the queue has (1 to 1024, default 1): each its own stream in a hash
   * slot of its own. A publish goes to the partition of its `partitionKey` (default: its
   * routing key), so that one key's messages stay in one partition, in publish order. On a
   * partitioned queue `maxLength` applies to each partition.
   */
  readonly partitions?: number | undefined;
  /**
   * Single active consumer, as RabbitMQ's `x-single-active-consumer`: one consumer of the queue
   * receives at a time, the others stand by and the first of them takes over, in order, when it
   * goes. Its consumers are ordered consumers (see `ConsumeOptions.ordered`).
   */
  readonly singleActiveConsumer?: boolean | undefined;
}

/** A declared queue and its arguments, as stored in the topology. */
export interface QueueRecord extends QueueOptions {
  readonly name: string;
  readonly durable: boolean;
}

/** Where a binding delivers: a queue, or another exchange (exchange-to-exchange binding). */
export type DestinationType = 'queue' | 'exchange';

/** One binding: messages of `source` that match go to `destination`. */
export interface BindingRecord {
  readonly source: string;
  readonly destination: string;
  readonly destinationType: DestinationType;
  /** Routing or binding key; `""` for fanout and headers bindings. */
  readonly bindingKey: string;
  /** Header arguments; empty unless the source is a headers exchange. */
  readonly arguments: BindingArguments;
}

/** A consistent read of the whole topology at one version. */
export interface TopologySnapshot {
  readonly version: number;
  readonly exchanges: ReadonlyMap<string, ExchangeRecord>;
  readonly queues: ReadonlyMap<string, QueueRecord>;
  readonly bindings: readonly BindingRecord[];
}

/** What {@link Sluice.listTopology} reports: the topology at one version, sorted by name. */
export interface TopologyListing {
  /** The topology version: it grows with every change. */
  readonly version: number;
  readonly exchanges: readonly ExchangeRecord[];
  readonly queues: readonly QueueRecord[];
  readonly bindings: readonly BindingRecord[];
}
