import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { status as GrpcStatus, type MethodDefinition } from '@grpc/grpc-js';
import { KmsClient, kmsServices } from '@trousseau/core/grpc';
import { connectionsServed, startTestServer, type TestServer } from './helpers.js';
import {
  connectTapped,
  encodeFrame,
  FLAG,
  FRAME,
  grpcUnary,
  PREFACE,
  type Frame,
  type FrameReshaper,
  type TappedSession,
} from './http2-wire.js';

// kube-apiserver before 1.32 dials the bare socket path, so grpc-go sends that path as the HTTP/2
// :authority (kubernetes#126929); Node's HTTP/2 layer refuses it unless the front-end rewrites it. These
// tests talk to the real server over its real socket, with clients that send what those apiservers send.

const CALLS = 10_000;
const CONCURRENT_STREAMS = 64;
/** Generous for a loaded 2-core machine; a regression fails here instead of hanging the suite. */
const SLOW = { timeout: 180_000 };
const QUICK = { timeout: 60_000 };

type Method = MethodDefinition<object, object>;

/** An empty SETTINGS frame: the preface each side may send first. */
const EMPTY_SETTINGS = encodeFrame({ type: FRAME.SETTINGS, flags: 0, streamId: 0, payload: Buffer.alloc(0) });

function method(api: 'v2' | 'v1beta1', name: string): Method {
  const found = kmsServices()[api].service[name];
  assert.ok(found !== undefined, `${api} ${name}`);
  return found as Method;
}

/** One call over Node's HTTP/2 client, with the protobuf encoding of the real service definition. */
async function call<T>(
  tapped: TappedSession,
  authority: string,
  api: 'v2' | 'v1beta1',
  name: string,
  request: object,
  headers: Record<string, string>,
): Promise<T> {
  const definition = method(api, name);
  const answer = await grpcUnary(tapped.session, {
    path: definition.path,
    authority,
    message: definition.requestSerialize(request),
    headers,
  });
  assert.equal(answer.status, GrpcStatus.OK, `${api} ${name}: ${answer.status} ${answer.message}`);
  return definition.responseDeserialize(answer.body) as T;
}

/** Runs `total` numbered calls with `concurrency` in flight at once. */
async function inParallel(total: number, concurrency: number, work: (index: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await work(next++);
    }),
  );
}

/** Headers that change with every call, so the client's HPACK table keeps adding and evicting entries. */
function varyingHeaders(index: number): Record<string, string> {
  return {
    'grpc-timeout': `${2_000 + (index % 997)}m`,
    'user-agent': 'grpc-go/1.27.1',
    'x-request-id': `req-${index}-${randomBytes(4).toString('hex')}`,
  };
}

/** A v2 Encrypt then Decrypt of a fresh seed (two calls, headers varying with `index`), both checked. */
async function v2RoundTrip(tapped: TappedSession, authority: string, index: number, keyId: string) {
  const seed = randomBytes(32);
  const encrypted = await call<{ ciphertext: Buffer; key_id: string }>(
    tapped,
    authority,
    'v2',
    'Encrypt',
    { plaintext: seed, uid: `uid-${index}` },
    varyingHeaders(2 * index),
  );
  assert.equal(encrypted.key_id, keyId);
  const decrypted = await call<{ plaintext: Buffer }>(
    tapped,
    authority,
    'v2',
    'Decrypt',
    { ciphertext: encrypted.ciphertext, key_id: encrypted.key_id, uid: `uid-${index}` },
    varyingHeaders(2 * index + 1),
  );
  assert.deepEqual(decrypted.plaintext, seed);
}

/** A v1beta1 Encrypt then Decrypt of a fresh 32-byte key (two calls), checked. */
async function v1RoundTrip(tapped: TappedSession, authority: string, index: number) {
  const plain = randomBytes(32);
  const encrypted = await call<{ cipher: Buffer }>(
    tapped,
    authority,
    'v1beta1',
    'Encrypt',
    { version: 'v1beta1', plain },
    varyingHeaders(2 * index),
  );
  const decrypted = await call<{ plain: Buffer }>(
    tapped,
    authority,
    'v1beta1',
    'Decrypt',
    { version: 'v1beta1', cipher: encrypted.cipher },
    varyingHeaders(2 * index + 1),
  );
  assert.deepEqual(decrypted.plain, plain);
}

