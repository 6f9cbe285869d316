/**
 * Packs a message's XADD field/value items into one script argument: msgpack raw strings
 * (fixraw, raw16, raw32: the types the cmsgpack of Redis and Valkey reads) one after another,
 * which `cmsgpack.unpack` turns back into as many Lua strings, straight into the XADD call.
 * One argument instead of a dozen per message is what keeps a large coalesced call cheap to
 * send and to start.
 */
export function packFields(items: readonly (string | Buffer)[]): Buffer {
  let size = 0;
  const lengths = items.map((item) => {
    const length = typeof item === 'string' ? Buffer.byteLength(item) : item.length;
    size += headerBytes(length) + length;
    return length;
  });
  const packed = Buffer.allocUnsafe(size);
  let offset = 0;
  items.forEach((item, i) => {
    const length = lengths[i] as number;
    if (length < 32) {
      offset = packed.writeUInt8(0xa0 | length, offset);
    } else if (length < 0x10000) {
      offset = packed.writeUInt8(0xda, offset);
      offset = packed.writeUInt16BE(length, offset);
    } else {
      offset = packed.writeUInt8(0xdb, offset);
      offset = packed.writeUInt32BE(length, offset);
    }
    offset += typeof item === 'string' ? packed.write(item, offset) : item.copy(packed, offset);
  });
  return packed;
}

function headerBytes(length: number): number {
  if (length < 32) return 1;
  return length < 0x10000 ? 3 : 5;
}
