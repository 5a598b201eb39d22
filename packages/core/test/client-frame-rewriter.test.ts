import assert from 'node:assert/strict';
import { getDefaultSettings } from 'node:http2';
import { describe, it } from 'node:test';
import hpack from 'hpack.js';
import { ClientFrameRewriter } from '../src/grpc/http2/client-frame-rewriter.js';
import { SERVER_HEADER_TABLE_SIZE } from '../src/grpc/http2/header-block-decoder.js';
import { Http2ProtocolViolation } from '../src/grpc/http2/protocol-violation.js';

// Unit tests of the client-to-grpc-js byte rewriting. The end-to-end tests over the real socket, with
// Node's own HTTP/2 client and grpc-js, are in packages/server/test/authority-compat.test.ts.

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const SOCKET_PATH = '/var/run/kmsplugin/socket.sock';

type Field = { name: string; value: string; neverIndex?: boolean; huffman?: boolean };

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

interface ParsedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

function parseFrames(bytes: Buffer): ParsedFrame[] {
  const frames: ParsedFrame[] = [];
  let at = 0;
  while (at < bytes.length) {
    const length = bytes.readUIntBE(at, 3);
    frames.push({
      type: bytes[at + 3] ?? -1,
      flags: bytes[at + 4] ?? -1,
      streamId: bytes.readUInt32BE(at + 5),
      payload: bytes.subarray(at + 9, at + 9 + length),
    });
    at += 9 + length;
  }
  assert.equal(at, bytes.length, 'output ends on a frame boundary');
  return frames;
}

/** A client-side HPACK encoder (hpack.js): Huffman and incremental indexing, independent of ours. */
function clientEncoder(): (fields: Field[]) => Buffer {
  // The compressor is exercised through its public stream interface.
  const compressor = (
    hpack as unknown as {
      compressor: {
        create(options: { table: { maxSize: number } }): {
          write(fields: Field[]): void;
          read(): Buffer | null;
        };
      };
    }
  ).compressor.create({ table: { maxSize: 4096 } });
  return (fields) => {
    compressor.write(fields);
    const chunks: Buffer[] = [];
    for (let chunk = compressor.read(); chunk !== null; chunk = compressor.read()) chunks.push(chunk);
    return Buffer.concat(chunks);
  };
}

/** Decodes what the rewriter sent to grpc-js with a fresh context: it must never need a dynamic table. */
function decodeStateless(block: Buffer): Field[] {
  const decoder = hpack.decoder.create();
  const staticTable = hpack.table.create({ maxSize: 0 });
  decoder.push(block);
  const fields: Field[] = [];
  while (!decoder.isEmpty()) {
    if (decoder.decodeBit() === 1) {
      const entry = staticTable.lookup(decoder.decodeInt());
      fields.push({ name: entry.name, value: entry.value });
      continue;
    }
    assert.equal(decoder.decodeBit(), 0, 'no incremental indexing toward grpc-js');
    assert.equal(decoder.decodeBit(), 0, 'no table size update toward grpc-js');
    const neverIndex = decoder.decodeBit() === 1;
    const index = decoder.decodeInt();
    const name = index === 0 ? text(decoder.decodeStr()) : staticTable.lookup(index).name;
    fields.push({ name, value: text(decoder.decodeStr()), neverIndex });
  }
  return fields;
}

function text(decoded: Buffer | number[]): string {
  return Buffer.from(decoded).toString('latin1');
}

function requestFields(authority: string, timeout: string): Field[] {
  return [
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: '/v2.KeyManagementService/Status' },
    { name: ':authority', value: authority },
    { name: 'content-type', value: 'application/grpc' },
    { name: 'te', value: 'trailers' },
    { name: 'grpc-timeout', value: timeout },
  ];
}

function run(rewriter: ClientFrameRewriter, bytes: Buffer, chunkSize = bytes.length): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += chunkSize) {
    out.push(...rewriter.push(bytes.subarray(at, at + chunkSize)));
  }
  return Buffer.concat(out);
}

function violation(name: Http2ProtocolViolation['http2Error'], pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof Http2ProtocolViolation, `expected a violation, got ${String(error)}`);
    assert.equal(error.http2Error, name);
    assert.match(error.message, pattern);
    return true;
  };
}

