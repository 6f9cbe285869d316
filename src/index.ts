/**
 * sluice: RabbitMQ's messaging model on Redis Streams.
 * @packageDocumentation
 */
export { Sluice } from './sluice.js';
export type { ConnectOptions, MessageStream } from './sluice.js';
export type { ServerInfo } from './connection/connection.js';
export { Consumer } from './consumer/consumer.js';
export type { CloseOptions, ConsumeOptions, ConsumerStats, Handler } from './consumer/consumer.js';
export { Delivery } from './consumer/delivery.js';
export type { NackOptions } from './consumer/delivery.js';
export type {
  BatchMessage,
  ConfirmTarget,
  PublishConfirm,
  PublishOptions,
} from './producer/producer.js';
export type {
  DeleteExchangeOptions,
  DeleteQueueOptions,
  ExchangeOptions,
  QueueOptions,
} from './topology/topology.js';
export type {
  BindingArguments,
  ExchangeType,
  HeaderValue,
  Headers,
  OverflowPolicy,
} from './topology/types.js';
export { matchTopic } from './routing/topic.js';
export { matchHeaders } from './routing/headers.js';
export { defaultCodec } from './message/codec.js';
export type { Codec, EncodedBody } from './message/codec.js';
export {
  AccessRefusedError,
  ClosedError,
  CodecError,
  ConnectionError,
  InvalidArgumentError,
  MessageTooLargeError,
  NotFoundError,
  PreconditionFailedError,
  SluiceError,
  StaleDeliveryError,
  TimeoutError,
  UnroutableError,
  UnsupportedError,
} from './errors/index.js';
export type { SluiceErrorCode, SluiceErrorOptions } from './errors/index.js';
