import { Redis } from 'ioredis';
import { ConnectionError, InvalidArgumentError, TimeoutError } from '../errors/index.js';
import { registerScripts } from './scripts.js';

/** What the connected server is and which optional commands it has. */
export interface ServerInfo {
  readonly name: 'redis' | 'valkey';
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

/** Reads the server's identity and features from `INFO server`. */
export function parseServerInfo(info: string): ServerInfo {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/u)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const valkeyVersion = fields.get('valkey_version');
  const redisVersion = fields.get('redis_version') ?? '0.0.0';
  if (valkeyVersion !== undefined || fields.get('server_name') === 'valkey') {
    return {
      name: 'valkey',
      version: valkeyVersion ?? redisVersion,
      features: { waitAof: true, xackdel: false, idempotentXadd: false },
    };
  }
  return {
    name: 'redis',
    version: redisVersion,
    features: {
      waitAof: versionAtLeast(redisVersion, 7, 2),
      xackdel: versionAtLeast(redisVersion, 8, 2),
      idempotentXadd: versionAtLeast(redisVersion, 8, 6),
    },
  };
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`${what} did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * One Redis client for commands and scripts, plus the duplicates that consumers use
 * for blocking reads. Closes only what it created.
 */
export class Connection {
  private readonly duplicates = new Set<Redis>();

  private constructor(
    readonly redis: Redis,
    private readonly owned: boolean,
    readonly server: ServerInfo,
  ) {}

  /** Connects (or adopts a client), reads the server version and registers the scripts. */
  static async open(source: RedisSource, connectTimeoutMs: number): Promise<Connection> {
    let redis: Redis;
    let owned: boolean;
    if ('redis' in source) {
      if (!(source.redis instanceof Redis)) {
        throw new InvalidArgumentError('redis must be an ioredis Redis client');
      }
      redis = source.redis;
      owned = false;
    } else {
      if (typeof source.url !== 'string' || !/^rediss?:\/\//u.test(source.url)) {
        throw new InvalidArgumentError('url must be a redis:// or rediss:// URL');
      }
      redis = new Redis(source.url, { lazyConnect: true, connectTimeout: connectTimeoutMs });
      owned = true;
    }
    try {
      if (owned) await withTimeout(redis.connect(), connectTimeoutMs, 'connecting to Redis');
      const info = await withTimeout(redis.info('server'), connectTimeoutMs, 'INFO server');
      registerScripts(redis);
      return new Connection(redis, owned, parseServerInfo(info));
    } catch (cause) {
      if (owned) redis.disconnect();
      if (cause instanceof TimeoutError) throw new ConnectionError(cause.message, cause);
      throw new ConnectionError(`cannot reach Redis: ${(cause as Error).message}`, cause);
    }
  }

  /** A new client on the same server, for one consumer's blocking reads; closed by {@link close}. */
  async duplicate(): Promise<Redis> {
    const client = this.redis.duplicate({ lazyConnect: true });
    this.duplicates.add(client);
    await client.connect();
    return client;
  }

  /** Closes a client returned by {@link duplicate}. */
  release(client: Redis): void {
    this.duplicates.delete(client);
    client.disconnect();
  }

  /** Closes the duplicates and, when sluice created it, the main client. */
  async close(): Promise<void> {
    for (const client of this.duplicates) client.disconnect();
    this.duplicates.clear();
    if (this.owned) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
