import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeEnvelope } from '../../src/message/envelope.js';
import { packFields } from '../../src/producer/pack.js';

/**
 * Reads back what `cmsgpack.unpack` reads in the publish script: msgpack raw strings one after
 * another (fixraw 0xa0-0xbf, raw16 0xda, raw32 0xdb, lengths big-endian). Anything else, or a
 * length that runs past the end, is an error: the script would get garbage.
 */
function unpackRaws(packed: Buffer): { header: 'fixraw' | 'raw16' | 'raw32'; bytes: Buffer }[] {
  const items: { header: 'fixraw' | 'raw16' | 'raw32'; bytes: Buffer }[] = [];
  let offset = 0;
  while (offset < packed.length) {
    const type = packed.readUInt8(offset);
    let header: 'fixraw' | 'raw16' | 'raw32';
    let length: number;
    if ((type & 0xe0) === 0xa0) {
      header = 'fixraw';
      length = type & 0x1f;
      offset += 1;
    } else if (type === 0xda) {
      header = 'raw16';
      length = packed.readUInt16BE(offset + 1);
      offset += 3;
    } else if (type === 0xdb) {
      header = 'raw32';
      length = packed.readUInt32BE(offset + 1);
      offset += 5;
    } else {
      throw new Error(`byte ${offset}: 0x${type.toString(16)} is not a msgpack raw string`);
    }
    if (offset + length > packed.length) {
      throw new Error(`byte ${offset}: a raw of ${length} bytes runs past the end`);
    }
    items.push({ header, bytes: packed.subarray(offset, offset + length) });
    offset += length;
  }
  return items;
}

// Compares Buffers with Buffer#equals: element by element, 64 KiB items take seconds.
expect.addEqualityTesters([
  (a: unknown, b: unknown) => (Buffer.isBuffer(a) && Buffer.isBuffer(b) ? a.equals(b) : undefined),
]);

const bytesOf = (item: string | Buffer): Buffer =>
  typeof item === 'string' ? Buffer.from(item, 'utf8') : item;

describe('packFields (message fields as one msgpack argument)', () => {
  it('packs no items into an empty buffer', () => {
    expect(packFields([])).toEqual(Buffer.alloc(0));
  });

  it('packs an empty string as a fixraw of length 0', () => {
    expect(packFields([''])).toEqual(Buffer.from([0xa0]));
  });

  it('writes the length in the header: fixraw up to 31 bytes, raw16 up to 65535, raw32 above', () => {
    const cases = [
      { length: 1, header: 'fixraw', headerBytes: 1 },
      { length: 31, header: 'fixraw', headerBytes: 1 },
      { length: 32, header: 'raw16', headerBytes: 3 },
      { length: 65_535, header: 'raw16', headerBytes: 3 },
      { length: 65_536, header: 'raw32', headerBytes: 5 },
    ] as const;
    for (const { length, header, headerBytes } of cases) {
      const item = 'x'.repeat(length);
      const packed = packFields([item]);
      expect(packed.length, `${length} bytes`).toBe(headerBytes + length);
      expect(unpackRaws(packed), `${length} bytes`).toEqual([{ header, bytes: Buffer.from(item) }]);
    }
  });

  it('writes the exact header bytes at each boundary', () => {
    expect(packFields(['a'.repeat(31)]).subarray(0, 1)).toEqual(Buffer.from([0xbf]));
    expect(packFields(['a'.repeat(32)]).subarray(0, 3)).toEqual(Buffer.from([0xda, 0x00, 0x20]));
    expect(packFields(['a'.repeat(65_535)]).subarray(0, 3)).toEqual(
      Buffer.from([0xda, 0xff, 0xff]),
    );
    expect(packFields(['a'.repeat(65_536)]).subarray(0, 5)).toEqual(
      Buffer.from([0xdb, 0x00, 0x01, 0x00, 0x00]),
    );
  });

  it('counts a string in UTF-8 bytes, not in UTF-16 code units', () => {
    const cases = [
      // 16 code units, 32 bytes: a raw16, though `.length` says 16.
      { item: 'é'.repeat(16), header: 'raw16' },
      // 8 emoji: 16 code units, 32 bytes.
      { item: '😀'.repeat(8), header: 'raw16' },
      // 31 bytes of mixed widths: 1 + 2 + 3 + 4 = 10, three times, plus one.
      { item: 'aé€😀'.repeat(3) + 'z', header: 'fixraw' },
      // 21 846 code units, 65 538 bytes: a raw32.
      { item: '€'.repeat(21_846), header: 'raw32' },
    ] as const;
    for (const { item, header } of cases) {
      expect(unpackRaws(packFields([item])), item.slice(0, 8)).toEqual([
        { header, bytes: Buffer.from(item, 'utf8') },
      ]);
    }
  });

  it('copies Buffers byte for byte, bytes that are not UTF-8 included', () => {
    const binary = Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xda, 0xdb]);
    const large = Buffer.alloc(65_536, 0xdb);
    const packed = packFields([binary, Buffer.alloc(0), large]);
    expect(unpackRaws(packed)).toEqual([
      { header: 'fixraw', bytes: binary },
      { header: 'fixraw', bytes: Buffer.alloc(0) },
      { header: 'raw32', bytes: large },
    ]);
  });

  it('keeps the items in order, one raw each, with nothing between or after them', () => {
    const items = ['v', '1', 'id', 'm-1', 'b', Buffer.from('{"n":1}'), 'é'.repeat(40)];
    const packed = packFields(items);
    expect(unpackRaws(packed).map((raw) => raw.bytes)).toEqual(items.map(bytesOf));
  });

  it('round-trips the field/value items of an envelope', () => {
    const items = encodeEnvelope(
      {
        messageId: 'order-1001',
        exchange: 'orders',
        routingKey: 'order.created',
        publishedAt: 1_732_546_000_000,
        headers: { tenant: 'acmé', priority: 3 },
        contentType: 'application/json',
        redeliveries: 0,
        correlationId: 'req-7',
      },
      Buffer.from(JSON.stringify({ orderId: 1001, note: 'x'.repeat(70_000) })),
    );
    expect(unpackRaws(packFields(items)).map((raw) => raw.bytes)).toEqual(items.map(bytesOf));
  });

  it('round-trips any list of strings and Buffers', () => {
    const item = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
    );
    fc.assert(
      fc.property(fc.array(item, { maxLength: 12 }), (items) => {
        const packed = packFields(items);
        expect(unpackRaws(packed).map((raw) => raw.bytes)).toEqual(items.map(bytesOf));
      }),
    );
  });
});
