/** A header value: a JSON scalar, compared by type and value (`1`, `"1"`, `true` all differ). */
export type HeaderValue = string | number | boolean;

/** Message headers. */
export type Headers = Readonly<Record<string, HeaderValue>>;
