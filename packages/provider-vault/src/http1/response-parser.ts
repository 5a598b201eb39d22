// Reads one HTTP/1.1 answer from the bytes of a connection, as they come: the status line, the headers,
// and the body framed by Content-Length, by chunked transfer coding, or by the connection's close. Strict
// where a lenient reader would let one answer's bytes be taken for another's: a Content-Length and a
// Transfer-Encoding together, two different lengths, a coding other than chunked, a folded header, a bare
// LF, or bytes after the answer all end the connection's reuse or fail the request. The error codes are
// llhttp's (node:http's parser), so a failure reads the same in the logs as it did through node:http.

import { CodedError } from './coded-error.js';
import { isFieldValueChar, isTokenChar } from './field-syntax.js';

/** A protocol failure; `code` is the matching llhttp code (`HPE_*`), or {@link BODY_TOO_LARGE}. */
export class Http1ProtocolError extends CodedError {
  override readonly name = 'Http1ProtocolError';
}

/** The code of an answer whose body is longer than the parser's limit. */
export const BODY_TOO_LARGE = 'ERR_HTTP1_BODY_TOO_LARGE';

/** One whole answer. */
export interface Http1Response {
  readonly statusCode: number;
  /** The `location` header, for redirects (the only header the Vault transport reads). */
  readonly location: string | undefined;
  readonly body: Buffer;
  /**
   * Whether the connection can carry another request: HTTP/1.1 without `Connection: close` (or 1.0
   * with `keep-alive`), a body framed by its length or by chunks, and no byte after the answer.
   */
  readonly reusable: boolean;
}

/** node:http's default limit on a head (`--max-http-header-size`). */
const MAX_HEAD_BYTES = 16 * 1024;
/** A chunk-size line: the hex size, extensions and CRLF. */
const MAX_CHUNK_LINE_BYTES = 4 * 1024;

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\r\n]*)?$/;
const DIGITS = /^\d{1,15}$/;
const HEX_SIZE = /^([0-9A-Fa-f]{1,12})[\t ]*(?:;[^\r\n]*)?$/;

type State =
  | { readonly kind: 'head' }
  | { readonly kind: 'length'; readonly head: Head; readonly remaining: number }
  | { readonly kind: 'chunk-size'; readonly head: Head }
  | { readonly kind: 'chunk-data'; readonly head: Head; readonly remaining: number }
  | { readonly kind: 'chunk-end'; readonly head: Head }
  | { readonly kind: 'trailers'; readonly head: Head }
  | { readonly kind: 'until-close'; readonly head: Head }
  | { readonly kind: 'done' };

interface Head {
  readonly statusCode: number;
  readonly location: string | undefined;
  readonly keepAlive: boolean;
}

/**
 * One answer's parser: {@link push} each chunk the connection reads and, when the connection ends,
 * {@link end}. Either returns the answer once it is whole, else undefined; both throw
 * {@link Http1ProtocolError} on a malformed answer, after which the connection must be destroyed.
 * Interim 1xx answers (100 Continue, 103 Early Hints) are skipped; 101 is an error.
 */
export class Http1ResponseParser {
  readonly #expectsBody: boolean;
  readonly #maxBodyBytes: number;
  #state: State = { kind: 'head' };
  /** Bytes read but not parsed yet. */
  #pending: Buffer = Buffer.alloc(0);
  readonly #body: Buffer[] = [];
  #bodySize = 0;
  #started = false;

  /**
   * @param method the request's method: the answer to a HEAD has no body, whatever its headers say.
   * @param maxBodyBytes a longer body fails with {@link BODY_TOO_LARGE}.
   */
  constructor(method: string, maxBodyBytes: number) {
    this.#expectsBody = method !== 'HEAD';
    this.#maxBodyBytes = maxBodyBytes;
  }

  /**
   * Whether any byte of an answer has arrived, an interim 1xx included (a failure before that is the
   * connection's, not the answer's).
   */
  get started(): boolean {
    return this.#started;
  }

