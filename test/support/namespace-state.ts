/**
 * What a namespace holds in Redis, key by key, to tell whether a call wrote anything: compare
 * the state before the call with the state after it.
 */
import type { Redis } from 'ioredis';
import { escapeGlob } from '../../src/keys/index.js';

/** One key: its type and content, and whether it has a time to live. */
export interface KeyState {
  readonly content: string;
  readonly expires: boolean;
}

/** Every key of a namespace with its state. */
export type NamespaceState = ReadonlyMap<string, KeyState>;

/** Pairs `[name, value, name, value, ...]` of a Redis reply as entries. */
function pairs(reply: unknown): [string, unknown][] {
  const items = reply as unknown[];
  const entries: [string, unknown][] = [];
  for (let i = 0; i + 1 < items.length; i += 2) entries.push([String(items[i]), items[i + 1]]);
  return entries;
}

/**
 * A stream's content: entries, groups (last delivered id, entries read, pending count),
 * pending entries (id, owner, delivery count) and consumers (name, pending count). Idle times
 * and a consumer's `seen-time` are left out: they change with time and with a consumer's
 * blocking reads, not with a write.
 */
async function describeStream(redis: Redis, key: string): Promise<string> {
  const entries = await redis.xrangeBuffer(key, '-', '+');
  const groups = (await redis.xinfo('GROUPS', key)) as unknown[];
  const groupStates = await Promise.all(
    groups.map(async (group) => {
      const fields = new Map(pairs(group));
      const name = String(fields.get('name'));
      const pending = (await redis.xpending(key, name, '-', '+', 1_000_000)) as unknown[][];
      const consumers = (await redis.xinfo('CONSUMERS', key, name)) as unknown[];
      return {
        name,
        lastDeliveredId: fields.get('last-delivered-id'),
        entriesRead: fields.get('entries-read'),
        pending: pending.map(([id, consumer, , count]) => [id, consumer, count]),
        consumers: consumers.map((consumer) => {
          const consumerFields = new Map(pairs(consumer));
          return [consumerFields.get('name'), consumerFields.get('pending')];
        }),
      };
    }),
  );
  const content = entries.map(([id, fields]) => [
    id.toString(),
    fields.map((field) => field.toString('base64')),
  ]);
  return JSON.stringify({ stream: content, groups: groupStates });
}

/**
 * Reads every key of `namespace` (SCAN on the prefix): a stream as {@link describeStream}
 * says, any other key as its DUMP, each with whether it has a time to live.
 */
export async function namespaceState(redis: Redis, namespace: string): Promise<NamespaceState> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(
      cursor,
      'MATCH',
      `${escapeGlob(namespace)}:*`,
      'COUNT',
      1000,
    );
    keys.push(...found);
    cursor = next;
  } while (cursor !== '0');
  const described = await Promise.all(
    keys.map(async (key): Promise<[string, KeyState]> => {
      const [type, ttlMs] = await Promise.all([redis.type(key), redis.pttl(key)]);
      const content =
        type === 'stream'
          ? await describeStream(redis, key)
          : `${type} ${(await redis.dumpBuffer(key))?.toString('base64') ?? 'gone'}`;
      return [key, { content, expires: ttlMs >= 0 }];
    }),
  );
  return new Map(described);
}

/**
 * The keys that differ between two states of a namespace: added, changed or removed. A key with
 * a time to live that is gone afterwards expired meanwhile (dedup markers do): not a write.
 */
export function changedKeys(before: NamespaceState, after: NamespaceState): string[] {
  const changed: string[] = [];
  for (const [key, state] of after) {
    const previous = before.get(key);
    if (previous?.content !== state.content || previous.expires !== state.expires) {
      changed.push(previous === undefined ? `added ${key}` : `changed ${key}`);
    }
  }
  for (const [key, state] of before) {
    if (!after.has(key) && !state.expires) changed.push(`removed ${key}`);
  }
  return changed.sort();
}
