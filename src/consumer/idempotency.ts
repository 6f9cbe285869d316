/**
 * Idempotent consumers: a handler runs at most once per idempotency key (by default the dedup
 * key the producer deduplicated on) within the marker's time to live, however often the message
 * was published, redelivered or replayed. With the built-in Redis store, a processing lease on
 * the key is taken before the handler, and the done marker, the handler's recorded writes and
 * the ack are one script after it; a custom {@link IdempotencyStore} (the PostgreSQL inbox)
 * keeps its markers in its own transaction, and sluice acks once it committed.
 */
import type { RedisClient } from '../connection/client.js';
import { toSluiceError } from '../connection/connection.js';
import { InvalidArgumentError, ServerError, StaleDeliveryError } from '../errors/index.js';
import type { Keyspace, QueueKeys } from '../keys/index.js';
import {
  hasMethods,
  optionNames,
  validateIntegerOption,
  validateOptionsObject,
} from '../validation/index.js';
import type { DeliveryImpl } from './delivery.js';
import { Periodic } from './periodic.js';
import { WriteRecorder, type RedisWrites } from './redis-writes.js';
import type { IdempotencyBegin, IdempotencyCommit } from '../connection/script-catalog.js';
import { TickBatch } from './tick-batch.js';
import {
  beginIdempotent,
  commitIdempotent,
  extendIdempotent,
  type BeginItem,
  type CommitItem,
  releaseIdempotent,
} from './scripts.js';
import type { Settlement } from './settlement.js';
import type { Delivery } from './types.js';

/** What a handler gets as its second argument with the built-in Redis store. */
export interface IdempotencyContext {
  /** Redis writes applied with the key's done marker and the ack, in one script, or not at all. */
  readonly tx: RedisWrites;
}

/**
 * A store of idempotency markers other than Redis (the PostgreSQL inbox of `sluice/postgres`):
 * it runs `work` inside its own transaction, in which it also records `key` as done, unless
 * `key` is done already. sluice acks the delivery once `execute` resolved.
 */
export interface IdempotencyStore<C> {
  /**
   * Resolves `'done'` once `work` ran and the key's marker was committed with its effects, or
   * `'duplicate'` (without running `work`) when the key is done already; rejects when `work`
   * or the store failed, with nothing committed.
   */
  execute(
    key: string,
    options: { readonly ttlMs: number; readonly leaseMs: number },
    work: (context: C) => Promise<void>,
  ): Promise<'done' | 'duplicate'>;
}

/** `consume(queue, handler, { idempotency })`; `C` is what the handler gets as `ctx`. */
export interface IdempotencyOptions<C = IdempotencyContext> {
  /** The idempotency key of a delivery. Default: `msg.dedupKey`. */
  readonly key?: ((delivery: Delivery) => string) | undefined;
  /**
   * How long a key stays done (its marker's time to live): a message with the same key within
   * this window is a duplicate. Default 7 days (1 s to 365 days).
   */
  readonly ttlMs?: number | undefined;
  /**
   * How long a consumer holds a key while its handler runs, renewed meanwhile: another
   * consumer with the same key waits for it. Default 30 s (1 s to 1 h).
   */
  readonly leaseMs?: number | undefined;
  /** Where markers live. Default: the queue's Redis (with `ctx.tx`). */
  readonly store?: IdempotencyStore<C> | undefined;
}

/** An idempotent handler: the delivery, and the store's context (`ctx.tx` with Redis). */
export type IdempotentHandler<T = unknown, C = IdempotencyContext> = (
  delivery: Delivery<T>,
  ctx: C,
) => Promise<void> | void;

/** Idempotency settings, options resolved. */
export interface IdempotencySettings {
  readonly key: (delivery: Delivery) => string;
  readonly ttlMs: number;
  readonly leaseMs: number;
  readonly store: IdempotencyStore<unknown> | undefined;
}

const IDEMPOTENCY_OPTIONS = optionNames<IdempotencyOptions<unknown>>({
  key: true,
  ttlMs: true,
  leaseMs: true,
  store: true,
});
const DEFAULT_TTL_MS = 7 * 86_400_000;
const DEFAULT_LEASE_MS = 30_000;
/** The longest idempotency key, in UTF-16 code units. */
const MAX_KEY_LENGTH = 1024;

