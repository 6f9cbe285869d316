import { describe, expect, it } from 'vitest';
import { messageId } from '../../src/message/message-id.js';

/** RFC 9562 UUID version 7, lowercase: version nibble 7, variant bits 10. */
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/u;

/** The Unix time in ms of a UUID v7: its first 48 bits. */
const timeOf = (id: string): number => Number.parseInt(id.replace('-', '').slice(0, 12), 16);

describe('message ids (UUID v7)', () => {
  it('are UUID v7 carrying the time they were made, unique, and sorted as made', () => {
    const before = Date.now();
    const ids = Array.from({ length: 100_000 }, () => messageId());
    const after = Date.now();
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect(new Set(ids).size).toBe(ids.length);
    // Within one process, made later sorts later, also within one millisecond.
    expect([...ids].sort()).toEqual(ids);
    expect(timeOf(ids[0] as string)).toBeGreaterThanOrEqual(before);
    // 4,096 ids in one millisecond borrow the next one: at most a few ms ahead here.
    expect(timeOf(ids[ids.length - 1] as string)).toBeLessThanOrEqual(after + 100);
  });

  it('spread their random bits evenly', () => {
    // Every hex digit of the last group, at every position, over 16,000 ids: each digit is
    // expected 1,000 times per position; a stuck or biased bit would be far off.
    const counts = Array.from({ length: 12 }, () => new Map<string, number>());
    for (let i = 0; i < 16_000; i++) {
      const tail = messageId().slice(24);
      [...tail].forEach((digit, position) => {
        const seen = counts[position] as Map<string, number>;
        seen.set(digit, (seen.get(digit) ?? 0) + 1);
      });
    }
    for (const seen of counts) {
      expect(seen.size).toBe(16);
      for (const count of seen.values()) expect(count).toBeGreaterThan(800);
    }
  });
});
