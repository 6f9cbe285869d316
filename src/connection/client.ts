import type { Cluster, Redis } from 'ioredis';

/**
 * The ioredis client sluice sends its commands through: one server's (directly or found by
 * Sentinel) or a Redis Cluster's. Both route a script call by its first key, so every call
 * site works on either; what differs (nodes, reading connections, WAIT) is the Connection's.
 */
export type RedisClient = Redis | Cluster;

/** Whether `client` is a Cluster client (ioredis marks both kinds with `isCluster`). */
export function isCluster(client: RedisClient): client is Cluster {
  return client.isCluster;
}

/**
 * The `error` listener of the ioredis clients sluice creates: their failures reach callers as
 * rejected commands, and without a listener ioredis would log each one as unhandled too.
 */
export function ignoreError(): void {}
