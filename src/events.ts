import type { ConsumerEvents } from './consumer/types.js';
import type { SluiceError } from './errors/index.js';
import type { ConfirmTarget } from './producer/publication.js';
import { validateListener } from './validation/index.js';

/** A publish was confirmed at its durability. */
export interface PublishConfirmedEvent {
  readonly messageId: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly targets: readonly ConfirmTarget[];
  readonly duplicate: boolean;
  /** From the publish call to its confirm. */
  readonly durationMs: number;
}

/** A script call of the producer failed transiently and is tried again. */
export interface PublishRetriedEvent {
  /** The messages of the call. */
  readonly messageIds: readonly string[];
  /** The attempt that failed, 1 for the first. */
  readonly attempt: number;
  readonly error: unknown;
}

/** A publish rejected: its error is the one the caller's promise rejects with. */
export interface PublishFailedEvent {
  readonly messageId: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly error: unknown;
}

/** The client's connection to Redis broke, or came back. */
export interface ConnectionEvent {
  /** When it happened, ms since the epoch. */
  readonly time: number;
}

/**
 * Dead-lettering the expired messages at a queue's head, which this client does for the
 * messages it published, failed; it tries again within a second.
 */
export interface ExpiryFailedEvent {
  readonly queue: string;
  readonly error: SluiceError;
}

/** Instrumentation events of a client (`sluice.on(name, listener)`), by name. */
export interface ClientEvents {
  'publish.confirmed': PublishConfirmedEvent;
  'publish.retried': PublishRetriedEvent;
  'publish.failed': PublishFailedEvent;
  'connection.lost': ConnectionEvent;
  'connection.restored': ConnectionEvent;
  'expiry.failed': ExpiryFailedEvent;
}

/** The names of a client's events (the compiler checks that none is missing). */
export const CLIENT_EVENT_NAMES: Readonly<Record<keyof ClientEvents, true>> = {
  'publish.confirmed': true,
  'publish.retried': true,
  'publish.failed': true,
  'connection.lost': true,
  'connection.restored': true,
  'expiry.failed': true,
};

/** The names of a consumer's events (the compiler checks that none is missing). */
export const CONSUMER_EVENT_NAMES: Readonly<Record<keyof ConsumerEvents, true>> = {
  'delivery.handled': true,
  'delivery.failed': true,
  'delivery.deadLettered': true,
  'delivery.duplicate': true,
  'delivery.reclaimed': true,
  'connection.lost': true,
  'connection.restored': true,
  readError: true,
  groupRecreated: true,
  cancelled: true,
  'partition.assigned': true,
  'partition.revoked': true,
  'key.halted': true,
};

/**
 * Typed events for instrumentation, of clients and of consumers, cheap enough for the hot path:
 * emitters ask {@link Events.has} before they build a payload, so an event nobody listens to
 * costs one map lookup.
 */
type Listener = (event: never) => void;

/** Listeners by event name; `E` maps each name to its payload type. */
export class Events<E extends object> {
  private readonly listeners = new Map<keyof E, Listener[]>();
  private readonly names: ReadonlySet<string>;

  /** `names`: every event name of `E`; listening to another one is refused. */
  constructor(names: Readonly<Record<keyof E, true>>) {
    this.names = new Set(Object.keys(names));
  }

  /**
   * Adds a listener (again: called once more per event, as Node's EventEmitter does). An
   * unknown name or a listener that is not a function fails with InvalidArgumentError.
   */
  on<K extends keyof E>(name: K, listener: (event: E[K]) => void): void {
    validateListener(name, listener, this.names);
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
  }

  /** Removes one registration of a listener; checked as {@link on} checks it. */
  off<K extends keyof E>(name: K, listener: (event: E[K]) => void): void {
    validateListener(name, listener, this.names);
    const current = this.listeners.get(name);
    const index = current?.indexOf(listener) ?? -1;
    if (current === undefined || index < 0) return;
    const rest = current.filter((_, i) => i !== index);
    if (rest.length === 0) this.listeners.delete(name);
    else this.listeners.set(name, rest);
  }

  /** True when `name` has a listener: check it before building a payload. */
  has(name: keyof E): boolean {
    return this.listeners.has(name);
  }

  /**
   * Calls each listener of `name`. A listener that throws (or returns a promise that rejects)
   * stops neither the others nor the emitter: its failure is its own, not the consumer's.
   */
  emit<K extends keyof E>(name: K, event: E[K]): void {
    const current = this.listeners.get(name);
    if (current === undefined) return;
    // The array is replaced, never changed, on on/off: a listener removing itself is safe.
    for (const listener of current) callListener(listener as (event: E[K]) => unknown, event);
  }
}

/**
 * Calls a callback of the application (an event listener, a replay's `onProgress`) whose
 * failure is its own: a throw, or a promise that rejects, is dropped, and stops nothing.
 */
export function callListener<A extends unknown[]>(
  listener: (...args: A) => unknown,
  ...args: A
): void {
  try {
    const outcome = listener(...args);
    if (typeof (outcome as PromiseLike<unknown> | undefined)?.then === 'function') {
      (outcome as PromiseLike<unknown>).then(undefined, ignore);
    }
  } catch {
    // See above: the listener's own failure.
  }
}

function ignore(): void {
  // A rejected listener promise, already accounted for (see callListener).
}
