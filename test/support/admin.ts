/**
 * Admin connections of the topology kits (cluster.ts, sentinel.ts): one per server, to poll its
 * state while it may be down or restarting.
 */
import { Redis } from 'ioredis';
import type { RedisServerHandle } from '../../scripts/local-redis.js';

/**
 * A connection to `server` that reconnects by itself (after a restart too) and, while the server
 * is down, fails each command at once rather than queueing it: a poll then sees "not yet".
 */
export async function adminClient(server: Pick<RedisServerHandle, 'port'>): Promise<Redis> {
  const client = new Redis(server.port, '127.0.0.1', {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => 50,
  });
  // Failures reach the poll as rejected commands; the event would only log a killed server.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** A flat `[field, value, ...]` reply (SENTINEL MASTER, SENTINEL REPLICAS) as a map. */
export function fieldMap(reply: unknown): Map<string, string> {
  const values = (reply as unknown[]).map(String);
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < values.length; i += 2)
    fields.set(values[i] as string, values[i + 1] as string);
  return fields;
}
