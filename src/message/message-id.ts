/**
 * Message ids: UUID version 7 (RFC 9562), the default `messageId` of a publish. The first 48
 * bits are the Unix time in milliseconds, so ids sort by publish time; the 12 bits after the
 * version count the ids made within one millisecond (RFC 9562 section 6.2, method 1), from a
 * random start, so that the ids of one process also sort in the order they were made; the
 * remaining 62 bits are random, from a pool refilled in blocks (one `randomFillSync` per 256
 * ids rather than one per id).
 */
import { randomFillSync } from 'node:crypto';

/** Random bytes an id takes: 2 for the counter's start (11 bits), 8 for the 62 random bits. */
const RANDOM_BYTES = 10;
const POOL_IDS = 256;
const pool = Buffer.alloc(RANDOM_BYTES * POOL_IDS);
let next = pool.length;

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/** The millisecond of the last id, and the counter within it (12 bits). */
let lastMs = -1;
let counter = 0;

/** A new UUID v7, lowercase, in the 8-4-4-4-12 form. */
export function messageId(): string {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const at = next;
  next += RANDOM_BYTES;
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    // A random start in the lower half leaves room for 2,048 more ids in this millisecond.
    counter = ((pool[at] as number) << 3) | ((pool[at + 1] as number) & 0x07);
  } else if (++counter > 0xfff) {
    // 4,096 ids in one millisecond (or the clock went back): borrow the next millisecond.
    lastMs += 1;
    counter = 0;
  }
  const time = lastMs.toString(16).padStart(12, '0');
  return (
    `${time.slice(0, 8)}-${time.slice(8)}-7${(counter >> 8).toString(16)}${HEX[counter & 0xff]}` +
    `-${HEX[0x80 | ((pool[at + 2] as number) & 0x3f)]}${HEX[pool[at + 3] as number]}` +
    `-${HEX[pool[at + 4] as number]}${HEX[pool[at + 5] as number]}${HEX[pool[at + 6] as number]}` +
    `${HEX[pool[at + 7] as number]}${HEX[pool[at + 8] as number]}${HEX[pool[at + 9] as number]}`
  );
}
