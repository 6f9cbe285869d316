/**
 * Servers for fault tests, of the kind under test (redis-server or valkey-server): with an
 * append-only file, as a replica, crashed and restarted, frozen and thawed. Each is disposed
 * when the current test finishes.
 */
import type { Redis } from 'ioredis';
import { connectRedis, startExtraRedis, waitFor, type RedisServerHandle } from './index.js';
import { streamKey } from './sluice.js';

/** How often the append-only file is fsynced (`appendfsync`). */
export type AppendFsync = 'always' | 'everysec' | 'no';

/** A server that logs every write to an append-only file fsynced as `appendfsync` says. */
export function startAofRedis(appendfsync: AppendFsync): Promise<RedisServerHandle> {
  return startExtraRedis(['--appendonly', 'yes', '--appendfsync', appendfsync]);
}

/**
 * A replica of `primary`, resolved once it acknowledges a write through WAIT (a replica that
 * just turned online acknowledges its first write only at its next periodic ACK).
 */
export async function startReplica(
  primary: RedisServerHandle,
  args: string[] = [],
): Promise<RedisServerHandle> {
  const primaryClient = connectRedis({}, primary.url);
  // The primary would wait 5 s for more replicas before a diskless full sync.
  await primaryClient.config('SET', 'repl-diskless-sync-delay', '0');
  const replicas = (await onlineReplicas(primaryClient)) + 1;
  const replica = await startExtraRedis([
    '--replicaof',
    '127.0.0.1',
    String(primary.port),
    ...args,
  ]);
  // A write before the first replica attached is not in the replication stream (offset 0),
  // and WAIT would count a replica that has acknowledged nothing yet.
  await waitFor(
    async () => {
      await primaryClient.incr('fault-kit:replica-probe');
      const offset = /master_repl_offset:(\d+)/u.exec(await primaryClient.info('replication'));
      if (Number(offset?.[1] ?? 0) === 0) return false;
      return Number(await primaryClient.call('WAIT', replicas, 100)) >= replicas;
    },
    { timeoutMs: 10_000, description: `${replicas} replicas acknowledging writes` },
  );
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

/** How many replicas `primary` counts as connected and online. */
export async function onlineReplicas(primary: Redis): Promise<number> {
  return ((await primary.info('replication')).match(/state=online/gu) ?? []).length;
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
  return entries.map(([streamId, fields]) => {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'id') return [streamId, fields[i + 1] ?? ''];
    }
    return [streamId, ''];
  });
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
