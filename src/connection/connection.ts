import { Redis } from 'ioredis';
import {
  ClosedError,
  ConnectionError,
  InvalidArgumentError,
  ServerError,
  SluiceError,
  TimeoutError,
  UnsupportedError,
} from '../errors/index.js';
import { hasMethods } from '../validation/index.js';
import { registerScripts } from './scripts.js';

/**
 * An ioredis client, checked by shape rather than `instanceof`: an application and sluice
 * may each have their own copy of ioredis.
 */
function looksLikeIoredis(value: unknown): value is Redis {
  return (
    typeof value === 'object' &&
    hasMethods(value, ['defineCommand', 'duplicate', 'callBuffer', 'info', 'multi'])
  );
}

/** What the connected server is and which optional commands it has. */
export interface ServerInfo {
  readonly name: 'redis' | 'valkey';
  /**
   * The server runs with `cluster-enabled yes` (even a single node owning every slot): every
   * script call then touches one hash slot, and a publish to several queues is one call per
   * queue instead of one atomic call.
   */
  readonly cluster: boolean;
  /** Version of the server itself (Valkey's own version for Valkey). */
  readonly version: string;
  readonly features: {
    /** WAITAOF: Redis ≥ 7.2, Valkey ≥ 7.2. */
    readonly waitAof: boolean;
    /** XACKDEL: Redis ≥ 8.2. */
    readonly xackdel: boolean;
    /** Idempotent XADD (IDMP): Redis ≥ 8.6. */
    readonly idempotentXadd: boolean;
  };
}

/** How to reach Redis: a URL that sluice connects to, or a client the caller owns. */
export type RedisSource = { readonly url: string } | { readonly redis: Redis };

function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [maj = 0, min = 0] = version.split('.').map(Number);
  return maj > major || (maj === major && min >= minor);
}

/** Reads the server's identity, mode and features from `INFO server cluster`. */
export function parseServerInfo(info: string): ServerInfo {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/u)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const valkeyVersion = fields.get('valkey_version');
  const redisVersion = fields.get('redis_version') ?? '0.0.0';
  const cluster = fields.get('cluster_enabled') === '1';
  if (valkeyVersion !== undefined || fields.get('server_name') === 'valkey') {
    return {
      name: 'valkey',
      cluster,
      version: valkeyVersion ?? redisVersion,
      features: { waitAof: true, xackdel: false, idempotentXadd: false },
    };
  }
  return {
    name: 'redis',
    cluster,
    version: redisVersion,
    features: {
      waitAof: versionAtLeast(redisVersion, 7, 2),
      xackdel: versionAtLeast(redisVersion, 8, 2),
      idempotentXadd: versionAtLeast(redisVersion, 8, 6),
    },
  };
}

function ignoreError(): void {}

/**
 * The database a URL names: its path (`redis://host:6379/5`), else a `db` parameter, as ioredis
 * reads them. Checked here because ioredis turns `/abc` into `SELECT NaN`, and `/1.5` into 1.
 */
function databaseOf(url: string): number {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError('url is not a valid URL');
  }
  const path = parsed.pathname.replace(/^\//u, '');
  const database = path === '' ? (parsed.searchParams.get('db') ?? '0') : path;
  if (!/^\d{1,9}$/u.test(database)) {
    throw new InvalidArgumentError(
      `url names database '${database}'; a database is a number, as in redis://host:6379/5`,
    );
  }
  return Number(database);
}

/**
 * Selects `database` again and reports its refusal. ioredis selects it on connecting, but a
 * refusal (a server with fewer databases, or in cluster mode) becomes an 'error' event only,
 * after which every command would silently run on database 0.
 */
async function selectDatabase(redis: Redis, database: number, timeoutMs: number): Promise<void> {
  try {
    await withDeadline(redis.select(database), timeoutMs, () =>
      timedOut(`SELECT ${database}`, timeoutMs),
    );
  } catch (error) {
    if (!isReplyError(error)) throw error;
    throw new UnsupportedError(
      `the server has no database ${database} to use: ${error.message}`,
      error,
    );
  }
}

/** How long close() waits for the replies in flight before it drops the connection. */
const QUIT_TIMEOUT_MS = 2000;

