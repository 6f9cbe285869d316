/**
 * Redis Cluster's key → hash slot mapping (the cluster specification: CRC16-CCITT/XMODEM of the
 * key, or of its hash tag, modulo 16384): which slot a key of a script must share.
 */

/** CRC16 with polynomial 0x1021, initial value 0, no reflection (XMODEM), as Redis Cluster uses. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/** The hash slot of a key: the part between the first `{` and the next `}` if not empty. */
export function hashSlot(key: string | Buffer): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % 16384;
  }
  return crc16(bytes) % 16384;
}
