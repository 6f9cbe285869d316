/**
 * What the integration global setup hands to tests through vitest's `provide`/`inject`, and the
 * INFO reading it is based on. No vitest runtime import here: the global setup runs in the main
 * process.
 */
import type { Redis } from 'ioredis';
import type { RedisSource } from '../../scripts/local-redis.js';

/** Which server answers, as INFO server tells it. */
export interface ServerInfo {
  readonly kind: 'redis' | 'valkey';
  /** `7.0.15` for Redis, the Valkey version (`8.0.1`) for Valkey. */
  readonly version: string;
}

/** The Redis an integration project runs against. */
export interface RedisServerInfo extends ServerInfo {
  readonly source: RedisSource;
  /** Server binary this project starts extra servers with (`redis-server`, `valkey-server`). */
  readonly binary: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Server binary of the project, set per project in vitest.config.ts. */
    redisServerBinary: string;
    /** The project runs against a one-node cluster (`cluster-enabled yes`). */
    redisClusterNode: boolean;
    /** URL of the project's Redis, set by test/support/global-setup.ts. */
    redisUrl: string;
    /** What that Redis is, set by test/support/global-setup.ts. */
    redisServer: RedisServerInfo;
  }
}

/** Reads INFO server: Redis or Valkey, and its version. */
export async function readServerInfo(redis: Redis): Promise<ServerInfo> {
  const fields = new Map<string, string>();
  for (const line of (await redis.info('server')).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  const valkeyVersion = fields.get('valkey_version');
  if (valkeyVersion !== undefined) return { kind: 'valkey', version: valkeyVersion };
  const redisVersion = fields.get('redis_version');
  if (redisVersion === undefined) throw new Error('INFO server has no redis_version');
  return { kind: 'redis', version: redisVersion };
}