const SETTINGS = frame(0x4, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100]));
const DATA = frame(0x0, END_STREAM, 1, Buffer.from([0, 0, 0, 0, 0]));

describe('client frame rewriter', () => {
  it('pins the header table size to what the server side advertises', () => {
    assert.equal(SERVER_HEADER_TABLE_SIZE, getDefaultSettings().headerTableSize);
  });

  it('passes every non-header byte through unchanged, whatever the chunking', () => {
    const ping = frame(0x6, 0, 0, Buffer.from('12345678'));
    const windowUpdate = frame(0x8, 0, 0, Buffer.from([0, 0, 0x10, 0]));
    const bytes = Buffer.concat([PREFACE, SETTINGS, ping, windowUpdate, DATA]);
    for (const chunkSize of [1, 2, 7, 9, 10, 64, bytes.length]) {
      assert.deepEqual(run(new ClientFrameRewriter(), bytes, chunkSize), bytes, `chunks of ${chunkSize}`);
    }
  });

  it('replaces a socket-path authority with localhost and keeps every other field and flag', () => {
    const encode = clientEncoder();
    const replaced: string[] = [];
    const rewriter = new ClientFrameRewriter({ onAuthorityReplaced: (original) => replaced.push(original) });
    const block = encode(requestFields(SOCKET_PATH, '2999m'));
    const out = run(rewriter, Buffer.concat([PREFACE, frame(HEADERS, END_HEADERS | END_STREAM, 1, block)]));
    const [headers] = parseFrames(out.subarray(PREFACE.length));
    assert.ok(headers !== undefined);
    assert.equal(headers.type, HEADERS);
    assert.equal(headers.flags, END_HEADERS | END_STREAM);
    assert.equal(headers.streamId, 1);
    assert.deepEqual(
      decodeStateless(headers.payload).map(({ name, value }) => ({ name, value })),
      requestFields('localhost', '2999m'),
    );
    assert.deepEqual(replaced, [SOCKET_PATH]);
  });

  it('keeps "never indexed" fields never indexed when it re-encodes', () => {
    const encode = clientEncoder();
    const rewriter = new ClientFrameRewriter();
    const fields: Field[] = [
      ...requestFields(SOCKET_PATH, '1S'),
      { name: 'authorization', value: 'secret', neverIndex: true },
    ];
    const out = run(rewriter, Buffer.concat([PREFACE, frame(HEADERS, END_HEADERS, 3, encode(fields))]));
    const [headers] = parseFrames(out.subarray(PREFACE.length));
    const decoded = decodeStateless(headers?.payload ?? Buffer.alloc(0));
    assert.deepEqual(
      decoded.map(({ name, value }) => ({ name, value })),
      [...requestFields('localhost', '1S'), { name: 'authorization', value: 'secret' }],
    );
    assert.equal(decoded.at(-1)?.neverIndex, true);
    assert.equal(decoded[0]?.neverIndex, false);
  });

  it('passes blocks with valid authorities (localhost, an abstract name, host:port) byte for byte', () => {
    for (const authority of ['localhost', '@kms', 'kms.local:8080', '[::1]:443']) {
      const rewriter = new ClientFrameRewriter();
      const encode = clientEncoder();
      // Padded and with priority, over a CONTINUATION frame: still exactly as sent.
      const block = encode(requestFields(authority, '1S'));
      const bytes = Buffer.concat([
        PREFACE,
        frame(
          HEADERS,
          PADDED | PRIORITY,
          1,
          Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 16]), block.subarray(0, 5), Buffer.alloc(3)]),
        ),
        frame(CONTINUATION, END_HEADERS, 1, block.subarray(5)),
        DATA,
        frame(HEADERS, END_HEADERS, 3, encode(requestFields(authority, '2S'))),
      ]);
      for (const chunkSize of [1, 9, bytes.length]) {
        assert.deepEqual(
          run(new ClientFrameRewriter(), bytes, chunkSize),
          bytes,
          `${authority}, chunks of ${chunkSize}`,
        );
      }
      run(rewriter, bytes);
      assert.equal(rewriter.headerBlocks, 2);
      assert.equal(rewriter.reencoding, false);
    }
  });

  it('replaces a socket path in host too', () => {
    const rewriter = new ClientFrameRewriter();
    const block = clientEncoder()([
      ...requestFields('localhost', '1S'),
      { name: 'host', value: SOCKET_PATH },
    ]);
    const out = run(rewriter, Buffer.concat([PREFACE, frame(HEADERS, END_HEADERS, 1, block)]));
    const fields = decodeStateless(parseFrames(out.subarray(PREFACE.length))[0]?.payload ?? Buffer.alloc(0));
    assert.equal(fields.find((f) => f.name === 'host')?.value, 'localhost');
    assert.equal(rewriter.reencoding, true);
  });

  it('re-encodes every block after the first replacement, valid ones too, without the dynamic table', () => {
    const encode = clientEncoder();
    const rewriter = new ClientFrameRewriter();
    const first = frame(HEADERS, END_HEADERS, 1, encode(requestFields('localhost', '1S')));
    assert.deepEqual(run(rewriter, Buffer.concat([PREFACE, first])), Buffer.concat([PREFACE, first]));
    run(rewriter, frame(HEADERS, END_HEADERS, 3, encode(requestFields(SOCKET_PATH, '2S'))));
    assert.equal(rewriter.reencoding, true);
    // The client indexed localhost in block one; grpc-js's table has it too, but is never read again.
    const third = frame(HEADERS, END_HEADERS, 5, encode(requestFields('localhost', '3S')));
    const [headers] = parseFrames(run(rewriter, third));
    assert.notDeepEqual(headers?.payload, parseFrames(third)[0]?.payload);
    assert.deepEqual(
      decodeStateless(headers?.payload ?? Buffer.alloc(0)).map(({ name, value }) => ({ name, value })),
      requestFields('localhost', '3S'),
    );
  });

  it('drops the first SETTINGS acknowledgement when told to, and nothing else', () => {
    const ack = frame(0x4, 0x1, 0, Buffer.alloc(0));
    const bytes = Buffer.concat([PREFACE, SETTINGS, ack, ack, DATA]);
    for (const chunkSize of [1, 4, bytes.length]) {
      const rewriter = new ClientFrameRewriter({ dropSettingsAck: true });
      assert.equal(rewriter.settingsAckPending, true);
      assert.deepEqual(
        run(rewriter, bytes, chunkSize),
        Buffer.concat([PREFACE, SETTINGS, ack, DATA]),
        `chunks of ${chunkSize}`,
      );
      assert.equal(rewriter.settingsAckPending, false);
    }
    assert.deepEqual(run(new ClientFrameRewriter(), bytes), bytes, 'not told to: every ACK goes on');
    // An ACK with a payload is malformed: nghttp2, not the rewriter, must answer it.
    const malformed = frame(0x4, 0x1, 0, Buffer.from([0, 3, 0, 0, 0, 1]));
    const rewriter = new ClientFrameRewriter({ dropSettingsAck: true });
    assert.deepEqual(run(rewriter, Buffer.concat([PREFACE, malformed])), Buffer.concat([PREFACE, malformed]));
    assert.equal(rewriter.settingsAckPending, true);
  });

  it('tells whether it holds part of a frame', () => {
    const rewriter = new ClientFrameRewriter();
    const block = frame(HEADERS, END_HEADERS, 1, clientEncoder()(requestFields('localhost', '1S')));
    run(rewriter, PREFACE);
    assert.equal(rewriter.atFrameBoundary, true);
    run(rewriter, block.subarray(0, 4));
    assert.equal(rewriter.atFrameBoundary, false, 'part of a frame header');
    run(rewriter, block.subarray(4, 12));
    assert.equal(rewriter.atFrameBoundary, false, 'part of a header frame');
    run(rewriter, block.subarray(12));
    assert.equal(rewriter.atFrameBoundary, true);
    run(rewriter, DATA.subarray(0, 11));
    assert.equal(rewriter.atFrameBoundary, true, 'a DATA frame part-read is handed on as it comes');
  });

  it('follows the client dynamic table across blocks, with entries added and evicted', () => {
    const encode = clientEncoder();
    const rewriter = new ClientFrameRewriter();
    let out = run(rewriter, PREFACE);
    assert.deepEqual(out, PREFACE);
    // Each block adds a new grpc-timeout and request id; 4096 bytes of table hold ~40 of them, so
    // 500 blocks evict most entries many times over, while :authority stays indexed from block one.
    for (let stream = 1; stream < 1000; stream += 2) {
      const fields = [
        ...requestFields(SOCKET_PATH, `${1000 + stream}m`),
        { name: 'x-request-id', value: `request-${stream}` },
      ];
      out = run(rewriter, frame(HEADERS, END_HEADERS, stream, encode(fields)), 5);
      const [headers] = parseFrames(out);
      assert.equal(headers?.streamId, stream);
      assert.deepEqual(
        decodeStateless(headers?.payload ?? Buffer.alloc(0)).map(({ name, value }) => ({ name, value })),
        [
          ...requestFields('localhost', `${1000 + stream}m`),
          { name: 'x-request-id', value: `request-${stream}` },
        ],
      );
    }
  });

  it('joins HEADERS and CONTINUATION frames, dropping padding and priority', () => {
    const encode = clientEncoder();
    const rewriter = new ClientFrameRewriter();
    const block = encode(requestFields(SOCKET_PATH, '100m'));
    const padding = Buffer.alloc(17);
    const priority = Buffer.from([0x80, 0, 0, 0, 16]);
    const first = Buffer.concat([Buffer.from([padding.length]), priority, block.subarray(0, 3), padding]);
    const bytes = Buffer.concat([
      PREFACE,
      frame(HEADERS, PADDED | PRIORITY | END_STREAM, 5, first),
      frame(CONTINUATION, 0, 5, block.subarray(3, 10)),
      frame(CONTINUATION, END_HEADERS, 5, block.subarray(10)),
      frame(0x0, END_STREAM, 5, Buffer.from([0, 0, 0, 0, 0])),
    ]);
    const frames = parseFrames(run(rewriter, bytes, 4).subarray(PREFACE.length));
    assert.deepEqual(
      frames.map(({ type, flags, streamId }) => ({ type, flags, streamId })),
      [
        { type: HEADERS, flags: END_HEADERS | END_STREAM, streamId: 5 },
        { type: 0x0, flags: END_STREAM, streamId: 5 },
      ],
    );
    assert.equal(
      decodeStateless(frames[0]?.payload ?? Buffer.alloc(0)).find((f) => f.name === ':authority')?.value,
      'localhost',
    );
  });

  it('applies table size updates at the start of a block', () => {
    const encode = clientEncoder();
    const rewriter = new ClientFrameRewriter();
    run(rewriter, PREFACE);
    run(rewriter, frame(HEADERS, END_HEADERS, 1, encode(requestFields(SOCKET_PATH, '1m'))));
    // Size 0 empties the table, then back to 4096: a block that refers to an evicted entry must fail.
    const updates = Buffer.from([0x20, 0x3f, 0xe1, 0x1f]);
    const literal = Buffer.from([0x00, 0x01, 0x61, 0x01, 0x62]); // a: b, literal without indexing
    const out = run(rewriter, frame(HEADERS, END_HEADERS, 3, Buffer.concat([updates, literal])));
    assert.deepEqual(
      decodeStateless(parseFrames(out)[0]?.payload ?? Buffer.alloc(0)).map(({ name, value }) => ({
        name,
        value,
      })),
      [{ name: 'a', value: 'b' }],
    );
    assert.throws(
      () => run(rewriter, frame(HEADERS, END_HEADERS, 5, Buffer.from([0xbe]))), // index 62: evicted
      violation('COMPRESSION_ERROR', /not valid HPACK/),
    );
  });

  it('refuses a size update after a field, or above the agreed maximum', () => {
    const late = new ClientFrameRewriter();
    run(late, PREFACE);
    assert.throws(
      () => run(late, frame(HEADERS, END_HEADERS, 1, Buffer.from([0x82, 0x20]))),
      violation('COMPRESSION_ERROR', /after the first header field/),
    );
    const large = new ClientFrameRewriter();
    run(large, PREFACE);
    assert.throws(
      () => run(large, frame(HEADERS, END_HEADERS, 1, Buffer.from([0x3f, 0xe2, 0x1f]))), // 4097
      violation('COMPRESSION_ERROR', /exceeds the agreed 4096/),
    );
  });

  it('refuses invalid HPACK: index 0, an index past the table, a truncated string', () => {
    for (const block of [Buffer.from([0x80]), Buffer.from([0xff, 0x40]), Buffer.from([0x00, 0x05, 0x61])]) {
      const rewriter = new ClientFrameRewriter();
      run(rewriter, PREFACE);
      assert.throws(
        () => run(rewriter, frame(HEADERS, END_HEADERS, 1, block)),
        violation('COMPRESSION_ERROR', /not valid HPACK/),
        block.toString('hex'),
      );
    }
  });

  it('refuses framing a server must refuse: bad preface, stray or interrupted CONTINUATION, oversized frames, bad padding, PUSH_PROMISE', () => {
    const notHttp2 = new ClientFrameRewriter();
    assert.throws(
      () => run(notHttp2, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')),
      violation('PROTOCOL_ERROR', /preface/),
    );
    const cases: { bytes: Buffer; name: Http2ProtocolViolation['http2Error']; pattern: RegExp }[] = [
      {
        bytes: frame(CONTINUATION, END_HEADERS, 1, Buffer.from([0x82])),
        name: 'PROTOCOL_ERROR',
        pattern: /without an open header block/,
      },
      {
        bytes: Buffer.concat([frame(HEADERS, 0, 1, Buffer.from([0x82])), DATA]),
        name: 'PROTOCOL_ERROR',
        pattern: /expected CONTINUATION on stream 1/,
      },
      {
        bytes: Buffer.concat([
          frame(HEADERS, 0, 1, Buffer.from([0x82])),
          frame(CONTINUATION, END_HEADERS, 3, Buffer.from([0x84])),
        ]),
        name: 'PROTOCOL_ERROR',
        pattern: /expected CONTINUATION on stream 1, got frame type 9 on stream 3/,
      },
      {
        bytes: frame(HEADERS, END_HEADERS, 1, Buffer.alloc(16_385)),
        name: 'FRAME_SIZE_ERROR',
        pattern: /exceeds the frame size limit/,
      },
      {
        bytes: frame(HEADERS, END_HEADERS | PADDED, 1, Buffer.from([9, 0x82])),
        name: 'PROTOCOL_ERROR',
        pattern: /padding and priority exceed the frame/,
      },
      { bytes: frame(0x5, END_HEADERS, 1, Buffer.alloc(4)), name: 'PROTOCOL_ERROR', pattern: /PUSH_PROMISE/ },
    ];
    for (const { bytes, name, pattern } of cases) {
      const rewriter = new ClientFrameRewriter();
      assert.throws(
        () => run(rewriter, Buffer.concat([PREFACE, bytes])),
        violation(name, pattern),
        pattern.source,
      );
    }
  });

  it('refuses a header block that grows past 128 KiB over CONTINUATION frames', () => {
    const rewriter = new ClientFrameRewriter();
    run(rewriter, Buffer.concat([PREFACE, frame(HEADERS, 0, 1, Buffer.alloc(16_384))]));
    assert.throws(
      () => {
        for (let index = 0; index < 8; index++)
          run(rewriter, frame(CONTINUATION, 0, 1, Buffer.alloc(16_384)));
      },
      violation('PROTOCOL_ERROR', /header block over 131072 bytes/),
    );
  });

  it('splits a re-encoded block larger than a frame into HEADERS and CONTINUATION frames', () => {
    const encode = clientEncoder();
    const rewriter = new ClientFrameRewriter();
    // 20 KiB of metadata: the client must split it too.
    const big = 'x'.repeat(20 * 1024);
    const block = encode([
      ...requestFields(SOCKET_PATH, '1m'),
      { name: 'x-big', value: big, huffman: false },
    ]);
    const bytes = Buffer.concat([
      PREFACE,
      frame(HEADERS, END_STREAM, 7, block.subarray(0, 16_384)),
      frame(CONTINUATION, END_HEADERS, 7, block.subarray(16_384)),
    ]);
    const frames = parseFrames(run(rewriter, bytes, 1000).subarray(PREFACE.length));
    assert.deepEqual(
      frames.map(({ type, flags, streamId }) => ({ type, flags, streamId })),
      [
        { type: HEADERS, flags: END_STREAM, streamId: 7 },
        { type: CONTINUATION, flags: END_HEADERS, streamId: 7 },
      ],
    );
    const fields = decodeStateless(Buffer.concat(frames.map((f) => f.payload)));
    assert.equal(fields.find((f) => f.name === 'x-big')?.value, big);
    assert.equal(fields.find((f) => f.name === ':authority')?.value, 'localhost');
  });
});
