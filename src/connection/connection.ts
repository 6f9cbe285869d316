import type { Redis } from 'ioredis';
import {
  AccessRefusedError,
  ClosedError,
  ConnectionError,
  InvalidArgumentError,
  ServerError,
  SluiceError,
  TimeoutError,
  UnsupportedError,
} from '../errors/index.js';
import { hashSlot } from '../keys/slot.js';
import { ignoreError, isCluster, type RedisClient } from './client.js';
import { commandOnLine, registerScripts } from './scripts.js';
import { createClient, type RedisSource } from './source.js';

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
export function classifyFailure(error: unknown, redis: RedisClient): FailureKind {
  if (redis.status === 'end') return 'closed';
  if (isReplyError(error)) return transientReply(error) ? 'unsent' : 'fatal';
  if (error instanceof ConnectionError) return 'uncertain';
  if (!(error instanceof Error)) return 'fatal';
  // ioredis names and messages, for errors it has no classes for.
  if (error.name === 'MaxRetriesPerRequestError' || error.name === 'AbortError') return 'uncertain';
  if (error.message.startsWith("Stream isn't writeable")) return 'unsent';
  // A Cluster client gave up following MOVED/ASK or resending after a node closed: the last
  // attempt may have run.
  if (error.message.startsWith('Too many Cluster redirections')) return 'uncertain';
  if (error.name === 'ClusterAllFailedError') return 'uncertain';
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
export function classify(error: unknown, redis: RedisClient, what: string): Failure {
  const kind = classifyFailure(error, redis);
  if (error instanceof SluiceError) return { kind, error };
  const message = `${what}: ${error instanceof Error ? error.message : String(error)}`;
  const permission = kind === 'fatal' ? missingPermission(error) : undefined;
  if (permission !== undefined) {
    return {
      kind,
      error: new AccessRefusedError(`the Redis user may not do this: ${message}`, {
        permission,
        cause: error,
      }),
    };
  }
  switch (kind) {
    case 'closed':
      return { kind, error: new ClosedError(message, error) };
    case 'fatal':
      return { kind, error: new ServerError(message, error) };
    default:
      return { kind, error: new ConnectionError(message, error) };
  }
}

/**
 * What an ACL refusal says the user lacks: `command '<name>'` (for a script's own call, the
 * command on the script's line that met it), `key` or `channel`; undefined for any other
 * error. Redis 7.0 words a refusal inside a script without NOPERM, later versions with it.
 */
function missingPermission(error: unknown): string | undefined {
  if (!isReplyError(error)) return undefined;
  const text = error.message;
  if (text.startsWith('EXECABORT')) {
    // A transaction refused as a whole: the refusal is among the replies it met when queued.
    const previous = (error as { previousErrors?: unknown }).previousErrors;
    if (!Array.isArray(previous)) return undefined;
    return previous.map(missingPermission).find((permission) => permission !== undefined);
  }
  const inScript = /user executing the script can't (run|access)/u.exec(text);
  if (!/\bNOPERM\b/u.test(text) && inScript === null) return undefined;
  const command = /permissions to run the '([^']+)' command/u.exec(text);
  if (command !== null) return `command '${command[1] as string}'`;
  if (/\bkeys?\b/u.test(text)) return 'key';
  if (/\bchannels?\b/u.test(text)) return 'channel';
  const at = /script: ([0-9a-f]{40}), on @user_script:(\d+)/u.exec(text);
  const called = at === null ? undefined : commandOnLine(at[1] as string, Number(at[2]));
  return called === undefined ? 'command' : `command '${called}'`;
}

/** The typed error for a failed command of `redis` (see {@link classify}). */
export function toSluiceError(error: unknown, redis: RedisClient, what: string): SluiceError {
  return classify(error, redis, what).error;
}

/**
 * The masters of a client: every master node of a Cluster, or the one server. Namespace-wide
 * work (SCAN) runs on each, since each holds only its own slots' keys.
 */
export function mastersOf(redis: RedisClient): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis];
}

/**
 * Deletes every key matching a SCAN pattern (SCAN + UNLINK, never FLUSH), on every master;
 * resolves with how many were deleted. One UNLINK per key: keys of a pattern may lie in several
 * hash slots, which one UNLINK may not span on a cluster-mode server.
 */
