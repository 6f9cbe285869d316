import type { RedisClient } from '../connection/client.js';
import { callScript, type ScriptArg } from '../connection/scripts.js';
import { PUBLISH, type PublishReply } from '../connection/script-catalog.js';
import { ServerError, UnsupportedError } from '../errors/index.js';
import { CONSUMER_GROUP, RELEASED_HOLDER, type Keyspace } from '../keys/index.js';

/** One message to append to its target queues. */
export interface AppendItem {
  readonly queues: readonly string[];
  /** The partition of each queue that the message goes to. */
  readonly partitions: readonly number[];
  /** The envelope's XADD field/value items. */
  readonly fields: readonly (string | Buffer)[];
  readonly dedupKey: string;
  /** The message id, kept in the dedup markers when it is not the dedup key ('' when it is). */
  readonly keptId: string;
  /** 0: no dedup. */
  readonly dedupWindowMs: number;
}

/** A queue's limit as the publish script enforces it. */
export interface QueueLimit {
  /** -1 for an unbounded queue (0 is a queue that holds nothing). */
  readonly maxLength: number;
  readonly overflow: string;
}

/** What happened to one item: stored (new or already there), or refused by a full target. */
export type ItemResult =
  | { readonly status: 'new' | 'dup'; readonly values: readonly string[] }
  /** `target`: 0-based position in the item's queues. */
  | { readonly status: 'full'; readonly target: number };

export type AppendResult =
  /**
   * A target's fence was above the version: route again. `missingFence`: the queue whose fence
   * was missing (deleted, or its keys deleted by hand).
   */
  | { readonly kind: 'stale'; readonly missingFence?: string }
  /** An atomic append met a full target (0-based positions); nothing was written. */
  | { readonly kind: 'full'; readonly item: number; readonly target: number }
  | { readonly kind: 'ok'; readonly results: readonly ItemResult[] };

/** How the appends of one call are laid out, and the server they go to. */
export interface AppendTarget {
  readonly redis: RedisClient;
  readonly keys: Keyspace;
  /** Cluster mode: one call per queue partition (slot); else one call for all (atomic). */
  readonly cluster: boolean;
}

/** Options of one {@link append}. */
export interface AppendOptions {
  /** The topology version the items were routed with; fences above it refuse the call. */
  readonly version: number;
  readonly limits: (queue: string) => QueueLimit;
  /** All or nothing: one call, so its targets must share a slot on a cluster-mode server. */
  readonly atomic: boolean;
  /** Make a write even when only duplicates are found, so that a WAIT after it covers them. */
  readonly touch: boolean;
}

/** One item's share of a call: the positions of its targets that the call covers. */
interface Part {
  readonly item: number;
  readonly targets: readonly number[];
}

/**
 * Appends items to their queues with the publish script. On a standalone server that is one
 * call for everything, atomic; on a cluster-mode server one call per queue partition, each
 * idempotent under its dedup keys, so that a retry after a partial failure fills in only the
 * missing queues. The calls of one append run concurrently.
 */
export async function append(
  target: AppendTarget,
  items: readonly AppendItem[],
  options: AppendOptions,
): Promise<AppendResult> {
  const calls = target.cluster ? partsBySlot(items) : [allParts(items)];
  if (options.atomic && calls.length > 1) {
    throw new UnsupportedError(
      'an atomic batch must target queues of one hash slot on a cluster-mode server',
    );
  }
  const replies = await Promise.all(
    calls.map((parts) => appendCall(target, items, parts, options)),
  );
  const results: { status: 'new' | 'dup' | 'full'; values: string[]; target: number }[] = items.map(
    (item) => ({ status: 'new', values: new Array<string>(item.queues.length), target: 0 }),
  );
  for (const [c, { reply, queues }] of replies.entries()) {
    const parts = calls[c] as Part[];
    if (reply.kind === 'stale') {
      if (!reply.missing) return { kind: 'stale' };
      return { kind: 'stale', missingFence: queues[reply.queue - 1] as string };
    }
    if (reply.kind === 'full') {
      const part = parts[reply.message - 1] as Part;
      return { kind: 'full', item: part.item, target: part.targets[reply.target - 1] as number };
    }
    // One status per part, a target position after 'full', one value per target otherwise.
    const expected = parts.reduce((n, p) => n + 1 + p.targets.length, 0);
    if (reply.replies.length < Math.min(expected, parts.length * 2)) {
      throw new ServerError(`publish answered ${reply.replies.length} values for ${expected}`);
    }
    let next = 0;
    for (const part of parts) {
      const result = results[part.item] as (typeof results)[number];
      const status = reply.replies[next++] as 'new' | 'dup' | 'full';
      if (status === 'full') {
        const position = part.targets[(reply.replies[next++] as number) - 1] as number;
        if (result.status !== 'full') Object.assign(result, { status, target: position });
        continue;
      }
      if (status === 'dup' && result.status === 'new') result.status = 'dup';
      for (const position of part.targets)
        result.values[position] = reply.replies[next++] as string;
    }
  }
  return {
    kind: 'ok',
    results: results.map((r) =>
      r.status === 'full'
        ? { status: 'full', target: r.target }
        : { status: r.status, values: r.values },
    ),
  };
}

