import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { idRange } from '../../src/consumer/stream-ids.js';

/** A stream id as Redis writes it: decimal milliseconds and sequence, no leading zeros. */
const streamId = fc
  .tuple(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }))
  .map(([ms, seq]) => `${ms}-${seq}`);

/** The id's place in stream order, as a number. */
const order = (id: string): bigint => {
  const [ms, seq] = id.split('-') as [string, string];
  return (BigInt(ms) << 64n) + BigInt(seq);
};

describe('idRange', () => {
  it('finds the lowest and highest stream id, as the ids compare as numbers', () => {
    fc.assert(
      fc.property(fc.array(streamId, { minLength: 1, maxLength: 30 }), (ids) => {
        const sorted = [...ids].sort((a, b) =>
          order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0,
        );
        expect(idRange(ids)).toEqual({ lowestId: sorted[0], highestId: sorted.at(-1) });
      }),
      { numRuns: 500 },
    );
  });

  it('compares by digits, not as text: 9-0 before 10-0, 5-9 before 5-10', () => {
    expect(idRange(['10-0', '9-0'])).toEqual({ lowestId: '9-0', highestId: '10-0' });
    expect(idRange(['5-10', '5-9'])).toEqual({ lowestId: '5-9', highestId: '5-10' });
    expect(idRange(['7-3'])).toEqual({ lowestId: '7-3', highestId: '7-3' });
  });
});
