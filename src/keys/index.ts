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
  /**
   * The queue's copy of the topology version, in the queue's own slot (see src/lua/fence.lua):
   * what lets a publish check, in one slot, that it was routed with a topology that is current.
   */
  readonly fence: string;
  /** Registered consumers: a sorted set of consumer names by when their lease ends (ms). */
  readonly consumers: string;
  /**
   * The partition's owner under ordered consumption: a hash of the owning consumer, its
   * fencing token and when its lease ends (see src/lua/own.lua). The token counter stays when
   * the owner goes, so tokens only grow.
   */
  readonly owner: string;
  /**
   * Partition 0 only: the ordered consumers of the queue, a sorted set of names by when their
   * membership lease ends (ms); `joined`, a hash of name to when it joined, orders them.
   */
  readonly members: string;
  readonly joined: string;
  /**
   * Counters of the partition that Redis does not keep itself, a hash written by the scripts
   * that change them: `acked` (acks, duplicates an idempotent consumer acked included),
   * `reappended` (entries a requeue or a delayed retry's promotion appended again),
   * `redelivered` (failed deliveries given another try), `deadLettered:<reason>` (messages that
   * entered the dead-letter outbox, src/lua/lib/to_outbox.lua) and `dropped` (dead letters
   * deleted with nowhere to go, src/lua/drop.lua). With the stream's own `entries-added` they
   * give the queue's totals (src/queue/data.ts).
   */
  readonly stats: string;
  /**
   * Never written. Every publish call on a cluster-mode server lists it, so that while the
   * partition's slot migrates Redis refuses the call (TRYAGAIN: a multi-key command with a key
   * missing) instead of running it on the importing node after an ASK redirection: a confirm's
   * WAIT goes to the slot's owner in the client's map, which must be the node that took the
   * write. Once the migration ends, MOVED leads the call and the map to the new owner.
   */
  readonly slotGuard: string;
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

  /** Keys of one queue partition; the queue-wide ones (consumers, members) are partition 0's. */
  queue(queue: string, partition = 0): QueueKeys {
    const prefix = this.queuePrefix(queue, partition);
    return {
      stream: `${prefix}:stream`,
      deadLetters: `${prefix}:dead-letters`,
      delayed: `${prefix}:delayed`,
      delayedEntries: `${prefix}:delayed-entries`,
      fence: `${prefix}:fence`,
      consumers: `${prefix}:consumers`,
      owner: `${prefix}:owner`,
      members: `${prefix}:members`,
      joined: `${prefix}:joined`,
      stats: `${prefix}:stats`,
      slotGuard: `${prefix}:slot-guard`,
    };
  }

  /**
   * Publish dedup markers of one queue partition for one dedup window: two hashes (slots 0
   * and 1) of dedup key to the stream id of the copy that the first publish appended there.
   * The publish script writes the slot of the current time bucket and reads both, so a marker
   * lives from one to two windows (see src/lua/publish.lua). In the queue's hash tag, so that
   * the publish call of that queue's slot checks and records them together with the append.
   */
  dedupSlots(queue: string, windowMs: number, partition = 0): [slot0: string, slot1: string] {
    const prefix = `${this.queuePrefix(queue, partition)}:dedup:${windowMs}`;
    return [`${prefix}:0`, `${prefix}:1`];
  }

  /**
   * The marker of idempotency key `key` in one queue partition: the key's processing lease,
   * then its done marker (see src/lua/idem_begin.lua).
   */
  idempotencyMarker(queue: string, key: string, partition = 0): string {
    return `${this.queuePrefix(queue, partition)}:idem:${key}`;
  }

  /** A SCAN MATCH pattern for every dedup slot of one queue partition, whatever its window. */
  dedupSlotPattern(queue: string, partition = 0): string {
    return `${escapeGlob(this.queuePrefix(queue, partition))}:dedup:*`;
  }

  /** `{<ns>:q:<queue>:<partition>}`: the hash tag of every key of one queue partition. */
  queueHashTag(queue: string, partition = 0): string {
    return `{${this.namespace}:q:${queue}:${partition}}`;
  }

  /** A SCAN MATCH pattern for every idempotency marker of one queue partition. */
  idempotencyPattern(queue: string, partition = 0): string {
    return `${escapeGlob(this.queuePrefix(queue, partition))}:idem:*`;
  }

  /** `<ns>:{<ns>:q:<queue>:<partition>}`: the start of every key of one queue partition. */
  private queuePrefix(queue: string, partition: number): string {
    return `${this.namespace}:${this.queueHashTag(queue, partition)}`;
  }
}

/** `text` with the SCAN MATCH wildcards (`* ? [ ] \`) escaped, to match it literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/gu, '\\$&');
}

/** The consumer group every queue stream carries. */
export const CONSUMER_GROUP = 'sluice';

/**
 * The consumer of the group that holds deliveries given back in place (src/lua/release.lua)
 * until a consumer takes them over: they count as ready, not as unacked. No consumer of sluice
 * is named so (their names are host-pid-random).
 */
export const RELEASED_HOLDER = '~released';