export async function unlinkMatching(redis: RedisClient, pattern: string): Promise<number> {
  const counts = await Promise.all(mastersOf(redis).map((node) => unlinkOnNode(node, pattern)));
  return counts.reduce((sum, count) => sum + count, 0);
}

async function unlinkOnNode(redis: Redis, pattern: string): Promise<number> {
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
 * One Redis client for commands and scripts (a server's, or a Redis Cluster's), plus the
 * duplicates that consumers use for blocking reads. Closes only what it created.
 */
export class Connection {
  private readonly duplicates = new Set<RedisClient>();
  private closes = 0;
  private nextClose: { promise: Promise<void>; resolve: () => void } | undefined;
  private readonly onClose = (): void => {
    this.closes++;
    this.nextClose?.resolve();
    this.nextClose = undefined;
  };
  /** The node clients of a Cluster whose closes count (see {@link epoch}). */
  private readonly watchedNodes = new Set<Redis>();
  private readonly onNode = (node: Redis): void => {
    if (this.watchedNodes.has(node)) return;
    this.watchedNodes.add(node);
    node.on('close', this.onClose);
  };

  private constructor(
    readonly redis: RedisClient,
    private readonly owned: boolean,
    readonly server: ServerInfo,
    /** Whether the server kept an append-only file when sluice connected (`aof_enabled`). */
    readonly appendOnly: boolean,
  ) {
    if (isCluster(redis)) {
      redis.on('+node', this.onNode);
      for (const node of redis.nodes()) this.onNode(node);
    } else {
      redis.on('close', this.onClose);
    }
  }

  /**
   * Counts the connection losses of the main client (of any of its node connections, on a
   * Cluster). A command issued at one epoch and answered at the same epoch ran on the same
   * connection as everything else issued then to its node, which is what WAIT and WAITAOF
   * rely on: they cover the writes of their own connection only.
   */
  get epoch(): number {
    return this.closes;
  }

  /**
   * True when ioredis sends the commands that were in flight at a connection loss again after
   * reconnecting (`autoResendUnfulfilledCommands`, on by default; a Cluster always settles
   * them, resending them once the slots are refreshed or failing them). When it does not,
   * those commands never settle: callers race them with {@link nextConnectionLoss}.
   */
  get resendsInFlightCommands(): boolean {
    return resendsInFlight(this.redis);
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
   * The connection of the main client to the master that serves `key`: the client itself on
   * one server; on a Cluster the node its slot map names now, which is where a command on
   * `key` was sent (or ioredis followed a redirection, which also refreshes the map).
   */
  nodeFor(key: string): Redis {
    return nodeOf(this.redis, key);
  }

  /**
   * WAIT on `node` (see {@link nodeFor}): resolves with how many replicas acknowledged every
   * write that this connection made to it before the command, waiting up to `timeoutMs` for
   * `replicas` of them.
   */
  async waitForReplicas(node: Redis, replicas: number, timeoutMs: number): Promise<number> {
    return Number(await node.call('WAIT', replicas, timeoutMs));
  }

  /**
   * WAITAOF (Redis ≥ 7.2, Valkey) on `node`: resolves with `[local, replicas]`, whether the
   * local AOF and how many replicas' AOFs have fsynced every write this connection made to it
   * before the command.
   */
  async waitForAof(
    node: Redis,
    local: number,
    replicas: number,
    timeoutMs: number,
  ): Promise<[local: number, replicas: number]> {
    const [fsyncedLocal, fsyncedReplicas] = (await node.call(
      'WAITAOF',
      local,
      replicas,
      timeoutMs,
    )) as [number, number];
    return [Number(fsyncedLocal), Number(fsyncedReplicas)];
  }

  /** Connects (or adopts a client), reads the server version and registers the scripts. */
  static async open(source: RedisSource, connectTimeoutMs: number): Promise<Connection> {
    const owned = source.kind !== 'adopted';
    const redis = source.kind === 'adopted' ? source.redis : createClient(source, connectTimeoutMs);
    const database = source.kind === 'url' ? databaseOf(source.url) : 0;
    // A refused login reaches connect() only as 'Connection is closed.'; its reason comes
    // as an 'error' event.
    let refusal: Error | undefined;
    let lastError: unknown;
    const onError = (error: unknown): void => {
      lastError = error;
      if (isReplyError(error) && /^(WRONGPASS|NOAUTH|NOPERM)\b/u.test(error.message)) {
        refusal = error;
      }
    };
    if (owned) redis.on('error', onError);
    try {
      if (owned)
        await withDeadline(redis.connect(), connectTimeoutMs, () =>
          timedOut('connecting to Redis', connectTimeoutMs),
        );
      if (database !== 0 && !isCluster(redis))
        await selectDatabase(redis, database, connectTimeoutMs);
      const info = (await withDeadline(
        redis.call('INFO', 'server', 'persistence', 'cluster'),
        connectTimeoutMs,
        () => timedOut('INFO server persistence cluster', connectTimeoutMs),
      )) as string;
      registerScripts(redis);
      const appendOnly = /^aof_enabled:1\r?$/mu.test(info);
      redis.off('error', onError);
      return new Connection(redis, owned, parseServerInfo(info), appendOnly);
    } catch (cause) {
      if (owned) drop(redis);
      if (refusal !== undefined) {
        throw new AccessRefusedError(`Redis refused the login: ${refusal.message}`, {
          permission: 'login',
          cause: refusal,
        });
      }
      if (cause instanceof UnsupportedError) throw cause;
      // What kept it from connecting (all Sentinels down, no such primary, a refused TLS
      // handshake, ...), if said: connect() itself often only says the connection closed.
      const why =
        lastError instanceof Error && lastError !== cause
          ? ` (last error: ${lastError.message})`
          : '';
      if (cause instanceof TimeoutError) throw new ConnectionError(`${cause.message}${why}`, cause);
      throw new ConnectionError(`cannot reach Redis: ${(cause as Error).message}${why}`, cause);
    }
  }

  /**
   * A new client to the same server (or Cluster), for one consumer's blocking reads; closed by
   * {@link close}. Rejects with ConnectionError (and keeps nothing open) when it cannot connect.
   */
  async duplicate(): Promise<RedisClient> {
    const client = isCluster(this.redis)
      ? this.redis.duplicate([], { lazyConnect: true })
      : this.redis.duplicate({ lazyConnect: true });
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
  release(client: RedisClient): void {
    this.duplicates.delete(client);
    drop(client);
  }

  /** Closes the duplicates and, when sluice created it, the main client. */
  async close(): Promise<void> {
    for (const client of this.duplicates) drop(client);
    this.duplicates.clear();
    this.redis.off('close', this.onClose);
    this.redis.off('+node', this.onNode);
    for (const node of this.watchedNodes) node.off('close', this.onClose);
    this.watchedNodes.clear();
    if (!this.owned) return;
    // QUIT lets the replies in flight arrive first; a server that does not answer (frozen,
    // partitioned) must not keep close() waiting forever.
    await withDeadline(this.redis.quit(), QUIT_TIMEOUT_MS, () =>
      timedOut('QUIT', QUIT_TIMEOUT_MS),
    ).catch(() => drop(this.redis));
  }
}

/** See {@link Connection.resendsInFlightCommands}. */
export function resendsInFlight(client: RedisClient): boolean {
  return isCluster(client) || client.options.autoResendUnfulfilledCommands !== false;
}

/**
 * The connection of `client` to the master serving `key`: `client` itself unless it is a
 * Cluster; for a Cluster, its node for the key's slot by its current slot map (any master
 * before the map is known, which a command then corrects with MOVED).
 */
export function nodeOf(client: RedisClient, key: string): Redis {
  if (!isCluster(client)) return client;
  const masters = client.nodes('master');
  const nodeKey = client.slots[hashSlot(key)]?.[0];
  const node = masters.find((m) => `${m.options.host}:${m.options.port}` === nodeKey);
  const found = node ?? masters[0];
  if (found === undefined) throw new ConnectionError('the Redis Cluster has no master connected');
  return found;
}

/**
 * Closes a client now. disconnect() only half-closes its socket and waits for the server's FIN,
 * which a partitioned network never delivers: until then the commands in flight would not be
 * rejected and the socket would keep the process alive. Destroying the socket ends it at once.
 */
function drop(client: RedisClient): void {
  const nodes = isCluster(client) ? client.nodes() : [client];
  client.disconnect();
  // Undefined for a client that never connected, whatever its type says.
  for (const node of nodes) (node.stream as Redis['stream'] | undefined)?.destroy();
}
