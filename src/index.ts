/**
 * sluice: RabbitMQ's messaging model on Redis Streams.
 * @packageDocumentation
 * @module sluice
 */
export { Sluice } from './sluice.js';
export type { ClientOptions, ConnectOptions, DeadLetterTools } from './sluice.js';
export type {
  ServerAddress,
  ServerCredentials,
  ServerLocation,
  TlsOptions,
} from './connection/source.js';
export type { RedisClient } from './connection/client.js';
export type { ServerInfo } from './connection/connection.js';
export type {
  ClientEvents,
  ConnectionEvent,
  ExpiryFailedEvent,
  PublishConfirmedEvent,
  PublishFailedEvent,
  PublishRetriedEvent,
} from './events.js';
export type {
  CloseOptions,
  ConsumeOptions,
  Consumer,
  ConsumerEventName,
  ConsumerEvents,
  ConsumerListener,
  ConsumerStats,
  Delivery,
  DeliveryEvent,
  EntryEvent,
  Handler,
  IdempotentConsumeOptions,
  IdempotentDelivery,
  MessageStream,
  NackOptions,
} from './consumer/types.js';
export type {
  IdempotencyContext,
  IdempotencyOptions,
  IdempotencyStore,
  IdempotentHandler,
} from './consumer/idempotency.js';
export type { RedisWrites, WriteArgument } from './consumer/redis-writes.js';
export { SETTLEMENT_TIMEOUT_MS } from './consumer/deadline.js';
export type { RetryPolicy } from './consumer/retry.js';
export type {
  DeathHistory,
  DeathReason,
  DeathRecord,
  DeathSummary,
} from './message/death-history.js';
export type { ErrorRecord } from './message/error-record.js';
export type { MessageProperties } from './message/properties.js';
export { POISON_CONTENT_TYPE } from './dead-letter/relay.js';
export type {
  DeadLetter,
  DeadLetterPage,
  ForeignEntry,
  ListOptions,
  ReplayFailure,
  ReplayOptions,
  ReplayResult,
} from './dead-letter/tools.js';
export type { BatchMessage, PublishOptions } from './producer/prepare.js';
export type {
  ConsumerDetails,
  PartitionInfo,
  QueueInfo,
  QueueRates,
  QueueStats,
  QueueTotals,
} from './queue/data.js';
export type { PeekedMessage } from './queue/peek.js';
export type { PublishBatchOptions } from './producer/producer.js';
export type { ConfirmTarget, PublishConfirm } from './producer/publication.js';
export type { Durability, ProducerConnectOptions } from './producer/settings.js';
export type {
  DeleteExchangeOptions,
  DeleteQueueOptions,
  ExchangeOptions,
} from './topology/topology.js';
export type { BindingArguments } from './routing/headers.js';
export type {
  BindingRecord,
  DestinationType,
  ExchangeRecord,
  ExchangeType,
  OverflowPolicy,
  QueueOptions,
  QueueRecord,
  TopologyListing,
} from './topology/types.js';
export type { HeaderValue, Headers } from './message/headers.js';
export { matchTopic } from './routing/topic.js';
export { matchHeaders } from './routing/headers.js';
export { defaultCodec } from './message/codec.js';
export type { Codec, EncodedBody } from './message/codec.js';
export {
  AccessRefusedError,
  ClosedError,
  CodecError,
  ConfirmTimeoutError,
  ConnectionError,
  InvalidArgumentError,
  MessageTooLargeError,
  NotFoundError,
  PreconditionFailedError,
  QueueFullError,
  ServerError,
  SluiceError,
  StaleDeliveryError,
  TimeoutError,
  UnroutableError,
  UnsupportedError,
} from './errors/index.js';
export type {
  ConfirmTimeoutErrorOptions,
  SluiceErrorCode,
  SluiceErrorOptions,
} from './errors/index.js';