/** Checks `options.idempotency` and resolves its defaults. */
export function idempotencySettings(options: unknown): IdempotencySettings {
  validateOptionsObject('idempotency', options, IDEMPOTENCY_OPTIONS);
  const { key, ttlMs, leaseMs, store } = options as IdempotencyOptions<unknown>;
  if (key !== undefined && typeof key !== 'function') {
    throw new InvalidArgumentError('idempotency.key must be a function');
  }
  validateIntegerOption('idempotency.ttlMs', ttlMs, 1000, 365 * 86_400_000);
  validateIntegerOption('idempotency.leaseMs', leaseMs, 1000, 3_600_000);
  if (store !== undefined && (typeof store !== 'object' || !hasMethods(store, ['execute']))) {
    throw new InvalidArgumentError('idempotency.store must have an execute method');
  }
  return {
    key: key ?? ((delivery) => delivery.dedupKey),
    ttlMs: ttlMs ?? DEFAULT_TTL_MS,
    leaseMs: leaseMs ?? DEFAULT_LEASE_MS,
    store,
  };
}

/** The key of a delivery, checked: a key function that throws or returns a non-string fails. */
function keyOf(settings: IdempotencySettings, delivery: Delivery): string {
  let key: unknown;
  try {
    key = settings.key(delivery);
  } catch (error) {
    const reason = error instanceof Error ? `: ${error.message}` : '';
    throw new InvalidArgumentError(`the idempotency key function threw${reason}`);
  }
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new InvalidArgumentError(
      `an idempotency key must be a string of 1 to ${MAX_KEY_LENGTH} characters`,
    );
  }
  return key;
}

/** A key this consumer holds the processing lease of, for one delivery. */
interface Held {
  readonly marker: string;
  readonly token: string;
  readonly writes: WriteRecorder;
  /** The writes with their keys, once worked out. */
  declared?: DeclaredWrites;
}

/** Recorded writes as the commit script takes them. */
interface DeclaredWrites {
  readonly keys: string[];
  readonly args: (string | number | Buffer)[][];
}

/** What the idempotent path needs from its consumer. */
export interface IdempotencyContextOf {
  readonly redis: RedisClient;
  readonly keys: Keyspace;
  readonly queue: string;
  /** The queue partition whose deliveries it settles (markers live in its slot). */
  readonly partition: number;
  readonly consumerName: string;
  readonly cluster: boolean;
  /**
   * An ordered consumer's: a key busy elsewhere (a deposed owner's handler) is waited for, never
   * given back, so that the key's later messages do not pass it.
   */
  readonly ordered: boolean;
  /** How many deliveries the consumer holds unsettled (bounds the scripts' ownership scan). */
  held(): number;
  /** The delivery no longer counts against the prefetch. */
  released(delivery: Delivery): void;
  /** A duplicate was acked without running the handler. */
  duplicate(delivery: Delivery): void;
  /** A commit acked a delivery. */
  acked(): void;
  /** A commit dead-lettered a delivery: Redis refused one of its writes. */
  refused(delivery: Delivery): void;
  readonly report: (error: unknown) => void;
}

/** Slack for the scripts' ownership scan: entries taken over into this consumer not yet read. */
const SCAN_SLACK = 16;

/** While a key is busy elsewhere, how long one wait lasts at most before looking again. */
const BUSY_POLL_MS = 250;

/**
 * The Redis store's settlement: in front of the plain one, it commits an ack with the key's
 * done marker and the handler's writes, and gives the key's lease up when the delivery is
 * requeued or dead-lettered instead (no marker is left).
 */
export class IdempotentSettlement implements Settlement {
  private readonly held = new Map<Delivery, Held>();
  /** Commits sent and not yet answered. */
  private readonly committing = new Set<Promise<void>>();
  private readonly renewal: Periodic;
  private serial = 0;
  /** Set by {@link stop}: a key busy elsewhere is no longer waited for. */
  private stopped = false;
  /** The queue's keys and hash tag, worked out once rather than per delivery. */
  private readonly queueKeys: QueueKeys;
  private readonly hashTag: string;
  /** The lease takings and the commits of one tick, each in one script call. */
  private readonly begins: TickBatch<BeginItem, IdempotencyBegin>;
  private readonly commits: TickBatch<CommitItem, IdempotencyCommit>;