function allParts(items: readonly AppendItem[]): Part[] {
  return items.map((item, i) => ({ item: i, targets: item.queues.map((_, t) => t) }));
}

/** One call per queue partition: every key of a call is in that partition's slot. */
function partsBySlot(items: readonly AppendItem[]): Part[][] {
  const byQueue = new Map<string, Part[]>();
  items.forEach((item, i) => {
    item.queues.forEach((queue, t) => {
      const name = `${item.partitions[t] as number} ${queue}`;
      let parts = byQueue.get(name);
      if (parts === undefined) byQueue.set(name, (parts = []));
      parts.push({ item: i, targets: [t] });
    });
  });
  return [...byQueue.values()];
}

/** One script call for `parts`: its reply, and the call's queues in the order it numbers them. */
async function appendCall(
  target: AppendTarget,
  items: readonly AppendItem[],
  parts: readonly Part[],
  options: AppendOptions,
): Promise<{ reply: PublishReply; queues: string[] }> {
  const { keys } = target;
  const queueKeys: string[] = [];
  const dedupSlots: string[] = [];
  /** On a cluster-mode server, the slot guard of the call's one queue partition. */
  const guards: string[] = [];
  /** The plan's sections (see src/lua/publish.lua): per queue, per group, per message. */
  const queues: ScriptArg[] = [];
  const groups: ScriptArg[] = [];
  const messages: ScriptArg[] = [];
  /** By `<partition> <queue>`: its position in the call, and the queue's name. */
  const queueIndex = new Map<string, number>();
  const queueNames: string[] = [];
  const groupIndex = new Map<string, number>();
  const indexOfQueue = (queue: string, partition: number): number => {
    const name = `${partition} ${queue}`;
    let index = queueIndex.get(name);
    if (index === undefined) {
      const k = keys.queue(queue, partition);
      queueKeys.push(k.stream, k.fence, k.deadLetters, k.stats);
      if (target.cluster) guards.push(k.slotGuard);
      const limit = options.limits(queue);
      queues.push(limit.maxLength, limit.overflow);
      index = queues.length / 2;
      queueIndex.set(name, index);
      queueNames.push(queue);
    }
    return index;
  };
  // A dedup group is a queue partition and a window: its two marker slots (see
  // src/lua/publish.lua).
  const indexOfGroup = (queue: string, partition: number, q: number, windowMs: number): number => {
    const group = `${windowMs} ${partition} ${queue}`;
    let index = groupIndex.get(group);
    if (index === undefined) {
      dedupSlots.push(...keys.dedupSlots(queue, windowMs, partition));
      groups.push(q, windowMs);
      index = groups.length / 2;
      groupIndex.set(group, index);
    }
    return index;
  };
  // The last target's queue, partition, window and indexes: consecutive messages mostly go to
  // the same place, which then costs no lookup.
  let last = { queue: '', partition: -1, window: -1, q: 0, g: 0 };
  for (const part of parts) {
    const item = items[part.item] as AppendItem;
    messages.push(item.dedupKey, item.keptId, part.targets.length);
    for (const t of part.targets) {
      const queue = item.queues[t] as string;
      const partition = item.partitions[t] as number;
      const window = item.dedupWindowMs;
      if (queue !== last.queue || partition !== last.partition || window !== last.window) {
        const q = indexOfQueue(queue, partition);
        const g = window > 0 ? indexOfGroup(queue, partition, q, window) : 0;
        last = { queue, partition, window, q, g };
      }
      messages.push(last.q, last.g);
    }
    messages.push(item.fields.length);
    for (const field of item.fields) messages.push(field);
  }
  const plan: ScriptArg[] = [
    CONSUMER_GROUP,
    RELEASED_HOLDER,
    options.atomic ? 1 : 0,
    options.touch ? 1 : 0,
    queues.length / 2,
    ...queues,
    groups.length / 2,
    ...groups,
    parts.length,
  ];
  for (const value of messages) plan.push(value);
  const reply = await callScript(
    target.redis,
    PUBLISH,
    { queues: queueKeys, dedupSlots, guards },
    { version: options.version, plan },
  );
  return { reply, queues: queueNames };
}
