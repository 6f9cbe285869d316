import type { RedisClient } from '../connection/client.js';
import { classifyFailure, isReplyError, toSluiceError } from '../connection/connection.js';
import { ClosedError, ConfirmTimeoutError, ConnectionError, SluiceError } from '../errors/index.js';
import type { Publication } from './publication.js';
import type { CallState } from './retry.js';

/** The timeout a publication rejects with: whether it may be stored is what the call learned. */
export function confirmTimeout(
  publication: Publication,
  state: CallState,
  reason: string,
): ConfirmTimeoutError {
  const { messageId } = publication.message;
  return new ConfirmTimeoutError(`publish of message ${messageId}: ${reason}`, {
    messageId,
    mayBeApplied: state.writeMayBeApplied,
    applied: publication.written,
    cause: state.lastError,
  });
}

/** The typed error a publication rejects with when its call on `redis` failed with `error`. */
export function publishFailure(
  error: unknown,
  publication: Publication,
  state: CallState,
  redis: RedisClient,
): unknown {
  // A ConnectionError here is a lost connection with the write in flight: a timeout that
  // may have been applied, like any other uncertain failure.
  if (error instanceof SluiceError && !(error instanceof ConnectionError)) return error;
  switch (classifyFailure(error, redis)) {
    case 'closed':
      return new ClosedError('the Redis client was closed before the publish was confirmed');
    case 'fatal':
      // AccessRefusedError naming the permission for an ACL refusal, ServerError otherwise.
      return isReplyError(error) ? toSluiceError(error, redis, 'Redis refused the publish') : error;
    default:
      // Out of retries, or not retriable without dedup (it may have been applied).
      return confirmTimeout(publication, state, `no confirm after ${String(error)}`);
  }
}