  constructor(
    private readonly plain: Settlement,
    private readonly settings: IdempotencySettings,
    private readonly context: IdempotencyContextOf,
  ) {
    this.queueKeys = context.keys.queue(context.queue, context.partition);
    this.hashTag = context.keys.queueHashTag(context.queue, context.partition);
    const { redis, consumerName: consumer } = context;
    this.begins = new TickBatch((items) =>
      beginIdempotent(redis, this.queueKeys, {
        consumer,
        leaseMs: settings.leaseMs,
        limit: items.length + context.held() + SCAN_SLACK,
        items,
      }),
    );
    this.commits = new TickBatch((items) =>
      commitIdempotent(redis, this.queueKeys, {
        consumer,
        ttlMs: settings.ttlMs,
        timeMs: Date.now(),
        limit: items.length + context.held() + SCAN_SLACK,
        items,
      }),
    );
    const everyMs = settings.leaseMs / 3;
    this.renewal = new Periodic(() => this.renew(), everyMs, context.report, everyMs);
  }

  /**
   * Runs `handler` for `delivery` once {@link acquire} took its key's lease, then commits (unless
   * the handler settled it): a commit that fails fails the handler, and one refused as stale
   * (another consumer took over) is only counted.
   */
  async run<T, C>(delivery: DeliveryImpl<T>, handler: IdempotentHandler<T, C>): Promise<void> {
    const writes = await this.acquire(delivery);
    if (writes === undefined) return;
    await handler(delivery, { tx: writes } as C);
    const held = this.held.get(delivery);
    if (held === undefined || delivery.settled) return;
    // Keys of `tx.call` writes checked first, so that one outside the queue's slot fails the
    // handler (retried, then dead-lettered) before anything is settled.
    held.declared = await this.declared(held.writes);
    try {
      await delivery.settleWith(() => this.commit(delivery, held));
    } catch (error) {
      if (!(error instanceof StaleDeliveryError)) throw error;
    }
  }

