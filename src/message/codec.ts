import { CodecError } from '../errors/index.js';

/** An encoded body and the content type that tells consumers how to decode it. */
export interface EncodedBody {
  readonly data: Buffer;
  readonly contentType: string;
}

/**
 * Turns message bodies into bytes and back. The content type travels with the
 * message, so a consumer can decode what another codec wrote.
 */
export interface Codec {
  encode(body: unknown): EncodedBody;
  decode(data: Buffer, contentType: string | undefined): unknown;
}

const OCTET_STREAM = 'application/octet-stream';
const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';

/**
 * What the default codec makes of a body, before it is bytes: a Buffer as it is, a string as
 * text, anything else as its JSON text. The producer sends the text as it is (one encoding, on
 * the socket); {@link defaultCodec} returns its UTF-8 bytes.
 */
export function encodeDefault(body: unknown): { data: string | Buffer; contentType: string } {
  if (Buffer.isBuffer(body)) return { data: body, contentType: OCTET_STREAM };
  if (typeof body === 'string') return { data: body, contentType: TEXT };
  let json: string | undefined;
  try {
    json = JSON.stringify(body);
  } catch (cause) {
    throw new CodecError('body is not serializable as JSON', cause);
  }
  if (json === undefined) throw new CodecError(`a body of type ${typeof body} has no JSON form`);
  return { data: json, contentType: JSON_TYPE };
}

/**
 * The default codec: a Buffer is sent as bytes, a string as UTF-8 text, anything
 * else as JSON. Decoding follows the content type, so each comes back as it was sent.
 */
export const defaultCodec: Codec = {
  encode(body: unknown): EncodedBody {
    const { data, contentType } = encodeDefault(body);
    return { data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data, contentType };
  },
  decode(data: Buffer, contentType: string | undefined): unknown {
    if (contentType === undefined || contentType === OCTET_STREAM) return data;
    if (contentType.startsWith('text/')) return data.toString('utf8');
    if (contentType === JSON_TYPE || contentType.endsWith('+json')) {
      try {
        return JSON.parse(data.toString('utf8')) as unknown;
      } catch (cause) {
        throw new CodecError('body is not valid JSON', cause);
      }
    }
    return data;
  },
};