/**
 * `calls` v1beta1 round trips ({@link v1RoundTrip}), `concurrency` at once, on one new tapped connection to
 * `socket` whose client frames `reshape` rewrites, with `authority` as `:authority`.
 */
async function v1RoundTripsOnOneConnection(
  socket: string,
  authority: string,
  calls: number,
  concurrency: number,
  reshape?: FrameReshaper,
): Promise<void> {
  const tapped = await connectTapped(socket, reshape);
  try {
    await inParallel(calls, concurrency, (index) => v1RoundTrip(tapped, authority, index));
  } finally {
    await tapped.close();
  }
}

/**
 * Proof that the client encoded as claimed: the socket path never crossed the wire in clear (Huffman)
 * and later header blocks are a fraction of the first (indexed from the dynamic table).
 */
function assertHuffmanAndIndexing(tapped: TappedSession, authority: string, calls = CALLS): void {
  const blocks = tapped.headerBlocks;
  assert.ok(blocks.length >= calls, `${blocks.length} header blocks`);
  assert.equal(Buffer.concat(blocks).includes(Buffer.from(authority)), false, 'authority Huffman-coded');
  const first = blocks[0]?.length ?? 0;
  const later = blocks.slice(1).reduce((sum, block) => sum + block.length, 0) / (blocks.length - 1);
  assert.ok(later < first * 0.6, `later blocks average ${later} bytes against ${first} for the first`);
}

/** Unusual but valid ways to frame a header block, each applied to every block a client sends. */
const reshapers: Record<string, FrameReshaper> = {
  'split over HEADERS and two CONTINUATION frames': (frame) => {
    if (frame.type !== FRAME.HEADERS || frame.payload.length < 3) return [frame];
    const third = Math.ceil(frame.payload.length / 3);
    const flags = frame.flags & ~FLAG.END_HEADERS;
    return [
      { ...frame, flags, payload: frame.payload.subarray(0, third) },
      { ...frame, type: FRAME.CONTINUATION, flags: 0, payload: frame.payload.subarray(third, 2 * third) },
      {
        ...frame,
        type: FRAME.CONTINUATION,
        flags: frame.flags & FLAG.END_HEADERS,
        payload: frame.payload.subarray(2 * third),
      },
    ];
  },
  'with padding and the priority flag': (frame) => {
    if (frame.type !== FRAME.HEADERS) return [frame];
    const padding = Buffer.alloc(1 + (frame.streamId % 200));
    const priority = Buffer.from([0, 0, 0, 0, 15]);
    return [
      {
        ...frame,
        flags: frame.flags | FLAG.PADDED | FLAG.PRIORITY,
        payload: Buffer.concat([Buffer.from([padding.length]), priority, frame.payload, padding]),
      },
    ];
  },
  'starting with dynamic table size updates (to 0, then back to 4096)': (frame) => {
    // Only on the first block, while the client's table is still empty: both sides stay in step.
    if (frame.type !== FRAME.HEADERS || frame.streamId !== 1) return [frame];
    const updates = Buffer.from([0x20, 0x3f, 0xe1, 0x1f]);
    return [{ ...frame, payload: Buffer.concat([updates, frame.payload]) }];
  },
};