  /**
   * Takes the processing lease of `delivery`'s key and gives the delivery its recorded writes
   * (`msg.tx`); undefined when there is nothing to handle: a key done already acks the delivery
   * as a duplicate, a delivery taken over by another consumer is theirs, and a key another
   * consumer holds is waited for (up to the lease time), then the delivery goes back for later.
   */
  async acquire(delivery: DeliveryImpl): Promise<WriteRecorder | undefined> {
    const key = keyOf(this.settings, delivery);
    const { queue, partition } = this.context;
    const marker = this.context.keys.idempotencyMarker(queue, key, partition);
    const token = `${this.context.consumerName}:${++this.serial}`;
    const waitUntil = Date.now() + this.settings.leaseMs;
    for (;;) {
      const begun = await this.begins.add({ marker, entryId: delivery.streamId, token });
      if (begun.kind === 'acquired') break;
      if (begun.kind === 'duplicate' || begun.kind === 'stale') {
        delivery.settledElsewhere();
        this.context.released(delivery);
        if (begun.kind === 'duplicate') {
          this.context.acked();
          this.context.duplicate(delivery);
        }
        // Stale: another consumer took it over, it is theirs to handle.
        else this.plain.stale(delivery);
        return undefined;
      }
      if (this.stopped || (!this.context.ordered && Date.now() >= waitUntil)) {
        // Back in its place for any consumer to take over, uncounted: waiting is not a failure.
        delivery.settledElsewhere();
        await this.plain.giveBack([delivery], false);
        return undefined;
      }
      const waitMs = Math.min(Math.max(begun.leftMs, 10), BUSY_POLL_MS);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
    const writes = new WriteRecorder(this.hashTag, this.context.cluster);
    this.held.set(delivery, { marker, token, writes });
    delivery.tx = writes;
    return writes;
  }

  ack(delivery: Delivery): Promise<void> {
    const held = this.held.get(delivery);
    return held === undefined ? this.plain.ack(delivery) : this.commit(delivery, held);
  }

  autoAck(delivery: Delivery): Promise<void> {
    // A held delivery is committed by run(); what is left here has no key (or gave it up).
    return this.plain.autoAck(delivery);
  }

  /** Commits; tracked until answered, so that closing waits for it. */
  private commit(delivery: Delivery, held: Held): Promise<void> {
    const call = this.sendCommit(delivery, held);
    this.committing.add(call);
    const untrack = (): void => void this.committing.delete(call);
    call.then(untrack, untrack);
    return call;
  }

  private async sendCommit(delivery: Delivery, held: Held): Promise<void> {
    this.held.delete(delivery);
    this.context.released(delivery);
    const writes = held.declared ?? (await this.declared(held.writes));
    const committed = await this.commits.add({
      marker: held.marker,
      entryId: delivery.streamId,
      token: held.token,
      writes,
    });
    if (committed.kind === 'stale') throw this.plain.stale(delivery);
    if (committed.kind === 'refused') {
      this.context.refused(delivery);
      throw new ServerError(
        `write ${committed.write} of delivery ${delivery.streamId} was refused by Redis ` +
          `(${committed.error}); the writes before it were applied, its key is done and the ` +
          'message was dead-lettered',
      );
    }
    this.context.acked();
  }

  /**
   * The writes with their keys: a call's keys come from COMMAND GETKEYS on a cluster-mode
   * server (where each must be in the queue's slot); a standalone server needs none declared.
   */
  private async declared(recorder: WriteRecorder): Promise<DeclaredWrites> {
    const keys: string[] = [];
    for (const write of recorder.recorded) {
      let writeKeys = write.keys;
      if (writeKeys === undefined && this.context.cluster) {
        try {
          writeKeys = (await this.context.redis.call(
            'COMMAND',
            'GETKEYS',
            ...write.args,
          )) as string[];
        } catch (error) {
          throw toSluiceError(
            error,
            this.context.redis,
            `COMMAND GETKEYS ${String(write.args[0])}`,
          );
        }
        recorder.checkSlots(String(write.args[0]), writeKeys);
      }
      keys.push(...(writeKeys ?? []));
    }
    return { keys, args: recorder.recorded.map((write) => [...write.args]) };
  }

  async requeue(delivery: Delivery, delayMs: number, lastError?: string): Promise<void> {
    await this.release(delivery);
    return this.plain.requeue(delivery, delayMs, lastError);
  }

  async reject(delivery: Delivery): Promise<void> {
    await this.release(delivery);
    return this.plain.reject(delivery);
  }

  /**
   * A closing consumer's deliveries go back with their keys still leased: a handler still
   * running may yet commit, and no other consumer takes the key before the lease ends.
   */
  giveBack(deliveries: readonly Delivery[], counted: boolean): Promise<void> {
    return this.plain.giveBack(deliveries, counted);
  }

  extend(delivery: Delivery): Promise<void> {
    return this.plain.extend(delivery);
  }

  stale(delivery: Delivery): StaleDeliveryError {
    return this.plain.stale(delivery);
  }

  async idle(): Promise<void> {
    await Promise.allSettled([this.plain.idle(), ...this.committing]);
  }

  /** Stops renewing leases (the consumer closes, or gave its partition up). */
  stop(): Promise<void> {
    this.stopped = true;
    return this.renewal.stop();
  }

  /** Gives up `delivery`'s key lease, if held; a failure only delays the key until it expires. */
  private async release(delivery: Delivery): Promise<void> {
    const held = this.held.get(delivery);
    if (held === undefined) return;
    this.held.delete(delivery);
    await releaseIdempotent(this.context.redis, held.marker, held.token).catch((error: unknown) =>
      this.context.report(error),
    );
  }

  private async renew(): Promise<void> {
    const { redis } = this.context;
    if (this.held.size === 0 || redis.status !== 'ready') return;
    const held = [...this.held.values()];
    await extendIdempotent(redis, {
      markers: held.map((h) => h.marker),
      tokens: held.map((h) => h.token),
      leaseMs: this.settings.leaseMs,
    });
  }
}

/**
 * A custom store's path: `store.execute` runs the handler in the store's transaction unless
 * the key is done; sluice acks afterwards either way (a duplicate is counted).
 */
export async function runWithStore<T>(
  settings: IdempotencySettings,
  store: IdempotencyStore<unknown>,
  delivery: DeliveryImpl<T>,
  handler: IdempotentHandler<T, unknown>,
  duplicate: (delivery: Delivery) => void,
): Promise<void> {
  const key = keyOf(settings, delivery);
  const outcome = await store.execute(
    key,
    { ttlMs: settings.ttlMs, leaseMs: settings.leaseMs },
    async (context) => {
      await handler(delivery, context);
    },
  );
  if (outcome === 'duplicate') duplicate(delivery);
  else if (outcome !== 'done') {
    throw new InvalidArgumentError(`the idempotency store answered '${String(outcome)}'`);
  }
}
