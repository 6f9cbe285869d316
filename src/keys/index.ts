/**
 * The one key schema (DESIGN.md section 2). Nothing else in sluice builds key names.
 *
 * Keys that one script touches share a hash tag so that every operation works on
 * Redis Cluster: the topology lives under `{<ns>}`, each queue partition under
 * `{<ns>:q:<queue>:<partition>}`.
 */
export interface QueueKeys {
  /** The stream holding the queue's messages. */
  readonly stream: string;
  /**
   * Dead-letter outbox: entries removed from the queue (rejected, expired, over the
   * delivery limit, poison, dropped by overflow) wait here, in the queue's own slot,
   * until they are routed to the dead-letter exchange.
   */
  readonly deadLetters: string;
  /** Delayed retries: sorted set of retry ids scored by due time. */
  readonly delayed: string;
  /** Delayed retries: hash of retry id to the packed entry. */
  readonly delayedEntries: string;
  /** Publish dedup markers: hash of dedup key to the confirm of its first publish. */
  readonly dedup: string;
}

/** Key names of one namespace. */
export class Keyspace {
  readonly topologyExchanges: string;
  readonly topologyQueues: string;
  readonly topologyBindings: string;
  readonly topologyVersion: string;

  constructor(readonly namespace: string) {
    const topology = `${namespace}:{${namespace}}:topology`;
    this.topologyExchanges = `${topology}:exchanges`;
    this.topologyQueues = `${topology}:queues`;
    this.topologyBindings = `${topology}:bindings`;
    this.topologyVersion = `${topology}:version`;
  }

  /** Keys of one queue partition (partition 0 until partitioned queues exist). */
  queue(queue: string, partition = 0): QueueKeys {
    const tag = `{${this.namespace}:q:${queue}:${partition}}`;
    const prefix = `${this.namespace}:${tag}`;
    return {
      stream: `${prefix}:stream`,
      deadLetters: `${prefix}:dead-letters`,
      delayed: `${prefix}:delayed`,
      delayedEntries: `${prefix}:delayed-entries`,
      dedup: `${prefix}:dedup`,
    };
  }
}

/** The consumer group every queue stream carries. */
export const CONSUMER_GROUP = 'sluice';