describe('the socket path as :authority, as kube-apiserver before 1.32 sends it', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  it(
    'answers kube-apiserver probes from a gRPC client that dials with the path: v1 Version, Encrypt("ping"), Decrypt; v2 Status',
    QUICK,
    async () => {
      const client = new KmsClient(t.socket, { authority: t.socket, timeoutMs: 10_000 });
      try {
        const version = await client.v1Version();
        assert.equal(version.version, 'v1beta1');
        const ping = Buffer.from('ping');
        const encrypted = await client.v1Encrypt(ping);
        assert.deepEqual((await client.v1Decrypt(encrypted.cipher)).plain, ping);
        const status = await client.status();
        assert.equal(status.healthz, 'ok');
        assert.equal(status.version, 'v2');
        const seed = randomBytes(32);
        const v2 = await client.encrypt(seed, 'uid');
        assert.equal(v2.key_id, status.key_id);
        const decrypted = await client.decrypt({ ciphertext: v2.ciphertext, keyId: v2.key_id });
        assert.deepEqual(decrypted.plaintext, seed);
      } finally {
        client.close();
      }
    },
  );

  it(
    `serves ${CALLS} v2 calls on one connection, ${CONCURRENT_STREAMS} streams at once, headers varying per call`,
    SLOW,
    async () => {
      const tapped = await connectTapped(t.socket);
      try {
        const status = await call<{ key_id: string }>(
          tapped,
          t.socket,
          'v2',
          'Status',
          {},
          varyingHeaders(0),
        );
        // Each round trip is an Encrypt and a Decrypt: CALLS calls in all, every answer checked.
        await inParallel(CALLS / 2, CONCURRENT_STREAMS, (index) =>
          v2RoundTrip(tapped, t.socket, index, status.key_id),
        );
        assertHuffmanAndIndexing(tapped, t.socket);
      } finally {
        await tapped.close();
      }
    },
  );

  it(`serves ${CALLS} v1beta1 calls the same way`, SLOW, async () => {
    const tapped = await connectTapped(t.socket);
    try {
      const version = await call<{ version: string }>(
        tapped,
        t.socket,
        'v1beta1',
        'Version',
        { version: 'v1beta1' },
        varyingHeaders(0),
      );
      assert.equal(version.version, 'v1beta1');
      await inParallel(CALLS / 2, CONCURRENT_STREAMS, (index) => v1RoundTrip(tapped, t.socket, index));
      assertHuffmanAndIndexing(tapped, t.socket);
    } finally {
      await tapped.close();
    }
  });

  for (const [shape, reshape] of Object.entries(reshapers)) {
    it(`accepts header blocks ${shape}`, QUICK, async () => {
      await v1RoundTripsOnOneConnection(t.socket, t.socket, 200, 16, reshape);
    });
  }

  it(
    'takes a large metadata value, which the client sends over HEADERS and CONTINUATION',
    QUICK,
    async () => {
      const tapped = await connectTapped(t.socket);
      try {
        const big = 'v'.repeat(20 * 1024);
        const status = await call<{ healthz: string }>(
          tapped,
          t.socket,
          'v2',
          'Status',
          {},
          { 'x-large': big },
        );
        assert.equal(status.healthz, 'ok');
        // The client really did split the block: more fragments than calls.
        assert.ok(tapped.headerBlocks.length >= 2, `${tapped.headerBlocks.length} fragments`);
      } finally {
        await tapped.close();
      }
    },
  );
});

