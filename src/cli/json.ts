/**
 * JSON as the CLI and the dashboard's API write it: a Buffer body as `{ "base64": … }` instead
 * of Node's `{ type: 'Buffer', data: [bytes] }`, a BigInt as a string.
 */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    (_key, item: unknown) => {
      if (typeof item === 'bigint') return item.toString();
      if (isSerializedBuffer(item)) return { base64: Buffer.from(item.data).toString('base64') };
      return item;
    },
    indent,
  );
}

/** What `Buffer.prototype.toJSON` makes of a Buffer before a replacer sees it. */
function isSerializedBuffer(value: unknown): value is { type: 'Buffer'; data: number[] } {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { type?: unknown }).type === 'Buffer' &&
    Array.isArray((value as { data?: unknown }).data)
  );
}
