import type { RedisClient } from '../connection/client.js';
import { describeEntry, type DeadLetter, type ForeignEntry } from '../dead-letter/tools.js';
import { CONSUMER_GROUP, type Keyspace } from '../keys/index.js';
import type { Codec } from '../message/codec.js';
import { validateIntegerOption, validateName } from '../validation/index.js';
import type { QueueData } from './data.js';
import { partitionCount, partitionNumbers } from './partitions.js';

/** A ready message of a queue as {@link Sluice.peekQueue} shows it, with its partition. */
export type PeekedMessage = (DeadLetter | ForeignEntry) & { readonly partition: number };

/** Orders stream ids (`<ms>-<seq>`) numerically; ids of different partitions interleave by time. */
function compareStreamIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bMs, bSeq] = b.split('-').map(BigInt) as [bigint, bigint];
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  return aSeq === bSeq ? 0 : aSeq < bSeq ? -1 : 1;
}

/**
 * Reads up to `count` of the oldest ready messages of a queue without consuming them: in each
 * partition, the entries after the last one its consumer group delivered (as purge reads
 * them, see src/lua/lib/ready_entries.lua), merged by stream id. A delivery given back in place
 * is ready too but sits before that id; it is not shown (a peek is a glance, not an audit).
 */
export async function peekQueue(
  redis: RedisClient,
  keys: Keyspace,
  queues: QueueData,
  codec: Codec,
  queue: string,
  count: number,
): Promise<PeekedMessage[]> {
  validateName('queue', queue);
  validateIntegerOption('count', count, 1, 10_000);
  const partitions = partitionCount(await queues.require(queue));
  const perPartition = await Promise.all(
    partitionNumbers(partitions).map(async (partition) => {
      const stream = keys.queue(queue, partition).stream;
      const start = await readyStart(redis, stream);
      if (start === undefined) return [];
      const entries = (await redis.xrangeBuffer(stream, start, '+', 'COUNT', count)) as [
        Buffer,
        Buffer[],
      ][];
      return entries.map(([id, fields]) => ({
        ...describeEntry(codec, id.toString(), fields),
        partition,
      }));
    }),
  );
  return perPartition
    .flat()
    .sort((a, b) => compareStreamIds(a.streamId, b.streamId))
    .slice(0, count);
}

/** Where the ready part of a stream starts: after its group's last delivered id. */
async function readyStart(redis: RedisClient, stream: string): Promise<string | undefined> {
  // XINFO refuses a missing stream; a queue whose stream is not there yet holds nothing.
  if ((await redis.exists(stream)) === 0) return undefined;
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  for (const info of groups) {
    const field = (name: string): unknown => info[info.indexOf(name) + 1];
    if (field('name') === CONSUMER_GROUP) return `(${String(field('last-delivered-id'))}`;
  }
  return '-';
}
