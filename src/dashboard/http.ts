import type { IncomingMessage, ServerResponse } from 'node:http';
import { SluiceError, type SluiceErrorCode } from '../errors/index.js';
import { toJson } from '../cli/json.js';

/** An error the API answers with a status of its own (a bad request body, a refused write). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Largest request body the API reads: its bodies are a few small options. */
const MAX_BODY_BYTES = 64 * 1024;

/** HTTP statuses of the sluice errors a request can cause; anything else is a 500. */
const STATUS: Partial<Record<SluiceErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  UNSUPPORTED: 400,
  NOT_FOUND: 404,
  PRECONDITION_FAILED: 409,
  TIMEOUT: 504,
  CONNECTION: 503,
};

/** Answers `value` as JSON. */
export function sendJson(response: ServerResponse, status: number, value: unknown): void {
  const body = toJson(value);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  });
  response.end(body);
}

/** Answers an error as `{ error: { code, message } }` with the status it calls for. */
export function sendError(response: ServerResponse, error: unknown): void {
  if (error instanceof HttpError) {
    sendJson(response, error.status, { error: { code: 'HTTP', message: error.message } });
  } else if (error instanceof SluiceError) {
    sendJson(response, STATUS[error.code] ?? 500, {
      error: { code: error.code, message: error.message },
    });
  } else {
    sendJson(response, 500, { error: { code: 'INTERNAL', message: String(error) } });
  }
}

/** The request's JSON body: an object, `{}` when empty; anything else is a 400. */
export async function readJsonBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'request body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new HttpError(400, 'request body must be a JSON object');
  return value as Record<string, unknown>;
}
