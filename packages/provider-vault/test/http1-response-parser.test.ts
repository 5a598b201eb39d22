import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BODY_TOO_LARGE,
  Http1ProtocolError,
  Http1ResponseParser,
  type Http1Response,
} from '../src/http1/response-parser.js';

const MAX_BODY = 1024 * 1024;

/** An answer as compared here: the body as latin1 text, so a mismatch prints readably. */
interface Seen {
  readonly statusCode: number;
  readonly location: string | undefined;
  readonly body: string;
  readonly reusable: boolean;
}

const seen = (response: Http1Response): Seen => ({
  statusCode: response.statusCode,
  location: response.location,
  body: response.body.toString('latin1'),
  reusable: response.reusable,
});

/**
 * Pushes `chunks` into a fresh parser (then `end()` when `end`), checks the answer comes with the last
 * byte (or from `end()`) and never before, and returns it.
 */
function feed(
  chunks: readonly Buffer[],
  options: { method?: string; maxBodyBytes?: number; end?: boolean } = {},
): Seen {
  const parser = new Http1ResponseParser(options.method ?? 'GET', options.maxBodyBytes ?? MAX_BODY);
  let response: Http1Response | undefined;
  for (const [index, chunk] of chunks.entries()) {
    const answer = parser.push(chunk);
    if (answer === undefined) continue;
    assert.equal(index, chunks.length - 1, `the answer came at push ${index} of ${chunks.length}`);
    response = answer;
  }
  if (options.end === true) {
    assert.equal(response, undefined, 'an answer read until the close came before the close');
    response = parser.end();
  }
  assert.ok(response !== undefined, 'no answer after every byte');
  return seen(response);
}

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');
const byteByByte = (data: Buffer): Buffer[] => [...data].map((byte) => Buffer.from([byte]));

interface ValidCase {
  readonly name: string;
  readonly wire: string;
  readonly method?: string;
  readonly maxBodyBytes?: number;
  /** The body is read until the connection closes: `end()` finishes the answer. */
  readonly end?: boolean;
  readonly expected: Seen;
}