describe('a valid :authority, as kube-apiserver 1.32+ sends it: the socket goes to grpc-js as it is', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      health: { listen: '127.0.0.1:0' },
      socketLimits: { handshakeTimeoutSeconds: 0.5 },
    });
  });
  after(() => t.close());

  /** Runs `work` and returns how many connections it made, by path. */
  async function served(work: () => Promise<void>): Promise<{ direct: number; rewritten: number }> {
    const before = await connectionsServed(t);
    await work();
    const after = await connectionsServed(t);
    return { direct: after.direct - before.direct, rewritten: after.rewritten - before.rewritten };
  }

  /** `calls` v1beta1 round trips, `concurrency` at once, on one tapped connection; its count by path. */
  function roundTripsServed(
    authority: string,
    calls: number,
    concurrency: number,
    reshape?: FrameReshaper,
  ): Promise<{ direct: number; rewritten: number }> {
    return served(() => v1RoundTripsOnOneConnection(t.socket, authority, calls, concurrency, reshape));
  }

  it(
    'sends its HTTP/2 preface, with the stream cap, before the client sends anything (grpc-go waits for it)',
    QUICK,
    async () => {
      const socket = await rawConnection(t.socket);
      try {
        const first = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
        // SETTINGS on stream 0, not an ACK, one entry: SETTINGS_MAX_CONCURRENT_STREAMS (0x3) = 1024.
        assert.deepEqual(
          [...first.subarray(0, 15)],
          [0, 0, 6, FRAME.SETTINGS, 0, 0, 0, 0, 0, 0, 0x3, 0, 0, 0x04, 0x00],
        );
      } finally {
        socket.destroy();
      }
    },
  );

  it(
    `serves ${CALLS / 2} v2 calls on one direct connection, the client's HPACK table carried across the handover`,
    SLOW,
    async () => {
      const counts = await served(async () => {
        const tapped = await connectTapped(t.socket);
        try {
          const status = await call<{ key_id: string }>(
            tapped,
            'localhost',
            'v2',
            'Status',
            {},
            varyingHeaders(0),
          );
          await inParallel(CALLS / 4, CONCURRENT_STREAMS, (index) =>
            v2RoundTrip(tapped, 'localhost', index, status.key_id),
          );
          assertHuffmanAndIndexing(tapped, 'localhost', CALLS / 2);
        } finally {
          await tapped.close();
        }
      });
      assert.deepEqual(counts, { direct: 1, rewritten: 0 });
    },
  );

  for (const [shape, reshape] of Object.entries(reshapers)) {
    it(`takes header blocks ${shape} before and after the handover`, QUICK, async () => {
      assert.deepEqual(await roundTripsServed('localhost', 200, 16, reshape), { direct: 1, rewritten: 0 });
    });
  }

  it('switches a connection to rewriting when the socket path arrives in its first call', QUICK, async () => {
    assert.deepEqual(await roundTripsServed(t.socket, 100, 16), { direct: 0, rewritten: 1 });
  });

  it(
    'serves a client that never acknowledges the server preface, through the rewriting layer after the handshake timeout',
    QUICK,
    async () => {
      const noAcks: FrameReshaper = (frame) =>
        frame.type === FRAME.SETTINGS && (frame.flags & FLAG.ACK) !== 0 ? [] : [frame];
      assert.deepEqual(await roundTripsServed('localhost', 20, 4, noAcks), { direct: 0, rewritten: 1 });
    },
  );

  it(
    'serves a client that sends over 256 KiB before its first call completes, through the rewriting layer',
    QUICK,
    async () => {
      // Frames of an unknown type, which HTTP/2 says a receiver ignores, ahead of the first block.
      const unknown = (): Frame => ({ type: 0xfa, flags: 0, streamId: 0, payload: Buffer.alloc(16_384) });
      const flood: FrameReshaper = (frame) =>
        frame.type === FRAME.HEADERS && frame.streamId === 1
          ? [...Array.from({ length: 20 }, unknown), frame]
          : [frame];
      assert.deepEqual(await roundTripsServed('localhost', 20, 4, flood), { direct: 0, rewritten: 1 });
    },
  );
});

/** A plain unix-socket connection to the KMS socket, for writing raw HTTP/2 bytes. */
function rawConnection(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    socket.once('close', () => resolve());
    socket.on('error', () => {});
    socket.resume();
  });
}

describe('abuse on the same path leaves the server serving', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  async function assertStillServing(): Promise<void> {
    const client = new KmsClient(t.socket, { authority: t.socket, timeoutMs: 10_000 });
    try {
      assert.equal((await client.status()).healthz, 'ok');
    } finally {
      client.close();
    }
  }

  const headers = (flags: number, payload: Buffer): Buffer =>
    encodeFrame({ type: FRAME.HEADERS, flags, streamId: 1, payload } satisfies Frame);

  it('closes a connection whose header block is not valid HPACK', QUICK, async () => {
    for (const block of [
      Buffer.from([0x80]),
      Buffer.from([0xff, 0x40]),
      Buffer.from([0x3f, 0xff, 0xff, 0x0f]),
    ]) {
      const socket = await rawConnection(t.socket);
      socket.write(
        Buffer.concat([PREFACE, EMPTY_SETTINGS, headers(FLAG.END_HEADERS | FLAG.END_STREAM, block)]),
      );
      await closed(socket);
    }
    await assertStillServing();
  });

  it('closes a connection that is not HTTP/2 at all', QUICK, async () => {
    const socket = await rawConnection(t.socket);
    socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await closed(socket);
    await assertStillServing();
  });

  it(
    'survives a truncated frame and a connection closed in the middle of a header block',
    QUICK,
    async () => {
      const truncated = await rawConnection(t.socket);
      const frame = headers(FLAG.END_HEADERS, Buffer.alloc(100, 0x82));
      truncated.end(Buffer.concat([PREFACE, EMPTY_SETTINGS, frame.subarray(0, 40)]));
      await closed(truncated);

      const midBlock = await rawConnection(t.socket);
      // HEADERS without END_HEADERS: the block never finishes.
      midBlock.end(Buffer.concat([PREFACE, EMPTY_SETTINGS, headers(0, Buffer.from([0x83, 0x86]))]));
      await closed(midBlock);
      await assertStillServing();
    },
  );
});
