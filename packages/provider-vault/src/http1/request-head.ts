// The head of an HTTP/1.1 request, checked as node:http checks it: a header name must be a token
// (ERR_INVALID_HTTP_TOKEN) and a value may hold no CR, LF, NUL or character past Latin-1
// (ERR_INVALID_CHAR), so no value can end the head early or smuggle a second request.
import { Http1ExchangeError } from './connection-pool.js';
import { isFieldValue, isToken } from './field-syntax.js';

/** A request target as URL gives it: printable ASCII, no blank. */
const REQUEST_TARGET = /^\/[\x21-\x7e]*$/;

interface RequestHeadParts {
  readonly method: string;
  /** The path and query, percent-encoded (`URL#pathname` + `URL#search`). */
  readonly path: string;
  /** `host[:port]`, as `URL#host` gives it. */
  readonly host: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The body's length; a POST or PUT without a body sends `Content-Length: 0`. */
  readonly contentLength: number | undefined;
}

/** Serializes the head, or throws an {@link Http1ExchangeError} naming the code but never the value. */
export function requestHead(parts: RequestHeadParts): string {
  if (!isToken(parts.method)) throw new Http1ExchangeError('ERR_INVALID_HTTP_TOKEN', 'a bad method');
  if (!REQUEST_TARGET.test(parts.path)) throw new Http1ExchangeError('ERR_INVALID_CHAR', 'a bad path');
  if (!isFieldValue(parts.host)) throw new Http1ExchangeError('ERR_INVALID_CHAR', 'a bad host');
  let head = `${parts.method} ${parts.path} HTTP/1.1\r\nHost: ${parts.host}\r\n`;
  for (const name in parts.headers) {
    const value = parts.headers[name] ?? '';
    if (!isToken(name)) throw new Http1ExchangeError('ERR_INVALID_HTTP_TOKEN', 'a bad header name');
    if (!isFieldValue(value)) throw new Http1ExchangeError('ERR_INVALID_CHAR', 'a bad header value');
    const lower = name.toLowerCase();
    // These are the connection's to set.
    if (
      lower === 'host' ||
      lower === 'content-length' ||
      lower === 'connection' ||
      lower === 'transfer-encoding'
    ) {
      continue;
    }
    head += `${name}: ${value}\r\n`;
  }
  const length = parts.contentLength ?? (parts.method === 'POST' || parts.method === 'PUT' ? 0 : undefined);
  if (length !== undefined) head += `Content-Length: ${length}\r\n`;
  return `${head}Connection: keep-alive\r\n\r\n`;
}