const VALID: readonly ValidCase[] = [
  {
    name: 'a Content-Length body',
    wire: 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":"b c"}',
    expected: { statusCode: 200, location: undefined, body: '{"a":"b c"}', reusable: true },
  },
  {
    name: 'Content-Length: 0',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
    expected: { statusCode: 200, location: undefined, body: '', reusable: true },
  },
  {
    name: 'a 204 without a body',
    wire: 'HTTP/1.1 204 No Content\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n',
    expected: { statusCode: 204, location: undefined, body: '', reusable: true },
  },
  {
    name: 'a status line without a reason phrase',
    wire: 'HTTP/1.1 404\r\nContent-Length: 2\r\n\r\n{}',
    expected: { statusCode: 404, location: undefined, body: '{}', reusable: true },
  },
  {
    name: 'chunked, several chunks, extensions, upper and lower-case hex, trailers',
    wire:
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5\r\nhello\r\n' +
      '1;a=b\r\n \r\n' +
      `A\r\n${'0123456789'}\r\n` +
      `1b ;name="x y"\r\n${'abcdefghijklmnopqrstuvwxyz!'}\r\n` +
      `00c\r\n${'CHUNK-twelve'}\r\n` +
      '0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n',
    expected: {
      statusCode: 200,
      location: undefined,
      body: 'hello 0123456789abcdefghijklmnopqrstuvwxyz!CHUNK-twelve',
      reusable: true,
    },
  },
  {
    name: 'chunked without trailers, coding name in another case',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    expected: { statusCode: 200, location: undefined, body: 'abc', reusable: true },
  },
  {
    name: 'a 100 Continue and a 103 Early Hints before the real answer',
    wire:
      'HTTP/1.1 100 Continue\r\n\r\n' +
      'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nLocation: /interim\r\n\r\n' +
      'HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone',
    expected: { statusCode: 201, location: undefined, body: 'done', reusable: true },
  },
  {
    name: 'HTTP/1.0 without keep-alive: not reusable',
    wire: 'HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold',
    expected: { statusCode: 200, location: undefined, body: 'old', reusable: false },
  },
  {
    name: 'HTTP/1.0 with Connection: keep-alive: reusable',
    wire: 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\nold',
    expected: { statusCode: 200, location: undefined, body: 'old', reusable: true },
  },
  {
    name: 'Connection: close: not reusable',
    wire: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
    expected: { statusCode: 200, location: undefined, body: 'ok', reusable: false },
  },
  {
    name: 'Connection: close among other options: not reusable',
    wire: 'HTTP/1.1 200 OK\r\nConnection: upgrade, CLOSE\r\nContent-Length: 2\r\n\r\nok',
    expected: { statusCode: 200, location: undefined, body: 'ok', reusable: false },
  },
  {
    name: 'a body read until the close, finished by end()',
    wire: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it, until the end',
    end: true,
    expected: { statusCode: 200, location: undefined, body: 'all of it, until the end', reusable: false },
  },
  {
    name: 'mixed-case header names',
    wire: 'HTTP/1.1 307 Temporary Redirect\r\nLOCATION: https://active:8200/v1/x\r\nContent-length: 3\r\n\r\nabc',
    expected: { statusCode: 307, location: 'https://active:8200/v1/x', body: 'abc', reusable: true },
  },
  {
    name: 'a Location value with blanks around it and no blank after the colon',
    wire: 'HTTP/1.1 308 Permanent Redirect\r\nlocation:\t /next \t\r\nContent-Length: 0\r\n\r\n',
    expected: { statusCode: 308, location: '/next', body: '', reusable: true },
  },
  {
    name: 'two equal Content-Lengths',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nsame',
    expected: { statusCode: 200, location: undefined, body: 'same', reusable: true },
  },
  {
    name: 'the answer to a HEAD: a Content-Length but no body',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n',
    method: 'HEAD',
    expected: { statusCode: 200, location: undefined, body: '', reusable: true },
  },
  {
    name: 'a 304 with a Content-Length but no body',
    wire: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n',
    expected: { statusCode: 304, location: undefined, body: '', reusable: true },
  },
  {
    name: 'a body of exactly maxBodyBytes (Content-Length)',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n12345678',
    maxBodyBytes: 8,
    expected: { statusCode: 200, location: undefined, body: '12345678', reusable: true },
  },
  {
    name: 'a body of exactly maxBodyBytes (chunked)',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n1234\r\n4\r\n5678\r\n0\r\n\r\n',
    maxBodyBytes: 8,
    expected: { statusCode: 200, location: undefined, body: '12345678', reusable: true },
  },
  {
    name: 'binary and obs-text bytes in a body and a header value',
    wire: 'HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 6\r\n\r\n\x00\xff\r\n\x80\n',
    expected: { statusCode: 200, location: undefined, body: '\x00\xff\r\n\x80\n', reusable: true },
  },
];

