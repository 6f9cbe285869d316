import type { CompiledTopology, TopologyCache } from '../routing/compiled.js';
import { append, type AppendTarget } from '../producer/append.js';
import { callScript } from '../connection/scripts.js';
import { DROP, RESTORE } from '../connection/script-catalog.js';
import { SluiceError } from '../errors/index.js';

/** Where an outbox entry goes and what its copy holds; no queues means it is dropped. */
export interface MovePlan {
  readonly queues: readonly string[];
  /** The partition of each queue that the copy goes to. */
  readonly partitions: readonly number[];
  readonly fields: readonly (string | Buffer)[];
}

/** What {@link moveOutboxEntry} did. */
export type MoveOutcome = 'routed' | 'dropped' | 'restored' | 'gone';

/** An outbox entry to move: the outbox, the entry, its queue's stats and its queue's stream. */
export interface OutboxEntryRef {
  readonly outbox: string;
  readonly entryId: string;
  /** The partition's counters: a dead letter dropped is counted there (`dropped`). */
  readonly stats: string;
  /**
   * Where the entry goes back when it routes nowhere (a replayed message), instead of being
   * dropped (a dead letter without a route, as RabbitMQ drops it).
   */
  readonly restoreTo?: string;
}

/**
 * How long the copies of a move remember the outbox entry they came from: a mover that dies
 * between copying and deleting the entry is followed by another within this window (the queue
 * keeper of any process with a consumer of the queue drains its outbox every 250 ms; a DLQ
 * replay drains it first), which then finds the copies. An hour bounds the markers' memory.
 */
const MOVE_DEDUP_WINDOW_MS = 3_600_000;
const MAX_STALE_RETRIES = 8;

/**
 * Moves one outbox entry in single-slot steps (DESIGN.md section 2): copies it into the
 * queues `plan` routes it to, with a dedup key naming the entry in each target's slot, then
 * deletes it from the outbox. Movers that race, or one that is interrupted and repeated, never
 * double a message. `plan` returns undefined when the entry routes nowhere with a topology the
 * cache may not have yet: the version is checked before the entry is dropped. `copied` hears
 * of the queues it was copied into. Resolves with 'gone' when another mover deleted the entry
 * first.
 */
export async function moveOutboxEntry(
  target: AppendTarget,
  topology: TopologyCache,
  { outbox, entryId, stats, restoreTo }: OutboxEntryRef,
  plan: (compiled: CompiledTopology) => MovePlan | undefined,
  copied: (compiled: CompiledTopology, plan: MovePlan) => void,
): Promise<MoveOutcome> {
  for (let attempt = 0; ; attempt++) {
    const compiled = await topology.get();
    const planned = plan(compiled);
    if (planned !== undefined && planned.queues.length > 0) {
      const result = await append(
        target,
        [
          {
            queues: planned.queues,
            partitions: planned.partitions,
            fields: planned.fields,
            dedupKey: `${outbox} ${entryId}`,
            keptId: '',
            dedupWindowMs: MOVE_DEDUP_WINDOW_MS,
          },
        ],
        {
          version: compiled.router.version,
          // Moves are not refused by a full target (RabbitMQ applies the limit, sluice does not).
          limits: () => ({ maxLength: -1, overflow: 'reject-publish' }),
          atomic: false,
          touch: false,
        },
      );
      if (result.kind === 'ok') {
        copied(compiled, planned);
        return (await target.redis.xdel(outbox, entryId)) > 0 ? 'routed' : 'gone';
      }
    } else if ((await topology.currentVersion()) === compiled.router.version) {
      // Routes nowhere with the current topology: dropped, or back where it came from.
      if (restoreTo !== undefined) {
        const restored = await callScript(
          target.redis,
          RESTORE,
          { outbox, stream: restoreTo },
          { entryId },
        );
        return restored === 'ok' ? 'restored' : 'gone';
      }
      return callScript(target.redis, DROP, { outbox, stats }, { entryId });
    }
    topology.invalidate(compiled);
    if (attempt >= MAX_STALE_RETRIES) {
      throw new SluiceError('PRECONDITION_FAILED', 'topology kept changing while moving an entry', {
        retriable: true,
      });
    }
  }
}
