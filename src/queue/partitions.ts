/**
 * Partitions of a queue (DESIGN.md section 7): P streams, each in a slot of its own, and the
 * stable hash that puts a partition key in one of them.
 */

/** The most partitions a queue may have. */
export const MAX_PARTITIONS = 1024;

/** How many partitions a queue record has (1 unless it was declared with more). */
export function partitionCount(
  record: { readonly partitions?: number | undefined } | undefined,
): number {
  return record?.partitions ?? 1;
}

/**
 * The partition of `key` among `partitions`: FNV-1a (32 bits) of its UTF-8 bytes, modulo the
 * count. Stable across processes and releases: it is what keeps one key in one partition.
 */
export function partitionOf(key: string, partitions: number): number {
  return partitions === 1 ? 0 : keyHash(key) % partitions;
}

function keyHash(key: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The partition of `key` in each of `queues` (0 in a queue of one partition). */
export function targetPartitions(
  records: ReadonlyMap<string, { readonly partitions?: number | undefined }>,
  queues: readonly string[],
  key: string,
): number[] {
  let hash: number | undefined;
  return queues.map((queue) => {
    const count = partitionCount(records.get(queue));
    if (count === 1) return 0;
    hash ??= keyHash(key);
    return hash % count;
  });
}

/** 0, 1, …, `partitions` - 1. */
export function partitionNumbers(partitions: number): number[] {
  return Array.from({ length: partitions }, (_, p) => p);
}
