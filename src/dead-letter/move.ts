import type { Redis } from 'ioredis';
import { runScript } from '../connection/scripts.js';
import type { Keyspace } from '../keys/index.js';
import type { CompiledTopology, TopologyCache } from '../topology/cache.js';

/** Where an entry goes and what its copy holds; no queues means delete it. */
export interface MovePlan {
  readonly queues: readonly string[];
  readonly fields: readonly (string | Buffer)[];
}

/** An entry to move out of a stream. */
export interface MoveSource {
  readonly stream: string;
  readonly entryId: string;
  /** The source's consumer group: an entry its consumers hold unacked is left alone ('' when none). */
  readonly group: string;
}

const MAX_STALE_RETRIES = 8;

/**
 * Moves one entry to the queues that `plan` routes it to, in one script that checks the
 * topology version and that the entry is still there. `plan` returns undefined when the
 * entry routes nowhere, which may only mean the cached topology is behind: the version is
 * checked first, then the entry is deleted or kept as `unroutable` says. Resolves with the
 * new stream ids (none when deleted or kept, or when a consumer of the source holds the entry),
 * or undefined when the entry was already gone.
 */
export async function moveEntry(
  redis: Redis,
  keys: Keyspace,
  topology: TopologyCache,
  source: MoveSource,
  plan: (compiled: CompiledTopology) => MovePlan | undefined,
  unroutable: 'delete' | 'keep',
): Promise<string[] | undefined> {
  for (let attempt = 0; ; attempt++) {
    const compiled = await topology.get();
    const planned = plan(compiled);
    const current =
      planned === undefined && (await topology.currentVersion()) === compiled.router.version;
    if (current && unroutable === 'keep') return [];
    if (planned !== undefined || current) {
      const { queues, fields } = planned ?? { queues: [], fields: [] };
      const reply = (await runScript(
        redis,
        'move',
        [keys.topologyVersion, source.stream, ...queues.map((q) => keys.queue(q).stream)],
        [String(compiled.router.version), source.entryId, source.group, ...fields],
      )) as string[];
      if (reply[0] === 'gone') return undefined;
      if (reply[0] === 'busy') return [];
      if (reply[0] === 'ok') return reply.slice(1);
    }
    topology.invalidate(compiled);
    if (attempt >= MAX_STALE_RETRIES)
      throw new Error('topology kept changing while moving an entry');
  }
}
