import type { Redis } from 'ioredis';
import { v7 as uuidv7 } from 'uuid';
import { runScript, type ScriptArg } from '../connection/scripts.js';
import {
  AccessRefusedError,
  InvalidArgumentError,
  MessageTooLargeError,
  NotFoundError,
  SluiceError,
  UnroutableError,
} from '../errors/index.js';
import type { Keyspace } from '../keys/index.js';
import type { Codec } from '../message/codec.js';
import { encodeEnvelope } from '../message/envelope.js';
import type { Router } from '../routing/router.js';
import type { TopologyCache } from '../topology/cache.js';
import type { Headers } from '../topology/types.js';
import {
  validateBooleanOption,
  validateExchangeReference,
  validateHeaders,
  validateIntegerOption,
  validateOptionsObject,
  validateRoutingKey,
  validateStringOption,
} from '../validation/index.js';

/** Options of one publish, named as in amqplib where they exist there. */
export interface PublishOptions {
  /** Reject with UnroutableError when no queue matches (instead of resolving with no targets). */
  readonly mandatory?: boolean;
  readonly headers?: Headers;
  /** Defaults to a UUID v7. */
  readonly messageId?: string;
  /** Overrides the codec's content type. */
  readonly contentType?: string;
  readonly correlationId?: string;
  /** Time to live of this message, from publish. */
  readonly expirationMs?: number;
}

/** One message of {@link Producer.publishBatch}. */
export interface BatchMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: unknown;
  readonly options?: PublishOptions;
}

/** Where one copy of a message was stored. */
export interface ConfirmTarget {
  readonly queue: string;
  readonly streamId: string;
}

/** The confirm of a publish: the message is stored in every target queue. */
export interface PublishConfirm {
  readonly messageId: string;
  readonly targets: readonly ConfirmTarget[];
  /** True when the message was already published earlier (idempotent publish). */
  readonly duplicate: boolean;
}

interface Pending {
  readonly exchange: string;
  readonly routingKey: string;
  readonly headers: Headers;
  readonly mandatory: boolean;
  readonly messageId: string;
  readonly fields: readonly ScriptArg[];
  readonly resolve: (confirm: PublishConfirm) => void;
  readonly reject: (error: unknown) => void;
}

interface Routed {
  readonly message: Pending;
  readonly queues: readonly string[];
}

/** Options of the producer, set once at connect. */
export interface ProducerOptions {
  readonly redis: Redis;
  readonly keys: Keyspace;
  readonly topology: TopologyCache;
  readonly codec: Codec;
  readonly maxBodyBytes: number;
}

/** Messages per script call: bounds one call's latency and Lua stack use. */
const MAX_CALL_MESSAGES = 512;
/** Topology changes racing one publish before it gives up. */
const MAX_STALE_RETRIES = 8;

/**
 * Publishes with confirms. Publishes issued in the same tick are coalesced into one
 * script call (as Kafka producers linger), each keeping its own confirm.
 */
export class Producer {
  private queue: Pending[] = [];
  private flushScheduled = false;

  constructor(private readonly options: ProducerOptions) {}

  /** Publishes one message; resolves once it is appended to every queue it routes to. */
  // async so that a validation error rejects; the body up to the Promise runs synchronously,
  // which keeps publishes of one tick in one batch.
  async publish(
    exchange: string,
    routingKey: string,
    body: unknown,
    options: PublishOptions = {},
  ): Promise<PublishConfirm> {
    const pending = this.prepare({ exchange, routingKey, body, options });
    return new Promise<PublishConfirm>((resolve, reject) =>
      this.enqueue([pending(resolve, reject)]),
    );
  }

  /** Publishes many messages in one round trip; one confirm per message, in order. */
  async publishBatch(messages: readonly BatchMessage[]): Promise<PublishConfirm[]> {
    if (!Array.isArray(messages)) throw new InvalidArgumentError('publishBatch takes an array');
    const prepared = (messages as readonly BatchMessage[]).map((message) => this.prepare(message));
    const batch: Pending[] = [];
    const promises = prepared.map(
      (make) => new Promise<PublishConfirm>((resolve, reject) => batch.push(make(resolve, reject))),
    );
    this.enqueue(batch);
    return Promise.all(promises);
  }

