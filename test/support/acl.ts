/**
 * Redis ACL users for tests, and the least-privilege rules of each sluice role in one namespace:
 * a starting point for the docs, checked by test/topologies/acl.test.ts, which runs each role's
 * operations as a user with only its rules.
 */
import type { Redis } from 'ioredis';
import { escapeGlob } from '../../src/keys/index.js';

/** A user for {@link createAclUser}. */
export interface AclUserSpec {
  readonly name: string;
  readonly password: string;
  /** ACL rules after `reset on >password`, e.g. `['+get', '~app:*']`. */
  readonly rules: readonly string[];
}

/** Credentials as ioredis takes them. */
export interface AclCredentials {
  readonly username: string;
  readonly password: string;
}

/**
 * The command that defines the user `name` from scratch (`reset` first) with `password` and
 * only `rules`, enabled: what {@link createAclUser} sends, and docs/operations.md shows.
 */
export function aclSetUser(spec: AclUserSpec): [string, ...string[]] {
  return ['ACL', 'SETUSER', spec.name, 'reset', 'on', `>${spec.password}`, ...spec.rules];
}

/** Creates the user of {@link aclSetUser}; resolves with its credentials for ioredis. */
export async function createAclUser(redis: Redis, spec: AclUserSpec): Promise<AclCredentials> {
  const [command, ...args] = aclSetUser(spec);
  await redis.call(command, ...args);
  return { username: spec.name, password: spec.password };
}

/** What a sluice client does: publish, consume, or manage topology and queues. */
export type SluiceRole = 'producer' | 'consumer' | 'admin';

/** Options of {@link sluiceAclRules}. */
export interface SluiceAclOptions {
  /**
   * The server has WAITAOF (Redis ≥ 7.2, Valkey): producers use it for `fsync` confirms.
   * Redis 7.0 refuses a rule naming a command it does not know (default true).
   */
  readonly waitAof?: boolean;
}

/**
 * What every sluice client sends: the connection (ioredis' ready check is INFO, a Cluster client
 * reads CLUSTER SLOTS and CLUSTER INFO), the scripts (EVALSHA, EVAL after NOSCRIPT), and the
 * topology snapshot (MULTI of GET, HGETALL, HKEYS).
 */
const EVERY_ROLE = [
  ...['+ping', '+info', '+select', '+quit', '+client|setname', '+cluster|slots', '+cluster|info'],
  ...['+evalsha', '+eval', '+multi', '+exec', '+get', '+hgetall', '+hkeys'],
];

/**
 * Commands the scripts of a producer run (publish.lua; expire.lua for messages with a TTL; the
 * dead-letter relay, for what an overflow drops: XRANGE of the outbox, restore.lua, drop.lua),
 * HINCRBY for the dead letters and drops they count in the queue's stats hash.
 */
const PRODUCER_SCRIPTS = [
  ...['+xadd', '+xdel', '+xlen', '+xpending', '+xrange', '+xinfo|groups', '+exists'],
  ...['+hmget', '+hset', '+hincrby', '+del', '+pexpireat', '+time'],
];

/**
 * Commands of a consumer: its scripts (register, ack, dead_letter, requeue, reclaim, redeliver,
 * extend, release, own, members, read_ordered, promote, prune_group, deregister, idem_*) and
 * the relay's, its reads (XREADGROUP; XREAD for an ordered consumer), XGROUP CREATE for a
 * group found missing, CLIENT ID and UNBLOCK to stop a blocked read, COMMAND GETKEYS for the
 * writes of an idempotent handler on a cluster. Those writes run inside idem_commit.lua with
 * this user's rights: grant what the application's own writes need on top.
 */
const CONSUMER_COMMANDS = [
  ...PRODUCER_SCRIPTS,
  ...['+xreadgroup', '+xread', '+xack', '+xclaim', '+xautoclaim', '+xrevrange'],
  ...['+xgroup|create', '+xgroup|createconsumer', '+xgroup|delconsumer', '+xinfo|consumers'],
  ...['+hget', '+hdel', '+hsetnx', '+set', '+pttl', '+pexpire'],
  ...['+zadd', '+zrem', '+zrange', '+zrangebyscore', '+zremrangebyscore', '+zscore'],
  ...['+client|id', '+client|unblock', '+command|getkeys'],
];

/**
 * Commands of an admin: declaring and deleting exchanges, queues and bindings (declare, bind,
 * unbind, delete_*, fence scripts; XGROUP CREATE), inspectQueue (XLEN, XPENDING, ZCARD, ZRANGE
 * of the consumers and members, HMGET, TIME, XINFO STREAM), purgeQueue, deleteQueue (SCAN + UNLINK of its markers) and the DLQ tools (take,
 * restore, publish scripts).
 */
const ADMIN_COMMANDS = [
  ...PRODUCER_SCRIPTS,
  ...['+hget', '+hexists', '+hsetnx', '+hdel', '+incr', '+set', '+xack', '+xgroup|create'],
  ...['+zcard', '+zrange', '+scan', '+unlink', '+xinfo|stream'],
];

/**
 * Key patterns (globs, as ACL `~` rules and SCAN MATCH take them) of one namespace: every key of
 * a namespace starts with `<ns>:{<ns>}:` (its topology) or `<ns>:{<ns>:q:` (its queues; see
 * src/keys). A namespace has no `:`, so the `:` after the name keeps out a namespace whose name
 * starts with this one (`app` and `app2`); glob characters in the name are escaped.
 */
export function namespaceKeyPatterns(namespace: string): { topology: string; queues: string } {
  const ns = escapeGlob(namespace);
  return { topology: `${ns}:{${ns}}:*`, queues: `${ns}:{${ns}:q:*` };
}

/**
 * The ACL rules of `role` in the namespace `namespace` (see {@link namespaceKeyPatterns}), to
 * pass to {@link createAclUser}. Producers and consumers only read the topology; an admin
 * writes it too. No pub/sub channel is granted: sluice uses none.
 */
export function sluiceAclRules(
  namespace: string,
  role: SluiceRole,
  options: SluiceAclOptions = {},
): string[] {
  const { topology, queues } = namespaceKeyPatterns(namespace);
  const durability = ['+wait', ...(options.waitAof === false ? [] : ['+waitaof'])];
  switch (role) {
    case 'producer':
      return [`%R~${topology}`, `~${queues}`, ...EVERY_ROLE, ...PRODUCER_SCRIPTS, ...durability];
    case 'consumer':
      return [`%R~${topology}`, `~${queues}`, ...EVERY_ROLE, ...CONSUMER_COMMANDS, ...durability];
    case 'admin':
      return [`~${topology}`, `~${queues}`, ...EVERY_ROLE, ...ADMIN_COMMANDS, ...durability];
  }
}
