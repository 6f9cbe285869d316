/**
 * Every error sluice raises is a {@link SluiceError} with a stable `code`.
 * Callers branch on `code` (or `instanceof` a subclass), never on the message.
 */
export type SluiceErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'PRECONDITION_FAILED'
  | 'ACCESS_REFUSED'
  | 'UNROUTABLE'
  | 'MESSAGE_TOO_LARGE'
  | 'CONNECTION'
  | 'TIMEOUT'
  | 'UNSUPPORTED'
  | 'CLOSED'
  | 'STALE_DELIVERY'
  | 'CODEC'
  | 'QUEUE_FULL'
  | 'SERVER';

/** Options shared by every sluice error. */
export interface SluiceErrorOptions {
  retriable?: boolean;
  cause?: unknown;
}

/** Base class of all sluice errors. */
export class SluiceError extends Error {
  /** Stable machine-readable code. */
  readonly code: SluiceErrorCode;
  /** True when repeating the same operation may succeed. */
  readonly retriable: boolean;

  constructor(code: SluiceErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/**
 * An argument failed validation; nothing was written to Redis. Most checks send nothing at
 * all; a binding's key or arguments are checked against its exchange's type, read first.
 */
export class InvalidArgumentError extends SluiceError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/** An exchange or queue that the operation names does not exist (RabbitMQ's 404). */
export class NotFoundError extends SluiceError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

/** A declaration conflicts with what exists, or a delete condition failed (RabbitMQ's 406). */
export class PreconditionFailedError extends SluiceError {
  constructor(message: string) {
    super('PRECONDITION_FAILED', message);
  }
}

/**
 * The operation is not allowed (RabbitMQ's 403): on this object, e.g. publishing to an internal
 * exchange, or to this Redis user, whose ACL lacks a permission (`permission` then names it).
 */
export class AccessRefusedError extends SluiceError {
  /**
   * For a refusal by Redis's ACL (NOPERM): what the user may not do, as Redis says it, e.g.
   * `command 'xgroup|create'`, `key`, `channel`, or `login` for a refused username or password.
   */
  readonly permission: string | undefined;

  constructor(message: string, options: { permission?: string; cause?: unknown } = {}) {
    super('ACCESS_REFUSED', message, { cause: options.cause });
    this.permission = options.permission;
  }
}

/** A `mandatory` publish matched no queue. */
export class UnroutableError extends SluiceError {
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
  ) {
    super(
      'UNROUTABLE',
      `message to exchange '${exchange}' with routing key '${routingKey}' matched no queue`,
    );
  }
}

/** The encoded body is larger than `maxBodyBytes`. */
export class MessageTooLargeError extends SluiceError {
  constructor(
    readonly sizeBytes: number,
    readonly maxBodyBytes: number,
  ) {
    super('MESSAGE_TOO_LARGE', `body of ${sizeBytes} bytes exceeds maxBodyBytes ${maxBodyBytes}`);
  }
}

/** Redis (or a PostgreSQL inbox's database) could not be reached, or the connection was lost. */
export class ConnectionError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('CONNECTION', message, { retriable: true, cause });
  }
}

/**
 * An operation did not finish within its deadline (`confirmTimeoutMs` for a publish,
 * `operationTimeoutMs` for the other operations, `leaseMs` for a PostgreSQL inbox's statements);
 * its `cause` is the last failure, if an attempt failed. The operation may still have been
 * applied: repeating it is safe.
 */
export class TimeoutError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('TIMEOUT', message, { retriable: true, cause });
  }
}

/** The Redis server lacks a feature (or a database) that the configuration requires. */
export class UnsupportedError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('UNSUPPORTED', message, { cause });
  }
}

/** The client, producer or consumer was closed; `cause` is the failure of a command cut off by it. */
export class ClosedError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('CLOSED', message, { cause });
  }
}

/** The delivery is no longer owned by this consumer: it was reclaimed, acked or deleted. */
export class StaleDeliveryError extends SluiceError {
  constructor(message: string) {
    super('STALE_DELIVERY', message);
  }
}

/** A body could not be encoded or decoded. */
export class CodecError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('CODEC', message, { cause });
  }
}

/** Options of {@link ConfirmTimeoutError}. */
export interface ConfirmTimeoutErrorOptions {
  readonly messageId: string;
  readonly mayBeApplied: boolean;
  readonly applied: boolean;
  readonly cause?: unknown;
}

/**
 * A publish got no confirm within `confirmTimeoutMs` (or its retries ran out, or WAIT / WAITAOF
 * did not reach the requested durability in time). Publishing the same message again (same
 * message id or dedup key, within the dedup window) is safe: it never makes a second copy.
 */
export class ConfirmTimeoutError extends TimeoutError {
  readonly messageId: string;
  /** False only when Redis certainly did not store the message. */
  readonly mayBeApplied: boolean;
  /** True when Redis confirmed the write but not the requested durability (replicas, fsync). */
  readonly applied: boolean;

  constructor(message: string, options: ConfirmTimeoutErrorOptions) {
    super(message, options.cause);
    this.messageId = options.messageId;
    this.mayBeApplied = options.mayBeApplied || options.applied;
    this.applied = options.applied;
  }
}

/**
 * A publish found a target queue at its `maxLength` (overflow `reject-publish`); the message was
 * written to none of its targets. Not retriable as such: the queue must drain first.
 */
export class QueueFullError extends SluiceError {
  constructor(
    readonly queue: string,
    readonly maxLength: number,
  ) {
    super('QUEUE_FULL', `queue '${queue}' is full: ${maxLength} ready messages (reject-publish)`);
  }
}

/**
 * Redis refused a command for good (OOM, NOPERM, a script error), or PostgreSQL a statement of a
 * PostgreSQL inbox (a missing table); the server's reply is the cause.
 */
export class ServerError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SERVER', message, { cause });
  }
}