/**
 * `promise`, or a rejection with `timedOut()` once `timeoutMs` has passed. The timer does not
 * keep the process alive: when nothing else does, the reply it waits for cannot come either.
 */
export function withDeadline<T>(
  promise: Promise<T>,
  timeoutMs: number,
  timedOut: () => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), timeoutMs).unref();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function timedOut(what: string, timeoutMs: number): TimeoutError {
  return new TimeoutError(`${what} did not finish within ${timeoutMs} ms`);
}

/**
 * How a failed command may be retried:
 * - `unsent`: Redis did not run it (LOADING, TRYAGAIN, READONLY, MASTERDOWN, BUSY, CLUSTERDOWN,
 *   or it was refused before being written); running it again is always safe;
 * - `uncertain`: the connection failed with the command in flight, so it may have run;
 *   running it again is safe only for an idempotent command;
 * - `closed`: the client was closed; nothing will run any more;
 * - `fatal`: Redis refused the command for good (OOM, NOPERM, a script error, ...).
 */
export type FailureKind = 'unsent' | 'uncertain' | 'closed' | 'fatal';

/** Error replies that Redis sends instead of running a command, during a transient state. */
const TRANSIENT_REPLIES = [
  'LOADING',
  'TRYAGAIN',
  'READONLY',
  'MASTERDOWN',
  'BUSY',
  'CLUSTERDOWN',
  'NOREPLICAS',
];
/** Socket errors: the connection broke, with or without our command on the wire. */
const SOCKET_ERRORS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTCONN',
]);

/**
 * An error reply of Redis. By name, not `instanceof`: a client from the application's own
 * copy of ioredis raises that copy's ReplyError.
 */
export function isReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === 'ReplyError';
}

/**
 * An error reply sent instead of running the command, in a transient state; a transaction
 * discarded (EXECABORT) because its commands met such replies counts too (its commands never ran).
 */
function transientReply(error: Error): boolean {
  const prefix = error.message.split(' ', 1)[0] ?? '';
  if (prefix !== 'EXECABORT') return TRANSIENT_REPLIES.includes(prefix);
  const previous = (error as { previousErrors?: unknown }).previousErrors;
  return (
    Array.isArray(previous) &&
    previous.length > 0 &&
    previous.every((cause) => isReplyError(cause) && transientReply(cause))
  );
}

/** Classifies a failed command of `redis` (see {@link FailureKind}). */
export function classifyFailure(error: unknown, redis: Redis): FailureKind {
  if (redis.status === 'end') return 'closed';
  if (isReplyError(error)) return transientReply(error) ? 'unsent' : 'fatal';
  if (error instanceof ConnectionError) return 'uncertain';
  if (!(error instanceof Error)) return 'fatal';
  // ioredis names and messages, for errors it has no classes for.
  if (error.name === 'MaxRetriesPerRequestError' || error.name === 'AbortError') return 'uncertain';
  if (error.message.startsWith("Stream isn't writeable")) return 'unsent';
  if (error.message === 'Connection is closed.' || error.message === 'Command timed out') {
    return 'uncertain';
  }
  const code = (error as NodeJS.ErrnoException).code;
  return code !== undefined && SOCKET_ERRORS.has(code) ? 'uncertain' : 'fatal';
}

/**
 * Whether a failure of `kind` may be retried: always when unsent; when uncertain (the command
 * may have run) only if running it again is harmless.
 */
export function mayRetry(kind: FailureKind, idempotent: boolean): boolean {
  return kind === 'unsent' || (kind === 'uncertain' && idempotent);
}

/** A failed command, classified once at the connection boundary. */
export interface Failure {
  /** How the command may be retried (see {@link FailureKind}). */
  readonly kind: FailureKind;
  /** What the caller is given: a SluiceError, with the original failure as its `cause`. */
  readonly error: SluiceError;
}

/**
 * Classifies a failed command of `redis` and gives it its typed error: a SluiceError as it is,
 * ClosedError when the client was closed, ServerError for a refusal (OOM, NOPERM, a script
 * error), and ConnectionError (retriable) for everything that is about reaching Redis. `what`
 * names the operation in the message.
 */
