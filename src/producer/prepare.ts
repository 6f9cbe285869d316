import type { Connection } from '../connection/connection.js';
import { CodecError, InvalidArgumentError, MessageTooLargeError } from '../errors/index.js';
import { defaultCodec, encodeDefault, type Codec, type EncodedBody } from '../message/codec.js';
import { encodeEnvelope } from '../message/envelope.js';
import { messageId as newMessageId } from '../message/message-id.js';
import type { Headers } from '../message/headers.js';
import {
  optionNames,
  validateBooleanOption,
  validateEnumOption,
  validateExchangeReference,
  validateHeaders,
  validateIntegerOption,
  validateOptionsObject,
  validateRoutingKey,
  validateStringOption,
  validateTraceContext,
} from '../validation/index.js';
import type { PublishSpan, PublishTracing } from '../tracing/publish-tracing.js';
import {
  assertDurabilitySupported,
  DURABILITIES,
  validateDedupWindow,
  type Durability,
  type ProducerSettings,
} from './settings.js';

const PUBLISH_OPTIONS = optionNames<PublishOptions>({
  mandatory: true,
  headers: true,
  messageId: true,
  contentType: true,
  correlationId: true,
  expirationMs: true,
  dedupKey: true,
  dedupWindowMs: true,
  durability: true,
  partitionKey: true,
  traceparent: true,
  tracestate: true,
});
const BATCH_MESSAGE = optionNames<BatchMessage>({
  exchange: true,
  routingKey: true,
  body: true,
  options: true,
});

/** Options of one publish, named as in amqplib where they exist there. */
export interface PublishOptions {
  /** Reject with UnroutableError when no queue matches (instead of resolving with no targets). */
  readonly mandatory?: boolean | undefined;
  readonly headers?: Headers | undefined;
  /** Defaults to a UUID v7. */
  readonly messageId?: string | undefined;
  /** Overrides the codec's content type. */
  readonly contentType?: string | undefined;
  readonly correlationId?: string | undefined;
  /** Time to live of this message, from publish. */
  readonly expirationMs?: number | undefined;
  /**
   * Publishes with the same dedup key within the dedup window store the message once; the
   * later ones resolve with the first one's stream ids and `duplicate: true`. Default: the
   * message id.
   */
  readonly dedupKey?: string | undefined;
  /** Dedup window of this publish; 0 turns dedup off for it. Default: the connect option. */
  readonly dedupWindowMs?: number | undefined;
  /** Confirm level of this publish. Default: the connect option `durability`. */
  readonly durability?: Durability | undefined;
  /**
   * What picks the partition of a partitioned queue (a stable hash of it): messages with one
   * key go to one partition, in publish order, and an ordered consumer handles them one at a
   * time. Default: the routing key. Carried with the message (`Delivery.partitionKey`).
   */
  readonly partitionKey?: string | undefined;
  /**
   * W3C trace context to publish the message in (a `traceparent` header value), for an
   * application that propagates traces without `@opentelemetry/api`, or from a context it
   * received: carried with the message (`Delivery.traceparent`). With `@opentelemetry/api`
   * present it is the parent of the publish span, whose context the message carries instead;
   * without either, the message carries the active span's context, if any.
   */
  readonly traceparent?: string | undefined;
  /** The W3C `tracestate` that goes with `traceparent`. */
  readonly tracestate?: string | undefined;
}

/** One message of `publishBatch`. */
export interface BatchMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: unknown;
  readonly options?: PublishOptions | undefined;
}

/** A validated, encoded message. */
export interface Message {
  readonly exchange: string;
  readonly routingKey: string;
  readonly headers: Headers;
  readonly mandatory: boolean;
  readonly messageId: string;
  readonly dedupKey: string;
  readonly dedupWindowMs: number;
  readonly durability: Durability;
  /** The partition key, or the routing key when none was given. */
  readonly partitionKey: string;
  /** When its own expiration passes (ms since the epoch), if it has one. */
  readonly expiresAt: number | undefined;
  /** The envelope's XADD field/value items. */
  readonly fields: readonly (string | Buffer)[];
  /** Its publish span, when the application traces with `@opentelemetry/api`. */
  readonly span: PublishSpan | undefined;
}

/**
 * Encodes a body with the client's codec: whatever a codec throws or returns instead of an
 * encoded body is a CodecError, as the default codec's own failures are.
 */
