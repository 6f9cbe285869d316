/**
 * Headers exchange matching, reproducing RabbitMQ 3.10's
 * `rabbit_exchange_type_headers:headers_match`.
 *
 * The broker walks the binding arguments and the message headers as two key-sorted
 * lists and merges them; for scalar values that is the same as looking every binding
 * argument up in the headers, which is what this module does:
 *
 * - `x-match` selects the mode: `all` (also when missing or unrecognised, as the broker's
 *   `parse_x_match` falls back to it), `any`, `all-with-x`, `any-with-x`.
 * - `all`/`any` skip binding arguments whose key starts with `x-`; message headers
 *   with such keys then have nothing to match against, so they are ignored too.
 * - `-with-x` modes compare `x-` arguments like any other, except `x-match` itself,
 *   which the broker always skips (otherwise no message without an `x-match` header
 *   could ever match).
 * - A value matches when the header exists with the same type and value: `1`, `"1"`
 *   and `true` are all different. A `null` argument (AMQP void) matches a header that exists,
 *   whatever its value, as the broker compares void with any value as equal.
 * - With nothing left to compare, `all` matches every message and `any` none.
 */
import type { Headers, HeaderValue } from '../message/headers.js';

/**
 * Arguments of a binding to a headers exchange: `x-match` (`all` by default, `any`,
 * `all-with-x`, `any-with-x`) and the header values to compare; `null` matches a header that
 * is present with any value (RabbitMQ's void argument).
 */
export type BindingArguments = Readonly<Record<string, HeaderValue | null>>;

/** A compiled headers binding: whether a message with these headers matches it. */
export type HeadersMatcher = (headers: Headers) => boolean;

/**
 * Compiles binding arguments once, so that a headers exchange does not re-read
 * `x-match` and re-filter `x-` keys for every message.
 */
export function compileHeadersBinding(bindingArguments: BindingArguments): HeadersMatcher {
  const mode = bindingArguments['x-match'];
  const withX = mode === 'all-with-x' || mode === 'any-with-x';
  const expected: (readonly [string, HeaderValue | null])[] = Object.entries(
    bindingArguments,
  ).filter(([key]) => key !== 'x-match' && (withX || !key.startsWith('x-')));
  // `===` against a scalar also rejects absent keys and inherited properties such as
  // `constructor`, so no separate own-property check is needed; presence (null) needs one.
  const matches = (
    [key, value]: readonly [string, HeaderValue | null],
    headers: Headers,
  ): boolean => (value === null ? Object.hasOwn(headers, key) : headers[key] === value);
  if (mode === 'any' || mode === 'any-with-x') {
    return (headers) => expected.some((entry) => matches(entry, headers));
  }
  return (headers) => expected.every((entry) => matches(entry, headers));
}

/** Whether a message with `headers` matches a headers-exchange binding with `bindingArguments`. */
export function matchHeaders(bindingArguments: BindingArguments, headers: Headers): boolean {
  return compileHeadersBinding(bindingArguments)(headers);
}
