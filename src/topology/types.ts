/** The four RabbitMQ exchange types. */
export type ExchangeType = 'direct' | 'topic' | 'fanout' | 'headers';

/** A header or binding-argument value: JSON scalars only, compared by type and value. */
export type HeaderValue = string | number | boolean;

/** Message headers. */
export type Headers = Readonly<Record<string, HeaderValue>>;

/**
 * Arguments of a binding to a headers exchange: `x-match` (`all` by default, `any`,
 * `all-with-x`, `any-with-x`) and the header values to compare.
 */
export type BindingArguments = Readonly<Record<string, HeaderValue>>;

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

/** A declared queue and its arguments, as stored in the topology. */
export interface QueueRecord {
  readonly name: string;
  readonly durable: boolean;
  readonly deadLetterExchange?: string;
  readonly deadLetterRoutingKey?: string;
  readonly maxDeliveries?: number;
  readonly ackTimeoutMs?: number;
  readonly messageTtlMs?: number;
  readonly maxLength?: number;
  readonly overflow?: OverflowPolicy;
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