  push(chunk: Buffer): Http1Response | undefined {
    if (this.#state.kind === 'done') {
      throw new Http1ProtocolError('HPE_INVALID_CONSTANT', 'bytes after the answer was read');
    }
    if (chunk.length > 0) this.#started = true;
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    return this.#advance();
  }

  /** The connection ended: the answer of a body read until the close is whole now; any other is cut. */
  end(): Http1Response | undefined {
    const state = this.#state;
    if (state.kind === 'until-close') return this.#finish(state.head, false);
    if (state.kind === 'done') return undefined;
    throw new Http1ProtocolError('HPE_INVALID_EOF_STATE', 'the connection closed in the middle of an answer');
  }

  #advance(): Http1Response | undefined {
    for (;;) {
      const state = this.#state;
      switch (state.kind) {
        case 'head': {
          const end = this.#pending.indexOf(HEAD_END);
          if (end < 0) {
            if (this.#pending.length > MAX_HEAD_BYTES) {
              throw new Http1ProtocolError('HPE_HEADER_OVERFLOW', "the answer's head is too large");
            }
            return undefined;
          }
          if (end + HEAD_END.length > MAX_HEAD_BYTES) {
            throw new Http1ProtocolError('HPE_HEADER_OVERFLOW', "the answer's head is too large");
          }
          const text = this.#pending.toString('latin1', 0, end);
          this.#pending = this.#pending.subarray(end + HEAD_END.length);
          const parsed = parseHead(text);
          if (parsed.statusCode < 200) {
            if (parsed.statusCode === 101) {
              throw new Http1ProtocolError('HPE_INVALID_STATUS', 'the server switched protocols');
            }
            continue; // an interim answer: the real one follows
          }
          const head: Head = parsed;
          if (!this.#expectsBody || parsed.statusCode === 204 || parsed.statusCode === 304) {
            if (parsed.statusCode === 204 && (parsed.chunked || (parsed.contentLength ?? 0) > 0)) {
              throw new Http1ProtocolError('HPE_INVALID_CONSTANT', 'a 204 answer with a body');
            }
            return this.#finish(head, head.keepAlive);
          }
          if (parsed.chunked) this.#state = { kind: 'chunk-size', head };
          else if (parsed.contentLength !== undefined) {
            this.#checkSize(parsed.contentLength);
            this.#state = { kind: 'length', head, remaining: parsed.contentLength };
          } else this.#state = { kind: 'until-close', head };
          continue;
        }
        case 'length': {
          if (state.remaining === 0) return this.#finish(state.head, state.head.keepAlive);
          const taken = this.#take(state.remaining);
          if (taken === state.remaining) return this.#finish(state.head, state.head.keepAlive);
          this.#state = { kind: 'length', head: state.head, remaining: state.remaining - taken };
          return undefined;
        }
        case 'chunk-size': {
          const line = this.#line(MAX_CHUNK_LINE_BYTES, 'HPE_INVALID_CHUNK_SIZE');
          if (line === undefined) return undefined;
          const size = HEX_SIZE.exec(line);
          if (size?.[1] === undefined) {
            throw new Http1ProtocolError('HPE_INVALID_CHUNK_SIZE', 'a chunk size that is not hexadecimal');
          }
          const bytes = Number.parseInt(size[1], 16);
          if (bytes === 0) this.#state = { kind: 'trailers', head: state.head };
          else {
            this.#checkSize(this.#bodySize + bytes);
            this.#state = { kind: 'chunk-data', head: state.head, remaining: bytes };
          }
          continue;
        }
        case 'chunk-data': {
          const taken = this.#take(state.remaining);
          if (taken < state.remaining) {
            this.#state = { kind: 'chunk-data', head: state.head, remaining: state.remaining - taken };
            return undefined;
          }
          this.#state = { kind: 'chunk-end', head: state.head };
          continue;
        }
        case 'chunk-end': {
          if (this.#pending.length < CRLF.length) return undefined;
          if (this.#pending[0] !== 0x0d || this.#pending[1] !== 0x0a) {
            throw new Http1ProtocolError('HPE_STRICT', 'a chunk not followed by CRLF');
          }
          this.#pending = this.#pending.subarray(CRLF.length);
          this.#state = { kind: 'chunk-size', head: state.head };
          continue;
        }
        case 'trailers': {
          const line = this.#line(MAX_HEAD_BYTES, 'HPE_HEADER_OVERFLOW');
          if (line === undefined) return undefined;
          if (line === '') return this.#finish(state.head, state.head.keepAlive);
          checkField(line, 0, line.length); // checked, then dropped: nothing here reads trailers
          continue;
        }
        case 'until-close': {
          this.#take(this.#pending.length);
          return undefined;
        }
        case 'done':
          return undefined;
      }
    }
  }