  /** Validates and encodes a message; nothing is sent until it is enqueued. */
  private prepare(
    message: BatchMessage,
  ): (resolve: Pending['resolve'], reject: Pending['reject']) => Pending {
    const { exchange, routingKey, body } = message;
    const options = message.options ?? {};
    validateExchangeReference(exchange);
    validateRoutingKey(routingKey);
    validateOptionsObject('publish options', options);
    validateBooleanOption('mandatory', options.mandatory);
    if (options.headers !== undefined) validateHeaders(options.headers);
    validateStringOption('messageId', options.messageId);
    validateStringOption('contentType', options.contentType);
    validateStringOption('correlationId', options.correlationId);
    validateIntegerOption('expirationMs', options.expirationMs, 1, 2 ** 31 - 1);
    const encoded = this.options.codec.encode(body);
    if (encoded.data.length > this.options.maxBodyBytes) {
      throw new MessageTooLargeError(encoded.data.length, this.options.maxBodyBytes);
    }
    const messageId = options.messageId ?? uuidv7();
    const headers = options.headers ?? {};
    const fields = encodeEnvelope(
      {
        messageId,
        exchange,
        routingKey,
        publishedAt: Date.now(),
        headers,
        contentType: options.contentType ?? encoded.contentType,
        redeliveries: 0,
        ...(options.expirationMs === undefined ? {} : { expirationMs: options.expirationMs }),
        ...(options.correlationId === undefined ? {} : { correlationId: options.correlationId }),
      },
      encoded.data,
    );
    const mandatory = options.mandatory ?? false;
    return (resolve, reject) => ({
      exchange,
      routingKey,
      headers,
      mandatory,
      messageId,
      fields,
      resolve,
      reject,
    });
  }

  private enqueue(messages: Pending[]): void {
    for (const message of messages) this.queue.push(message);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      const batch = this.queue;
      this.queue = [];
      for (let i = 0; i < batch.length; i += MAX_CALL_MESSAGES) {
        void this.send(batch.slice(i, i + MAX_CALL_MESSAGES));
      }
    });
  }

  /** Routes, appends and settles one call's worth of messages; never throws. */
  private async send(batch: readonly Pending[]): Promise<void> {
    let remaining = batch;
    try {
      for (let attempt = 0; ; attempt++) {
        const compiled = await this.options.topology.get();
        const { router } = compiled;
        const { routed, unrouted } = this.route(router, remaining);
        // A message that routes nowhere never reaches the publish script's version check,
        // so confirm the version here before calling it unroutable.
        const current =
          unrouted.length > 0 ? await this.options.topology.currentVersion() : router.version;
        if (current === router.version) {
          for (const settle of unrouted) settle();
          remaining = routed.map((r) => r.message);
          if (routed.length === 0) return;
          const ids = await this.append(router.version, routed);
          if (ids !== undefined) {
            this.confirm(routed, ids);
            return;
          }
        }
        // The topology changed since this router was compiled: reroute.
        this.options.topology.invalidate(compiled);
        if (attempt >= MAX_STALE_RETRIES) {
          throw new SluiceError('PRECONDITION_FAILED', 'topology kept changing while publishing', {
            retriable: true,
          });
        }
      }
    } catch (error) {
      for (const message of remaining) message.reject(error);
    }
  }

  /**
   * Resolves the target queues of each message with the compiled router. Messages that
   * fail (unknown or internal exchange, mandatory without a route) or route nowhere get
   * a settlement to run once the router is known to be current.
   */
  private route(
    router: Router,
    batch: readonly Pending[],
  ): { routed: Routed[]; unrouted: (() => void)[] } {
    const routed: Routed[] = [];
    const unrouted: (() => void)[] = [];
    for (const message of batch) {
      const exchange = message.exchange === '' ? undefined : router.exchange(message.exchange);
      if (message.exchange !== '' && exchange === undefined) {
        unrouted.push(() =>
          message.reject(new NotFoundError(`exchange '${message.exchange}' does not exist`)),
        );
        continue;
      }
      if (exchange?.internal === true) {
        unrouted.push(() =>
          message.reject(new AccessRefusedError(`exchange '${message.exchange}' is internal`)),
        );
        continue;
      }
      const queues = router.route(message.exchange, message.routingKey, message.headers);
      if (queues.length > 0) {
        routed.push({ message, queues });
      } else if (message.mandatory) {
        unrouted.push(() =>
          message.reject(new UnroutableError(message.exchange, message.routingKey)),
        );
      } else {
        unrouted.push(() =>
          message.resolve({ messageId: message.messageId, targets: [], duplicate: false }),
        );
      }
    }
    return { routed, unrouted };
  }

  /** One script call; returns the stream ids in target order, or undefined when stale. */
  private async append(version: number, routed: readonly Routed[]): Promise<string[] | undefined> {
    const keyIndex = new Map<string, number>();
    const keys = [this.options.keys.topologyVersion];
    const args: ScriptArg[] = [String(version), routed.length];
    for (const { message, queues } of routed) {
      args.push(queues.length);
      for (const queue of queues) {
        let index = keyIndex.get(queue);
        if (index === undefined) {
          index = keys.push(this.options.keys.queue(queue).stream);
          keyIndex.set(queue, index);
        }
        args.push(index);
      }
      args.push(message.fields.length);
      for (const field of message.fields) args.push(field);
    }
    const reply = (await runScript(this.options.redis, 'publish', keys, args)) as string[];
    if (reply[0] === 'stale') return undefined;
    return reply.slice(1);
  }

  private confirm(routed: readonly Routed[], ids: readonly string[]): void {
    let next = 0;
    for (const { message, queues } of routed) {
      const targets = queues.map((queue) => ({ queue, streamId: ids[next++] as string }));
      message.resolve({ messageId: message.messageId, targets, duplicate: false });
    }
  }
}