function encode(codec: Codec, body: unknown): EncodedBody {
  let encoded: Partial<EncodedBody> | undefined;
  try {
    encoded = codec.encode(body);
  } catch (cause) {
    if (cause instanceof CodecError) throw cause;
    throw new CodecError('the codec failed to encode the body', cause);
  }
  if (!Buffer.isBuffer(encoded?.data) || typeof encoded.contentType !== 'string') {
    throw new CodecError('the codec returned no { data: Buffer, contentType: string }');
  }
  return encoded as EncodedBody;
}

/**
 * Validates and encodes a message; nothing is sent until it is enqueued. `batchItem` names an
 * element of a batch (`message 3`), which must be a plain object of `BatchMessage` fields.
 */
export function prepare(
  message: BatchMessage,
  settings: ProducerSettings,
  connection: Connection,
  codec: Codec,
  tracing: PublishTracing | undefined,
  batchItem?: string,
): Message {
  if (batchItem !== undefined) {
    if (message === undefined)
      throw new InvalidArgumentError(`${batchItem} of the batch is missing`);
    validateOptionsObject(`${batchItem} of the batch`, message, BATCH_MESSAGE);
  }
  // A default for undefined only: null is not "no options", validateOptionsObject refuses it.
  const { exchange, routingKey, body, options = {} } = message;
  validateExchangeReference(exchange);
  validateRoutingKey(routingKey);
  validateOptionsObject('publish options', options, PUBLISH_OPTIONS);
  validateBooleanOption('mandatory', options.mandatory);
  if (options.headers !== undefined) validateHeaders(options.headers);
  validateStringOption('messageId', options.messageId);
  validateStringOption('contentType', options.contentType);
  validateStringOption('correlationId', options.correlationId);
  validateIntegerOption('expirationMs', options.expirationMs, 0, 2 ** 31 - 1);
  validateStringOption('dedupKey', options.dedupKey);
  validateDedupWindow(options.dedupWindowMs, settings.confirmTimeoutMs);
  validateEnumOption('durability', options.durability, DURABILITIES);
  validateStringOption('partitionKey', options.partitionKey);
  validateTraceContext(options.traceparent, options.tracestate);
  const durability = options.durability ?? settings.durability;
  assertDurabilitySupported(connection, durability);
  // The default codec's text goes out as it is: no bytes made of it before the socket's.
  const encoded = codec === defaultCodec ? encodeDefault(body) : encode(codec, body);
  const bytes =
    typeof encoded.data === 'string' ? Buffer.byteLength(encoded.data) : encoded.data.length;
  if (bytes > settings.maxBodyBytes) throw new MessageTooLargeError(bytes, settings.maxBodyBytes);
  const messageId = options.messageId ?? newMessageId();
  const dedupKey = options.dedupKey ?? messageId;
  const headers = options.headers ?? {};
  const publishedAt = Date.now();
  const given =
    options.traceparent === undefined
      ? undefined
      : { traceparent: options.traceparent, tracestate: options.tracestate };
  // Last, once nothing can refuse the message: a span started is a span ended by its confirm.
  const span = tracing?.startPublish(exchange, routingKey, messageId, given);
  const trace = span === undefined ? given : span.context;
  const fields = encodeEnvelope(
    {
      messageId,
      exchange,
      routingKey,
      publishedAt,
      headers,
      contentType: options.contentType ?? encoded.contentType,
      redeliveries: 0,
      ...(options.expirationMs === undefined ? {} : { expirationMs: options.expirationMs }),
      ...(options.correlationId === undefined ? {} : { correlationId: options.correlationId }),
      dedupKey,
      ...(options.partitionKey === undefined ? {} : { partitionKey: options.partitionKey }),
      ...(trace === undefined ? {} : { traceparent: trace.traceparent }),
      ...(trace?.tracestate === undefined ? {} : { tracestate: trace.tracestate }),
    },
    encoded.data,
  );
  return {
    exchange,
    routingKey,
    headers,
    mandatory: options.mandatory ?? false,
    messageId,
    dedupKey,
    dedupWindowMs: options.dedupWindowMs ?? settings.dedupWindowMs,
    durability,
    partitionKey: options.partitionKey ?? routingKey,
    expiresAt: options.expirationMs === undefined ? undefined : publishedAt + options.expirationMs,
    fields,
    span,
  };
}