describe('Http1ResponseParser: valid answers', () => {
  for (const entry of VALID) {
    it(`${entry.name}: same answer whole, split at every byte, and byte by byte`, () => {
      const wire = bytes(entry.wire);
      const options = {
        ...(entry.method === undefined ? {} : { method: entry.method }),
        ...(entry.maxBodyBytes === undefined ? {} : { maxBodyBytes: entry.maxBodyBytes }),
        end: entry.end === true,
      };
      assert.deepEqual(feed([wire], options), entry.expected, 'whole');
      for (let at = 1; at < wire.length; at++) {
        assert.deepEqual(
          feed([wire.subarray(0, at), wire.subarray(at)], options),
          entry.expected,
          `split at ${at}`,
        );
      }
      assert.deepEqual(feed(byteByByte(wire), options), entry.expected, 'byte by byte');
    });
  }

  it('an answer with a second one glued on is returned, not reusable', () => {
    const first = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst';
    const glued = `${first}HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond`;
    const expected: Seen = { statusCode: 200, location: undefined, body: 'first', reusable: false };
    assert.deepEqual(feed([bytes(glued)]), expected);
    // The extra bytes arriving in the same chunk as the answer's last byte.
    assert.deepEqual(feed([bytes(first.slice(0, -2)), bytes(glued.slice(first.length - 2))]), expected);
    // A single stray byte after a chunked answer, and after a bodiless one.
    assert.deepEqual(
      feed([bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nX')]),
      { statusCode: 200, location: undefined, body: 'hi', reusable: false },
    );
    assert.deepEqual(feed([bytes('HTTP/1.1 204 No Content\r\n\r\n\r\n')]), {
      statusCode: 204,
      location: undefined,
      body: '',
      reusable: false,
    });
  });

  it('a large body in many pieces comes back whole and in order', () => {
    const body = Buffer.alloc(200_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const wire = Buffer.concat([bytes(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
    const parser = new Http1ResponseParser('GET', MAX_BODY);
    let response: Http1Response | undefined;
    for (let at = 0; at < wire.length; at += 1_000) {
      assert.equal(response, undefined);
      response = parser.push(wire.subarray(at, at + 1_000));
    }
    assert.ok(response !== undefined);
    assert.ok(response.body.equals(body), 'the body bytes');
    assert.equal(response.reusable, true);
  });

  it('started is false before any byte and true from the first', () => {
    const parser = new Http1ResponseParser('GET', MAX_BODY);
    assert.equal(parser.started, false);
    assert.equal(parser.push(Buffer.alloc(0)), undefined);
    assert.equal(parser.started, false, 'an empty chunk is not the start of an answer');
    assert.equal(parser.push(bytes('H')), undefined);
    assert.equal(parser.started, true);
    assert.equal(parser.push(bytes('TTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n')), undefined);
    assert.equal(parser.started, true, 'in the body');
    assert.deepEqual(seen(parser.push(bytes('ok')) ?? assert.fail('no answer')), {
      statusCode: 200,
      location: undefined,
      body: 'ok',
      reusable: true,
    });
    assert.equal(parser.started, true, 'done');
  });

  it('started stays true after an interim 100 Continue, so a close after it is a cut answer', () => {
    const parser = new Http1ResponseParser('POST', MAX_BODY);
    assert.equal(parser.push(bytes('HTTP/1.1 100 Continue\r\n\r\n')), undefined);
    assert.equal(parser.started, true);
    assert.throws(
      () => parser.end(),
      (error: unknown) => error instanceof Http1ProtocolError && error.code === 'HPE_INVALID_EOF_STATE',
    );
  });

  it('end() after a whole answer returns nothing and does not throw', () => {
    const parser = new Http1ResponseParser('GET', MAX_BODY);
    assert.ok(parser.push(bytes('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')) !== undefined);
    assert.equal(parser.end(), undefined);
  });
});

interface ErrorCase {
  readonly name: string;
  readonly wire: string;
  readonly code: string;
  readonly method?: string;
  readonly maxBodyBytes?: number;
  /** The connection ends after the bytes: the error comes from `end()`. */
  readonly end?: boolean;
}

const ERRORS: readonly ErrorCase[] = [
  { name: 'not an HTTP status line', wire: 'HTP/1.1 200 OK\r\n\r\n', code: 'HPE_INVALID_CONSTANT' },
  { name: 'HTTP/2 in the status line', wire: 'HTTP/2 200\r\n\r\n', code: 'HPE_INVALID_CONSTANT' },
  {
    name: 'a status code of 2 digits',
    wire: 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n',
    code: 'HPE_INVALID_CONSTANT',
  },
  { name: 'a garbage answer', wire: 'SSH-2.0-OpenSSH_9.6\r\n\r\n', code: 'HPE_INVALID_CONSTANT' },
  {
    name: 'a 101 Switching Protocols',
    wire: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    code: 'HPE_INVALID_STATUS',
  },
  {
    name: 'a folded header line (starting with a space)',
    wire: 'HTTP/1.1 200 OK\r\nX-Long: first\r\n second\r\nContent-Length: 0\r\n\r\n',
    code: 'HPE_INVALID_HEADER_TOKEN',
  },
  {
    name: 'a folded header line (starting with a tab)',
    wire: 'HTTP/1.1 200 OK\r\nX-Long: first\r\n\tsecond\r\nContent-Length: 0\r\n\r\n',
    code: 'HPE_INVALID_HEADER_TOKEN',
  },
  {
    name: 'a header name with a space',
    wire: 'HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n',
    code: 'HPE_INVALID_HEADER_TOKEN',
  },
  {
    name: 'a space between a header name and its colon',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello',
    code: 'HPE_INVALID_HEADER_TOKEN',
  },
  {
    name: 'a header line without a colon',
    wire: 'HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n',
    code: 'HPE_INVALID_HEADER_TOKEN',
  },
  {
    name: 'a header value with a NUL',
    wire: 'HTTP/1.1 200 OK\r\nX-Value: a\x00b\r\nContent-Length: 0\r\n\r\n',
    code: 'HPE_INVALID_HEADER_TOKEN',
  },
  {
    name: 'a header value with a bare CR',
    wire: 'HTTP/1.1 200 OK\r\nX-Value: a\rb\r\nContent-Length: 0\r\n\r\n',
    code: 'HPE_INVALID_HEADER_TOKEN',
  },
  {
    name: 'a bare LF ending the status line',
    wire: 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n',
    code: 'HPE_LF_EXPECTED',
  },
  {
    name: 'a bare LF ending a header line',
    wire: 'HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 0\r\n\r\n',
    code: 'HPE_LF_EXPECTED',
  },
  {
    name: 'Content-Length and Transfer-Encoding',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    code: 'HPE_UNEXPECTED_CONTENT_LENGTH',
  },
  {
    name: 'Transfer-Encoding and Content-Length',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    code: 'HPE_UNEXPECTED_CONTENT_LENGTH',
  },
  {
    name: 'two different Content-Lengths',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    code: 'HPE_UNEXPECTED_CONTENT_LENGTH',
  },
  {
    name: 'Transfer-Encoding: gzip, chunked',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    code: 'HPE_INVALID_TRANSFER_ENCODING',
  },
  {
    name: 'Transfer-Encoding: identity',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nabc',
    code: 'HPE_INVALID_TRANSFER_ENCODING',
  },
  {
    name: 'chunked twice over two Transfer-Encoding lines',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    code: 'HPE_INVALID_TRANSFER_ENCODING',
  },
  {
    name: 'a non-numeric Content-Length',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n',
    code: 'HPE_INVALID_CONTENT_LENGTH',
  },
  {
    name: 'a negative Content-Length',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    code: 'HPE_INVALID_CONTENT_LENGTH',
  },
  {
    name: 'a Content-Length list',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc',
    code: 'HPE_INVALID_CONTENT_LENGTH',
  },
  {
    name: 'an empty Content-Length',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n',
    code: 'HPE_INVALID_CONTENT_LENGTH',
  },
  {
    name: 'a chunk size that is not hex (zz)',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
    code: 'HPE_INVALID_CHUNK_SIZE',
  },
  {
    name: 'an empty chunk size line',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n',
    code: 'HPE_INVALID_CHUNK_SIZE',
  },
  {
    name: 'a negative chunk size',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n',
    code: 'HPE_INVALID_CHUNK_SIZE',
  },
  {
    name: 'chunk data not followed by CRLF',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n',
    code: 'HPE_STRICT',
  },
  {
    name: 'chunk data longer than its size',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n',
    code: 'HPE_STRICT',
  },
  {
    name: 'a bare LF in a chunk size line',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n',
    code: 'HPE_LF_EXPECTED',
  },
  {
    name: 'a bad trailer line',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nBad Trailer: x\r\n\r\n',
    code: 'HPE_INVALID_HEADER_TOKEN',
  },
  {
    name: 'a head over 16 KiB (with its end)',
    wire: `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\nContent-Length: 0\r\n\r\n`,
    code: 'HPE_HEADER_OVERFLOW',
  },
  {
    name: 'a head over 16 KiB (no end in sight)',
    wire: `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 * 1024)}`,
    code: 'HPE_HEADER_OVERFLOW',
  },
  {
    name: 'a body over maxBodyBytes by its Content-Length',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789',
    maxBodyBytes: 8,
    code: BODY_TOO_LARGE,
  },
  {
    name: 'a body over maxBodyBytes by its chunks',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n1234\r\n5\r\n56789\r\n0\r\n\r\n',
    maxBodyBytes: 8,
    code: BODY_TOO_LARGE,
  },
  {
    name: 'a body over maxBodyBytes read until the close',
    wire: 'HTTP/1.1 200 OK\r\n\r\n123456789',
    maxBodyBytes: 8,
    end: true,
    code: BODY_TOO_LARGE,
  },
  {
    name: 'end() in the middle of a Content-Length body',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc',
    end: true,
    code: 'HPE_INVALID_EOF_STATE',
  },
  {
    name: 'end() in the middle of the head',
    wire: 'HTTP/1.1 200 OK\r\nContent-Le',
    end: true,
    code: 'HPE_INVALID_EOF_STATE',
  },
  {
    name: 'end() in the middle of a chunked body',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n',
    end: true,
    code: 'HPE_INVALID_EOF_STATE',
  },
  {
    name: 'end() in the trailers',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n',
    end: true,
    code: 'HPE_INVALID_EOF_STATE',
  },
  {
    name: 'a 204 with Content-Length: 5',
    wire: 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello',
    code: 'HPE_INVALID_CONSTANT',
  },
  {
    name: 'a 204 with a chunked body',
    wire: 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    code: 'HPE_INVALID_CONSTANT',
  },
];

/** Feeds `chunks` (then `end()` when asked) and returns the code of the protocol error thrown. */
function errorCode(chunks: readonly Buffer[], entry: ErrorCase): string {
  const parser = new Http1ResponseParser(entry.method ?? 'GET', entry.maxBodyBytes ?? MAX_BODY);
  try {
    for (const chunk of chunks) {
      assert.equal(parser.push(chunk), undefined, 'an answer was returned');
    }
    if (entry.end === true) parser.end();
  } catch (error) {
    assert.ok(error instanceof Http1ProtocolError, `not a protocol error: ${String(error)}`);
    assert.equal(error.name, 'Http1ProtocolError');
    return error.code;
  }
  return assert.fail('no error');
}

describe('Http1ResponseParser: malformed answers', () => {
  for (const entry of ERRORS) {
    it(`${entry.name}: ${entry.code}, whole and byte by byte`, () => {
      const wire = bytes(entry.wire);
      assert.equal(errorCode([wire], entry), entry.code, 'whole');
      assert.equal(errorCode(byteByByte(wire), entry), entry.code, 'byte by byte');
    });
  }

  it('BODY_TOO_LARGE is ERR_HTTP1_BODY_TOO_LARGE, and a too-long Content-Length fails before its body', () => {
    assert.equal(BODY_TOO_LARGE, 'ERR_HTTP1_BODY_TOO_LARGE');
    const parser = new Http1ResponseParser('GET', 100);
    assert.throws(
      () => parser.push(bytes('HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n')),
      (error: unknown) => error instanceof Http1ProtocolError && error.code === BODY_TOO_LARGE,
    );
  });

  it('a chunk size over maxBodyBytes fails at its size line, before its data', () => {
    const parser = new Http1ResponseParser('GET', 100);
    assert.equal(parser.push(bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')), undefined);
    assert.throws(
      () => parser.push(bytes('ffffffffffff\r\n')),
      (error: unknown) => error instanceof Http1ProtocolError && error.code === BODY_TOO_LARGE,
    );
  });

  it('a byte pushed after a whole answer is an error', () => {
    const parser = new Http1ResponseParser('GET', MAX_BODY);
    assert.ok(parser.push(bytes('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')) !== undefined);
    assert.throws(
      () => parser.push(bytes('H')),
      (error: unknown) => error instanceof Http1ProtocolError && error.code === 'HPE_INVALID_CONSTANT',
    );
  });

  it('the error message never holds the header value that was refused', () => {
    const parser = new Http1ResponseParser('GET', MAX_BODY);
    assert.throws(
      () => parser.push(bytes('HTTP/1.1 200 OK\r\nX-Token: s3cr3t-value\x00\r\n\r\n')),
      (error: unknown) =>
        error instanceof Http1ProtocolError &&
        error.code === 'HPE_INVALID_HEADER_TOKEN' &&
        !error.message.includes('s3cr3t'),
    );
  });
});
