/**
 * Servers for fault tests, of the kind under test (redis-server or valkey-server): with an
 * append-only file, as a replica, crashed and restarted, frozen and thawed. Each is disposed
 * when the current test finishes.
 */
import type { Redis } from 'ioredis';
import { onTestFinished } from 'vitest';
import { onlineReplicas, startReplicaServer } from '../../scripts/local-redis.js';
import {
  connectRedis,
  redisServer,
  startExtraRedis,
  waitFor,
  type RedisServerHandle,
} from './index.js';
import { entryMessageId, streamKey } from './sluice.js';

/** How often the append-only file is fsynced (`appendfsync`). */
export type AppendFsync = 'always' | 'everysec' | 'no';

/** A server that logs every write to an append-only file fsynced as `appendfsync` says. */
export function startAofRedis(appendfsync: AppendFsync): Promise<RedisServerHandle> {
  return startExtraRedis(['--appendonly', 'yes', '--appendfsync', appendfsync]);
}

/**
 * A replica of `primary`, of the kind under test, resolved once it acknowledges a write through
 * WAIT; disposed when the current test finishes.
 */
export async function startReplica(
  primary: RedisServerHandle,
  args: string[] = [],
): Promise<RedisServerHandle> {
  const replica = await startReplicaServer(connectRedis({}, primary.url), primary.port, {
    binary: redisServer().binary,
    args,
  });
  onTestFinished(() => replica.dispose());
  return replica;
}

/** Resolves once `primary` counts `count` replicas online. */
export async function waitForOnlineReplicas(
  primary: Redis,
  count: number,
  timeoutMs = 10_000,
): Promise<void> {
  await waitFor(async () => (await onlineReplicas(primary)) === count, {
    timeoutMs,
    description: `${count} replicas online`,
  });
}

/** SIGKILLs the server (no shutdown, no final fsync) and starts it again on its port and dir. */
export async function crashAndRestart(server: RedisServerHandle): Promise<void> {
  await server.kill('SIGKILL');
  await server.restart();
}

/** Freezes the server (SIGSTOP): connections stay open, nothing is answered. */
export function freeze(server: RedisServerHandle): Promise<void> {
  return server.kill('SIGSTOP');
}

/** Thaws a frozen server (SIGCONT): it answers what it received meanwhile. */
export function thaw(server: RedisServerHandle): Promise<void> {
  return server.kill('SIGCONT');
}

/** How many times the server ran `command` since it started (`INFO commandstats`). */
export async function commandCalls(redis: Redis, command: string): Promise<number> {
  const stats = await redis.info('commandstats');
  const match = new RegExp(`^cmdstat_${command.toLowerCase()}:calls=(\\d+)`, 'mu').exec(stats);
  return Number(match?.[1] ?? 0);
}

/** The entries of a queue as `[streamId, messageId]`, in stream order. */
export async function queueEntries(
  redis: Redis,
  namespace: string,
  queue: string,
): Promise<[streamId: string, messageId: string][]> {
  const entries = await redis.xrange(streamKey(namespace, queue), '-', '+');
  return entries.map(([streamId, fields]) => [streamId, entryMessageId(fields)]);
}

/** The message id of every entry of a queue, in stream order (to count copies per id). */
export async function queueMessageIds(
  redis: Redis,
  namespace: string,
  queue: string,
): Promise<string[]> {
  return (await queueEntries(redis, namespace, queue)).map(([, messageId]) => messageId);
}

/** How many times each value occurs. */
export function countEach(values: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}
