import { EventEmitter } from 'node:events';
import type { ConfirmTarget } from './producer/publication.js';

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

/** Instrumentation events of a client (`sluice.on(name, listener)`). */
export interface ClientEvents {
  'publish.confirmed': [event: PublishConfirmedEvent];
  'publish.retried': [event: PublishRetriedEvent];
  'publish.failed': [event: PublishFailedEvent];
  'connection.lost': [event: ConnectionEvent];
  'connection.restored': [event: ConnectionEvent];
}

/** A map of event names to listener arguments. */
export type EventMap<E> = { [K in keyof E]: unknown[] };

/**
 * Typed events for instrumentation. Emitters ask {@link listening} before they build an
 * event, so an event nobody listens to costs one lookup; a listener that throws is the
 * listener's problem, never the emitter's (the error is dropped, not thrown into sluice).
 */
export class Events<E extends EventMap<E>> {
  private readonly emitter = new EventEmitter();

  /** Whether anyone listens to `name`. */
  listening(name: keyof E & string): boolean {
    return this.emitter.listenerCount(name) > 0;
  }

  on<K extends keyof E & string>(name: K, listener: (...args: E[K]) => void): void {
    this.emitter.on(name, listener as (...args: unknown[]) => void);
  }

  off<K extends keyof E & string>(name: K, listener: (...args: E[K]) => void): void {
    this.emitter.off(name, listener as (...args: unknown[]) => void);
  }

  emit<K extends keyof E & string>(name: K, ...args: E[K]): void {
    for (const listener of this.emitter.listeners(name)) {
      try {
        (listener as (...args: E[K]) => void)(...args);
      } catch {
        // A failing listener must not fail what it reports on, nor keep the others from it.
      }
    }
  }
}