  /** Moves up to `wanted` pending bytes into the body; returns how many it moved. */
  #take(wanted: number): number {
    const pending = this.#pending;
    if (pending.length === 0) return 0;
    const taken = Math.min(wanted, pending.length);
    if (this.#state.kind === 'until-close') this.#checkSize(this.#bodySize + taken);
    this.#body.push(taken === pending.length ? pending : pending.subarray(0, taken));
    this.#bodySize += taken;
    this.#pending = pending.subarray(taken);
    return taken;
  }

  /** One CRLF-ended line of pending bytes, without its CRLF; undefined until it is whole. */
  #line(limit: number, code: string): string | undefined {
    const end = this.#pending.indexOf(CRLF);
    if (end < 0) {
      if (this.#pending.length > limit) throw new Http1ProtocolError(code, 'a line too long');
      return undefined;
    }
    const line = this.#pending.toString('latin1', 0, end);
    if (line.includes('\n')) throw new Http1ProtocolError('HPE_LF_EXPECTED', 'a bare LF in a line');
    this.#pending = this.#pending.subarray(end + CRLF.length);
    return line;
  }

  #checkSize(size: number): void {
    if (size > this.#maxBodyBytes) {
      throw new Http1ProtocolError(BODY_TOO_LARGE, `the answer's body exceeds ${this.#maxBodyBytes} bytes`);
    }
  }

  #finish(head: Head, keepAlive: boolean): Http1Response {
    this.#state = { kind: 'done' };
    const body =
      this.#body.length === 1 && this.#body[0] !== undefined
        ? this.#body[0]
        : Buffer.concat(this.#body, this.#bodySize);
    // A byte past the answer is a second answer nobody asked for, or a broken framing: either way the
    // connection is not used again, so it cannot be read as the next request's answer.
    return {
      statusCode: head.statusCode,
      location: head.location,
      body,
      reusable: keepAlive && this.#pending.length === 0,
    };
  }
}

interface ParsedHead {
  readonly statusCode: number;
  readonly location: string | undefined;
  readonly keepAlive: boolean;
  readonly chunked: boolean;
  readonly contentLength: number | undefined;
}

