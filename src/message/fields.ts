/**
 * Stream field names that TypeScript and Lua both read and write: the one table of them.
 * Every script gets it as the Lua table `F` (see src/connection/scripts.ts), so a script says
 * `F.body`, never `'b'`.
 *
 * A message entry is `m` (the metadata, a JSON array whose first element is the envelope
 * version), `rc` and `eq` when the message was requeued, `le` when it was requeued after a
 * handler threw, and `b`, the body, last: few fields, because every field of every entry is
 * parsed by Redis and the client on each read. An outbox entry (a dead letter on its way to the
 * dead-letter exchange, or a replayed message on its way back) starts with `dr`, `dt`, `sid`
 * and `rt`, followed by the fields of the entry it was.
 */
export const Field = {
  meta: 'm',
  redeliveries: 'rc',
  /**
   * When the message first entered this queue (ms since the epoch), set by a requeue: the
   * entry's new stream id is not that time, and a queue's `messageTtlMs` counts from it.
   */
  enqueuedAt: 'eq',
  /**
   * The last error a handler threw for the message (src/message/error-record.ts, JSON), set by
   * the requeue after that failure; a death record takes it over.
   */
  lastError: 'le',
  body: 'b',
  /** Outbox: why the message died (a death reason). */
  deathReason: 'dr',
  /** Outbox: when it died, ms since the epoch. */
  deathTime: 'dt',
  /** Outbox: the stream id it had in its queue ('' when it never entered one). */
  sourceId: 'sid',
  /** Outbox: '' to route to the queue's dead-letter exchange, else a DLQ replay's route (JSON). */
  route: 'rt',
} as const;
