/** Stream ids (`<ms>-<seq>`) compared and bounded on the client, where it is cheap. */

/**
 * Whether stream id `a` (`<ms>-<seq>`, decimal without leading zeros, as Redis writes them)
 * comes before `b`: compared as numbers, without slicing or parsing either.
 */
function idBefore(a: string, b: string): boolean {
  const dash = a.indexOf('-');
  const otherDash = b.indexOf('-');
  // Fewer digits in the milliseconds: an earlier time.
  if (dash !== otherDash) return dash < otherDash;
  // Both parts of equal length: as text is as numbers.
  if (a.length === b.length) return a < b;
  for (let i = 0; i < dash; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return x < y;
  }
  // Same milliseconds: fewer digits in the sequence number is a lower one.
  return a.length < b.length;
}

/** The lowest and highest of some stream ids: the range a script's XPENDING scans. */
export interface IdRange {
  readonly lowestId: string;
  readonly highestId: string;
}

/** The lowest and highest of `ids` (at least one), in one pass. */
export function idRange(ids: readonly string[]): IdRange {
  let lowestId = ids[0] as string;
  let highestId = lowestId;
  for (let i = 1; i < ids.length; i++) {
    const id = ids[i] as string;
    // Ids mostly come in read order, ascending: one comparison each.
    if (idBefore(highestId, id)) highestId = id;
    else if (idBefore(id, lowestId)) lowestId = id;
  }
  return { lowestId, highestId };
}