function parseHead(text: string): ParsedHead {
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = text.length;
  const statusLine = text.slice(0, lineEnd);
  if (statusLine.includes('\n')) {
    throw new Http1ProtocolError('HPE_LF_EXPECTED', "a bare LF in the answer's head");
  }
  const status = STATUS_LINE.exec(statusLine);
  if (status?.[1] === undefined || status[2] === undefined) {
    throw new Http1ProtocolError('HPE_INVALID_CONSTANT', 'not an HTTP/1.x status line');
  }
  const http10 = status[1] === '0';
  let location: string | undefined;
  let connectionClose = false;
  let connectionKeepAlive = false;
  let transferEncoding: string | undefined;
  let contentLength: number | undefined;
  for (let start = lineEnd + 2; start < text.length;) {
    let end = text.indexOf('\r\n', start);
    if (end < 0) end = text.length;
    const field = checkField(text, start, end);
    start = end + 2;
    // Only the fields read here are cut out of the head; the others are checked and left.
    const name = FIELDS_READ.has(field.nameEnd - field.nameStart)
      ? text.slice(field.nameStart, field.nameEnd).toLowerCase()
      : '';
    switch (name) {
      case 'content-length': {
        const value = text.slice(field.valueStart, field.valueEnd);
        if (!DIGITS.test(value)) {
          throw new Http1ProtocolError('HPE_INVALID_CONTENT_LENGTH', 'a Content-Length that is not a number');
        }
        const length = Number(value);
        if (contentLength !== undefined && contentLength !== length) {
          throw new Http1ProtocolError('HPE_UNEXPECTED_CONTENT_LENGTH', 'two different Content-Lengths');
        }
        contentLength = length;
        break;
      }
      case 'transfer-encoding': {
        const value = text.slice(field.valueStart, field.valueEnd);
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      }
      case 'connection':
        for (const option of text.slice(field.valueStart, field.valueEnd).toLowerCase().split(',')) {
          const token = option.trim();
          if (token === 'close') connectionClose = true;
          else if (token === 'keep-alive') connectionKeepAlive = true;
        }
        break;
      case 'location':
        location = text.slice(field.valueStart, field.valueEnd);
        break;
      default:
        break;
    }
  }
  let chunked = false;
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) {
      throw new Http1ProtocolError(
        'HPE_UNEXPECTED_CONTENT_LENGTH',
        'both a Content-Length and a Transfer-Encoding',
      );
    }
    const codings = transferEncoding
      .toLowerCase()
      .split(',')
      .map((coding) => coding.trim());
    if (codings.length !== 1 || codings[0] !== 'chunked') {
      throw new Http1ProtocolError('HPE_INVALID_TRANSFER_ENCODING', 'a Transfer-Encoding other than chunked');
    }
    chunked = true;
  }
  return {
    statusCode: Number(status[2]),
    location,
    keepAlive: !connectionClose && (!http10 || connectionKeepAlive),
    chunked,
    contentLength,
  };
}

/** The lengths of the names of the fields {@link parseHead} reads (Content-Length, Transfer-Encoding, ...). */
const FIELDS_READ = new Set(
  ['content-length', 'transfer-encoding', 'connection', 'location'].map((name) => name.length),
);

interface FieldBounds {
  readonly nameStart: number;
  readonly nameEnd: number;
  /** The value, without the blanks around it. */
  readonly valueStart: number;
  readonly valueEnd: number;
}

/**
 * Checks the field line `text[start, end)` (`name: value`) character by character, as llhttp does, and
 * gives where its name and value are. A name must be a token (a folded line, starting with a blank, is
 * not, and RFC 9112 lets a client refuse it); a value holds visible ASCII, obs-text, space and tab
 * (RFC 9110 5.5), never CR, LF or NUL.
 */
function checkField(text: string, start: number, end: number): FieldBounds {
  let colon = start;
  for (; colon < end; colon++) {
    const code = text.charCodeAt(colon);
    if (code === 0x3a) break;
    if (code === 0x0a) throw new Http1ProtocolError('HPE_LF_EXPECTED', "a bare LF in the answer's head");
    if (!isTokenChar(code)) {
      throw new Http1ProtocolError('HPE_INVALID_HEADER_TOKEN', 'a header line that is not `name: value`');
    }
  }
  if (colon === start || colon === end) {
    throw new Http1ProtocolError('HPE_INVALID_HEADER_TOKEN', 'a header line that is not `name: value`');
  }
  let valueStart = colon + 1;
  let valueEnd = end;
  while (valueStart < valueEnd && isBlank(text.charCodeAt(valueStart))) valueStart++;
  while (valueEnd > valueStart && isBlank(text.charCodeAt(valueEnd - 1))) valueEnd--;
  for (let at = valueStart; at < valueEnd; at++) {
    const code = text.charCodeAt(at);
    if (code === 0x0a) throw new Http1ProtocolError('HPE_LF_EXPECTED', "a bare LF in the answer's head");
    if (!isFieldValueChar(code)) {
      throw new Http1ProtocolError('HPE_INVALID_HEADER_TOKEN', 'a header value with a control character');
    }
  }
  return { nameStart: start, nameEnd: colon, valueStart, valueEnd };
}

function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
