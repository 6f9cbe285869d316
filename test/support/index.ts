/**
 * Helpers for integration and fault tests: the project's Redis, a namespace per test, extra
 * servers of the kind under test, and polling with a deadline (never sleep to wait for a state).
 */
import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { inject, onTestFinished } from 'vitest';
import {
  deleteNamespaceKeys,
  startRedisServer,
  type RedisServerHandle,
  type RedisServerOptions,
} from '../../scripts/local-redis.js';
import type { RedisServerInfo } from './context.js';

export { deleteNamespaceKeys, waitFor, type WaitForOptions } from '../../scripts/local-redis.js';
export type { RedisServerHandle } from '../../scripts/local-redis.js';
export { readServerInfo, type RedisServerInfo, type ServerInfo } from './context.js';

/** URL of the Redis the current project runs against. */
export function redisUrl(): string {
  return inject('redisUrl');
}

/** Which server the current project runs against (kind, version, source, binary). */
export function redisServer(): RedisServerInfo {
  return inject('redisServer');
}

/** A namespace no other test uses: `t-` and 12 random hex digits. */
export function testNamespace(): string {
  return `t-${randomBytes(6).toString('hex')}`;
}

/** A new ioredis client (to the project's Redis unless `url` is given), closed when the current test finishes. */
export function connectRedis(options: RedisOptions = {}, url: string = redisUrl()): Redis {
  const redis = new Redis(url, options);
  // Connection errors reach the test as rejected commands; the event would only log noise
  // when a test takes a server down on purpose.
  redis.on('error', () => undefined);
  onTestFinished(() => {
    redis.disconnect();
  });
  return redis;
}

/**
 * A fresh namespace and a client for the current test; when the test finishes, the namespace's
 * keys are deleted and the client closed. Call it inside the test.
 */
export function useNamespace(): { namespace: string; redis: Redis } {
  const namespace = testNamespace();
  const redis = connectRedis();
  // onTestFinished hooks run last-registered first: the keys go before the client closes.
  onTestFinished(async () => {
    await deleteNamespaceKeys(redis, namespace);
  });
  return { namespace, redis };
}

/**
 * Starts another server of the kind under test (same binary as the project, so kill and
 * restart tests run on Redis and Valkey alike) on a free port; disposed when the current test
 * finishes. `args` as in {@link startRedisServer}, e.g. `['--appendonly', 'yes']`.
 */
export async function startExtraRedis(
  args: string[] = [],
  options: Omit<RedisServerOptions, 'binary' | 'args'> = {},
): Promise<RedisServerHandle> {
  const server = await startRedisServer({ ...options, binary: redisServer().binary, args });
  onTestFinished(() => server.dispose());
  return server;
}
