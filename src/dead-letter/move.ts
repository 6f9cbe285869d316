import type { CompiledTopology, TopologyCache } from '../routing/compiled.js';
import { append, type AppendTarget } from '../producer/append.js';
import { packFields } from '../producer/pack.js';

/** Where an outbox entry goes and what its copy holds; no queues means it is dropped. */
export interface MovePlan {
  readonly queues: readonly string[];
  readonly fields: readonly (string | Buffer)[];
}

/** What {@link moveOutboxEntry} did. */
export type MoveOutcome = 'routed' | 'dropped' | 'gone';

/**
 * How long the copies of a move remember the outbox entry they came from: a mover that dies
 * between copying and deleting the entry is followed by another within this window (any
 * process with a consumer of the queue drains its outbox), which then finds the copies.
 */
const MOVE_DEDUP_WINDOW_MS = 86_400_000;
const MAX_STALE_RETRIES = 8;

/**
 * Moves one outbox entry in single-slot steps (DESIGN.md section 2): copies it into the
 * queues `plan` routes it to, with a dedup key naming the entry in each target's slot, then
 * deletes it from the outbox. Movers that race, or one that is interrupted and repeated, never
 * double a message. `plan` returns undefined when the entry routes nowhere with a topology the
 * cache may not have yet: the version is checked before the entry is dropped. Resolves with
 * 'gone' when another mover deleted the entry first.
 */
export async function moveOutboxEntry(
  target: AppendTarget,
  topology: TopologyCache,
  outbox: string,
  entryId: string,
  plan: (compiled: CompiledTopology) => MovePlan | undefined,
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
            fields: packFields(planned.fields),
            dedupKey: `${outbox} ${entryId}`,
            keptId: '',
            dedupWindowMs: MOVE_DEDUP_WINDOW_MS,
          },
        ],
        {
          version: compiled.router.version,
          // Moves are not refused by a full target (RabbitMQ applies the limit, sluice does not).
          limits: () => ({ maxLength: 0, overflow: 'reject-publish' }),
          atomic: false,
          touch: false,
        },
      );
      if (result.kind === 'ok')
        return (await target.redis.xdel(outbox, entryId)) > 0 ? 'routed' : 'gone';
    } else if ((await topology.currentVersion()) === compiled.router.version) {
      // Routes nowhere with the current topology: dropped.
      return (await target.redis.xdel(outbox, entryId)) > 0 ? 'dropped' : 'gone';
    }
    topology.invalidate(compiled);
    if (attempt >= MAX_STALE_RETRIES) {
      throw new Error('topology kept changing while moving an entry');
    }
  }
}