export function classify(error: unknown, redis: Redis, what: string): Failure {
  const kind = classifyFailure(error, redis);
  if (error instanceof SluiceError) return { kind, error };
  const message = `${what}: ${error instanceof Error ? error.message : String(error)}`;
  switch (kind) {
    case 'closed':
      return { kind, error: new ClosedError(message, error) };
    case 'fatal':
      return { kind, error: new ServerError(message, error) };
    default:
      return { kind, error: new ConnectionError(message, error) };
  }
}

/** The typed error for a failed command of `redis` (see {@link classify}). */
export function toSluiceError(error: unknown, redis: Redis, what: string): SluiceError {
  return classify(error, redis, what).error;
}

/**
 * Deletes every key matching a SCAN pattern (SCAN + UNLINK, never FLUSH), on one node;
 * resolves with how many were deleted. One UNLINK per key: keys of a pattern may lie in several
 * hash slots, which one UNLINK may not span on a cluster-mode server.
 */
export async function unlinkMatching(redis: Redis, pattern: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    const counts = await Promise.all(keys.map((key) => redis.unlink(key)));
    for (const count of counts) deleted += count;
    cursor = next;
  } while (cursor !== '0');
  return deleted;
}

/**
 * Reconnect delays of the client sluice creates: 10 ms first, doubling up to 2 s, with jitter,
 * so that a reset connection is back before a retried publish needs it, and a restarting server
 * is not hammered.
 */
function reconnectDelayMs(attempt: number): number {
  const base = Math.min(10 * 2 ** Math.min(attempt - 1, 8), 2000);
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/**
 * One Redis client for commands and scripts, plus the duplicates that consumers use
 * for blocking reads. Closes only what it created.
 */
export class Connection {
  private readonly duplicates = new Set<Redis>();
  private closes = 0;
  private nextClose: { promise: Promise<void>; resolve: () => void } | undefined;
  private readonly onClose = (): void => {
    this.closes++;
    this.nextClose?.resolve();
    this.nextClose = undefined;
  };

  private constructor(
    readonly redis: Redis,
    private readonly owned: boolean,
    readonly server: ServerInfo,
    /** Whether the server kept an append-only file when sluice connected (`aof_enabled`). */
    readonly appendOnly: boolean,
  ) {
    redis.on('close', this.onClose);
  }

  /**
   * Counts the connection losses of the main client. A command issued at one epoch and answered
   * at the same epoch ran on the same connection as everything else issued then, which is what
   * WAIT and WAITAOF rely on: they cover the writes of their own connection only.
   */
  get epoch(): number {
    return this.closes;
  }

  /**
   * True when ioredis sends the commands that were in flight at a connection loss again after
   * reconnecting (`autoResendUnfulfilledCommands`, on by default). When it does not, those
   * commands never settle: callers race them with {@link nextConnectionLoss}.
   */
  get resendsInFlightCommands(): boolean {
    return this.redis.options.autoResendUnfulfilledCommands !== false;
  }

  /** Resolves at the main client's next connection loss. */
  nextConnectionLoss(): Promise<void> {
    if (this.nextClose === undefined) {
      let resolve: () => void = () => undefined;
      const promise = new Promise<void>((r) => (resolve = r));
      this.nextClose = { promise, resolve };
    }
    return this.nextClose.promise;
  }

  /**
   * WAIT: resolves with how many replicas acknowledged every write that this connection made
   * before the command, waiting up to `timeoutMs` for `replicas` of them.
   */
  async waitForReplicas(replicas: number, timeoutMs: number): Promise<number> {
    return Number(await this.redis.call('WAIT', replicas, timeoutMs));
  }

  /**
   * WAITAOF (Redis ≥ 7.2, Valkey): resolves with `[local, replicas]`, whether the local AOF
   * and how many replicas' AOFs have fsynced every write this connection made before it.
   */
  async waitForAof(
    local: number,
    replicas: number,
    timeoutMs: number,
  ): Promise<[local: number, replicas: number]> {
    const [fsyncedLocal, fsyncedReplicas] = (await this.redis.call(
      'WAITAOF',
      local,
      replicas,
      timeoutMs,
    )) as [number, number];
    return [Number(fsyncedLocal), Number(fsyncedReplicas)];
  }

  /** Connects (or adopts a client), reads the server version and registers the scripts. */
  static async open(source: RedisSource, connectTimeoutMs: number): Promise<Connection> {
    let redis: Redis;
    let owned: boolean;
    let database = 0;
    if ('redis' in source) {
      if (!looksLikeIoredis(source.redis)) {
        throw new InvalidArgumentError('redis must be an ioredis Redis client');
      }
      redis = source.redis;
      owned = false;
    } else {
      if (typeof source.url !== 'string' || !/^rediss?:\/\//u.test(source.url)) {
        throw new InvalidArgumentError('url must be a redis:// or rediss:// URL');
      }
      database = databaseOf(source.url);
      redis = new Redis(source.url, {
        lazyConnect: true,
        connectTimeout: connectTimeoutMs,
        retryStrategy: reconnectDelayMs,
        // Publishes are idempotent (dedup markers), so resending what was in flight at a
        // connection loss is exactly the retry they need; ioredis drops (never settles) those
        // commands when this is off. Stated here because sluice relies on it.
        autoResendUnfulfilledCommands: true,
        // A failover turns the master into a replica: reconnect (the address may lead to the
        // new master by now) and let the command fail with READONLY, which sluice retries.
        reconnectOnError: (error) => error.message.startsWith('READONLY'),
        // No commandTimeout: WAIT, WAITAOF and the consumers' blocking reads legitimately take
        // long; each publish is bounded by its own confirm deadline instead.
      });
      // Errors reach callers as rejected commands; without a listener ioredis would also log them.
      redis.on('error', ignoreError);
      owned = true;
    }
    try {
      if (owned)
        await withDeadline(redis.connect(), connectTimeoutMs, () =>
          timedOut('connecting to Redis', connectTimeoutMs),
        );
      if (database !== 0) await selectDatabase(redis, database, connectTimeoutMs);
      const info = (await withDeadline(
        redis.call('INFO', 'server', 'persistence', 'cluster'),
        connectTimeoutMs,
        () => timedOut('INFO server persistence cluster', connectTimeoutMs),
      )) as string;
      registerScripts(redis);
      const appendOnly = /^aof_enabled:1\r?$/mu.test(info);
      return new Connection(redis, owned, parseServerInfo(info), appendOnly);
    } catch (cause) {
      if (owned) redis.disconnect();
      if (cause instanceof UnsupportedError) throw cause;
      if (cause instanceof TimeoutError) throw new ConnectionError(cause.message, cause);
      throw new ConnectionError(`cannot reach Redis: ${(cause as Error).message}`, cause);
    }
  }

  /**
   * A new client on the same server, for one consumer's blocking reads; closed by {@link close}.
   * Rejects with ConnectionError (and keeps nothing open) when it cannot connect.
   */
  async duplicate(): Promise<Redis> {
    const client = this.redis.duplicate({ lazyConnect: true });
    // As for the main client: errors reach the consumer as rejected commands. An application's
    // client is duplicated without its listeners, so this is needed for adopted clients too.
    client.on('error', ignoreError);
    this.duplicates.add(client);
    try {
      await client.connect();
    } catch (cause) {
      this.release(client);
      throw new ConnectionError(
        `cannot open a reader connection: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause,
      );
    }
    return client;
  }

  /** Closes a client returned by {@link duplicate}. */
  release(client: Redis): void {
    this.duplicates.delete(client);
    drop(client);
  }

  /** Closes the duplicates and, when sluice created it, the main client. */
  async close(): Promise<void> {
    for (const client of this.duplicates) drop(client);
    this.duplicates.clear();
    this.redis.off('close', this.onClose);
    if (!this.owned) return;
    // QUIT lets the replies in flight arrive first; a server that does not answer (frozen,
    // partitioned) must not keep close() waiting forever.
    await withDeadline(this.redis.quit(), QUIT_TIMEOUT_MS, () =>
      timedOut('QUIT', QUIT_TIMEOUT_MS),
    ).catch(() => drop(this.redis));
  }
}

/**
 * Closes a client now. disconnect() only half-closes its socket and waits for the server's FIN,
 * which a partitioned network never delivers: until then the commands in flight would not be
 * rejected and the socket would keep the process alive. Destroying the socket ends it at once.
 */
function drop(client: Redis): void {
  client.disconnect();
  // Undefined for a client that never connected, whatever its type says.
  (client.stream as Redis['stream'] | undefined)?.destroy();
}
