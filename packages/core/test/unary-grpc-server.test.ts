import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as connectHttp2, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect as connectSocket, createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Client, credentials, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { ServedMethod, UnaryCall } from '../src/grpc/stream-call.js';
import { UnaryGrpcServer } from '../src/grpc/unary-grpc-server.js';

// The unary gRPC server on node:http2, against two real clients: grpc-js (as the CLI and every Node caller
// call) for whole calls, deadlines and cancellation, and Node's own HTTP/2 client for the bodies and
// headers no gRPC library sends. Each answer is what a grpc-js server gives for the same request.

const MAX_MESSAGE = 1024;
const IDLE_MS = 300;

/** A call the test holds open until it says so. */
interface HeldCall {
  readonly call: UnaryCall;
  readonly cancelled: Promise<void>;
}

/** gRPC's length-prefixed message. */
function framed(message: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

interface RawAnswer {
  readonly headers: IncomingHttpHeaders;
  readonly trailers: IncomingHttpHeaders;
  readonly body: Buffer;
}

// Every wait is on an event; the timeout only turns a missing event into a failure instead of a hang.
describe('UnaryGrpcServer', { timeout: 30_000 }, () => {
  let dir: string;
  let socket: string;
  let listener: NetServer;
  let server: UnaryGrpcServer;
  let grpcClient: Client;
  const held: HeldCall[] = [];
  const heldArrived: (() => void)[] = [];
  const deadlines: number[] = [];

  const echo: ServedMethod = (message, call) => {
    deadlines.push(call.deadline);
    call.respond(null, Buffer.concat([Buffer.from('echo:'), message]));
  };
  const hold: ServedMethod = (_message, call) => {
    const cancelled = new Promise<void>((resolve) => {
      call.onCancel = resolve;
    });
    held.push({ call, cancelled });
    heldArrived.shift()?.();
  };
  const fail: ServedMethod = (_message, call) =>
    call.respond({
      code: GrpcStatus.FAILED_PRECONDITION,
      details: 'clé: 100% gone',
      trailers: { 'x-code': 'K' },
    });
  const failBroken: ServedMethod = (_message, call) =>
    call.respond({ code: GrpcStatus.INVALID_ARGUMENT, details: 'half \uD83D', trailers: {} });
  const throws: ServedMethod = () => {
    throw new Error('a handler bug');
  };

  /** Resolves with the next call `hold` takes. */
  function nextHeld(): Promise<HeldCall> {
    const count = held.length;
    return new Promise((resolve) => {
      heldArrived.push(() => resolve(held[count] as HeldCall));
    });
  }

  function grpcCall(method: string, message: Buffer, deadlineMs?: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      grpcClient.makeUnaryRequest(
        `/test.Service/${method}`,
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => bytes,
        message,
        new Metadata(),
        deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs },
        (error: ServiceError | null, value?: Buffer) => (error ? reject(error) : resolve(value as Buffer)),
      );
    });
  }

  function http2Session(): ClientHttp2Session {
    return connectHttp2('http://localhost', { createConnection: () => connectSocket(socket) });
  }

  /** One request on a fresh connection, with the headers and body given; resolves with the whole answer. */
  async function raw(headers: Record<string, string>, body: Buffer | undefined): Promise<RawAnswer> {
    const session = http2Session();
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/test.Service/Echo', ...headers });
      const chunks: Buffer[] = [];
      let trailers: IncomingHttpHeaders = {};
      stream.on('trailers', (received: IncomingHttpHeaders) => {
        trailers = received;
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      const response = once(stream, 'response') as Promise<[IncomingHttpHeaders]>;
      const closed = once(stream, 'close');
      stream.end(body);
      const [answered] = await response;
      await closed;
      return { headers: answered, trailers, body: Buffer.concat(chunks) };
    } finally {
      session.close();
    }
  }

  const grpcHeaders = { 'content-type': 'application/grpc', te: 'trailers' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'unary-grpc-'));
    socket = join(dir, 's.sock');
    server = new UnaryGrpcServer({
      methods: new Map([
        ['/test.Service/Echo', echo],
        ['/test.Service/Hold', hold],
        ['/test.Service/Fail', fail],
        ['/test.Service/Throw', throws],
        ['/test.Service/FailBroken', failBroken],
      ]),
      maxConcurrentStreams: 100,
      idleTimeoutMs: IDLE_MS,
      maxReceiveMessageBytes: MAX_MESSAGE,
    });
    listener = createServer((connection) => server.serve(connection));
    listener.listen(socket);
    await once(listener, 'listening');
    grpcClient = new Client(`unix://${socket}`, credentials.createInsecure());
  });

  after(async () => {
    grpcClient.close();
    server.destroy();
    listener.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a grpc-js call with its response and gives the handler the deadline the caller set', async () => {
    const before = Date.now();
    const answer = await grpcCall('Echo', Buffer.from('hello'), 60_000);
    assert.equal(answer.toString(), 'echo:hello');
    const deadline = deadlines.at(-1) ?? NaN;
    assert.ok(
      deadline >= before + 59_000 && deadline <= Date.now() + 60_000,
      `deadline ${deadline - before} ms ahead`,
    );
    await grpcCall('Echo', Buffer.from('no deadline'));
    assert.equal(deadlines.at(-1), Number.POSITIVE_INFINITY);
  });

  it('sends a failure as grpc-js does: the status, the message percent-encoded, and its own trailers', async () => {
    const error = await grpcCall('Fail', Buffer.alloc(0)).then(
      () => assert.fail('answered'),
      (failure: ServiceError) => failure,
    );
    assert.equal(error.code, GrpcStatus.FAILED_PRECONDITION);
    assert.equal(error.details, 'clé: 100% gone');
    assert.deepEqual(error.metadata.get('x-code'), ['K']);
    const answer = await raw({ ...grpcHeaders, ':path': '/test.Service/Fail' }, framed(Buffer.alloc(0)));
    assert.equal(answer.headers['grpc-status'], String(GrpcStatus.FAILED_PRECONDITION));
    assert.equal(answer.headers['grpc-message'], 'cl%C3%A9:%20100%25%20gone');
    assert.equal(answer.headers['x-code'], 'K');
    assert.equal(answer.body.length, 0, 'a trailers-only answer');
  });

  it('answers a failure whose message holds half a character (a lone surrogate), with U+FFFD for it', async () => {
    const answer = await raw(
      { ...grpcHeaders, ':path': '/test.Service/FailBroken' },
      framed(Buffer.alloc(0)),
    );
    assert.equal(answer.headers['grpc-status'], String(GrpcStatus.INVALID_ARGUMENT));
    assert.equal(answer.headers['grpc-message'], 'half%20%EF%BF%BD');
  });

  it('answers DEADLINE_EXCEEDED, as grpc-js does, when the deadline passes before the request has come', async () => {
    const session = http2Session();
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/test.Service/Echo',
        ...grpcHeaders,
        'grpc-timeout': '50m',
      });
      const echoed = deadlines.length;
      // Half a message, and the body never ends.
      stream.write(framed(Buffer.from('never finished')).subarray(0, 8));
      const [headers] = (await once(stream, 'response')) as [IncomingHttpHeaders];
      assert.equal(headers['grpc-status'], String(GrpcStatus.DEADLINE_EXCEEDED));
      assert.equal(headers['grpc-message'], 'Deadline%20exceeded');
      stream.close();
      assert.equal(deadlines.length, echoed, 'the method never ran');
    } finally {
      session.close();
    }
  });

  it('answers with the headers gRPC requires and the trailers grpc-js sends', async () => {
    const answer = await raw(grpcHeaders, framed(Buffer.from('x')));
    assert.equal(answer.headers[':status'], 200);
    assert.equal(answer.headers['content-type'], 'application/grpc+proto');
    assert.deepEqual(
      Object.keys(answer.headers).sort(),
      [':status', 'content-type'],
      'no grpc-encoding (not compressed, and not said) and no date: nothing a caller reads',
    );
    assert.deepEqual(answer.body, framed(Buffer.from('echo:x')));
    assert.equal(answer.trailers['grpc-status'], '0');
    assert.equal(answer.trailers['grpc-message'], 'OK');
  });

  it('refuses what is not a gRPC call, an unknown method and a bad grpc-timeout, as grpc-js does', async () => {
    const notGrpc = await raw({ 'content-type': 'text/plain' }, framed(Buffer.from('x')));
    assert.equal(notGrpc.headers[':status'], 415);
    const unknown = await raw({ ...grpcHeaders, ':path': '/test.Service/Nope' }, framed(Buffer.from('x')));
    assert.equal(unknown.headers['grpc-status'], String(GrpcStatus.UNIMPLEMENTED));
    assert.equal(unknown.headers.date, undefined, 'a trailers-only answer carries no date either');
    assert.equal(
      unknown.headers['grpc-message'],
      'The%20server%20does%20not%20implement%20the%20method%20/test.Service/Nope',
    );
    for (const timeout of ['1x', '123456789S', '', '5 S', '-1S']) {
      const answer = await raw({ ...grpcHeaders, 'grpc-timeout': timeout }, framed(Buffer.from('x')));
      assert.equal(answer.headers['grpc-status'], String(GrpcStatus.INTERNAL), timeout);
    }
    const valid = await raw({ ...grpcHeaders, 'grpc-timeout': '99999999H' }, framed(Buffer.from('x')));
    assert.equal(valid.trailers['grpc-status'], '0');
    assert.equal(deadlines.at(-1), Number.POSITIVE_INFINITY, 'a timeout no timer can count is no deadline');
  });

  it('refuses a message over the limit, a second message and a body with none', async () => {
    const tooLarge = await raw(grpcHeaders, framed(Buffer.alloc(MAX_MESSAGE + 1)));
    assert.equal(tooLarge.headers['grpc-status'], String(GrpcStatus.RESOURCE_EXHAUSTED));
    assert.match(decodeURI(String(tooLarge.headers['grpc-message'])), /larger than max \(1025 vs 1024\)/);
    const atLimit = await raw(grpcHeaders, framed(Buffer.alloc(MAX_MESSAGE)));
    assert.equal(atLimit.trailers['grpc-status'], '0');
    const two = await raw(grpcHeaders, Buffer.concat([framed(Buffer.from('a')), framed(Buffer.from('b'))]));
    assert.equal(two.headers['grpc-status'], String(GrpcStatus.UNIMPLEMENTED));
    assert.match(decodeURI(String(two.headers['grpc-message'])), /second request message/);
    for (const body of [undefined, Buffer.from([0, 0]), framed(Buffer.from('abc')).subarray(0, 6)]) {
      const none = await raw(grpcHeaders, body);
      assert.equal(none.headers['grpc-status'], String(GrpcStatus.UNIMPLEMENTED));
      assert.match(decodeURI(String(none.headers['grpc-message'])), /no request message/);
    }
  });

  it('reads a message split over many DATA frames and one whose prefix is split', async () => {
    const session = http2Session();
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/test.Service/Echo', ...grpcHeaders });
      const body = framed(Buffer.from('split'));
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      for (const byte of body) stream.write(Buffer.of(byte));
      stream.end();
      await once(stream, 'close');
      assert.deepEqual(Buffer.concat(chunks), framed(Buffer.from('echo:split')));
    } finally {
      session.close();
    }
  });

  it('inflates gzip and deflate messages, refuses other encodings and a message that inflates past the limit', async () => {
    const gzip = await raw({ ...grpcHeaders, 'grpc-encoding': 'gzip' }, framed(gzipSync('zipped'), true));
    assert.deepEqual(gzip.body, framed(Buffer.from('echo:zipped')));
    const deflate = await raw(
      { ...grpcHeaders, 'grpc-encoding': 'deflate' },
      framed(deflateSync('deflated'), true),
    );
    assert.deepEqual(deflate.body, framed(Buffer.from('echo:deflated')));
    const flagOnly = await raw(grpcHeaders, framed(Buffer.from('plain'), true));
    assert.deepEqual(flagOnly.body, framed(Buffer.from('echo:plain')), 'identity: the flag changes nothing');
    const snappy = await raw({ ...grpcHeaders, 'grpc-encoding': 'snappy' }, framed(Buffer.from('x'), true));
    assert.equal(snappy.headers['grpc-status'], String(GrpcStatus.UNIMPLEMENTED));
    const bomb = await raw(
      { ...grpcHeaders, 'grpc-encoding': 'gzip' },
      framed(gzipSync(Buffer.alloc(MAX_MESSAGE * 64)), true),
    );
    assert.equal(bomb.headers['grpc-status'], String(GrpcStatus.RESOURCE_EXHAUSTED));
    const broken = await raw(
      { ...grpcHeaders, 'grpc-encoding': 'gzip' },
      framed(Buffer.from('not gzip'), true),
    );
    assert.equal(broken.headers['grpc-status'], String(GrpcStatus.INTERNAL));
  });

  it('answers a handler that throws with UNKNOWN and goes on serving', async () => {
    const error = await grpcCall('Throw', Buffer.alloc(0)).then(
      () => assert.fail('answered'),
      (failure: ServiceError) => failure,
    );
    assert.equal(error.code, GrpcStatus.UNKNOWN);
    assert.equal((await grpcCall('Echo', Buffer.from('after'))).toString(), 'echo:after');
  });

  it('tells the handler when the caller cancels, and drops the answer given after', async () => {
    const taken = nextHeld();
    const answer = grpcCall('Hold', Buffer.from('x'), 100);
    const { call, cancelled } = await taken;
    await assert.rejects(answer, (error: ServiceError) => error.code === GrpcStatus.DEADLINE_EXCEEDED);
    await cancelled;
    call.respond(null, Buffer.from('too late'));
    assert.equal((await grpcCall('Echo', Buffer.from('still'))).toString(), 'echo:still');
  });

  it('drains: answers the calls in flight, then closes every connection', async () => {
    const taken = nextHeld();
    const answer = grpcCall('Hold', Buffer.from('x'));
    const { call } = await taken;
    let drained = false;
    const draining = server.drain().then(() => (drained = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(drained, false, 'a call is still in flight');
    call.respond(null, Buffer.from('answered while draining'));
    assert.equal((await answer).toString(), 'answered while draining');
    await draining;
    assert.equal(server.connections, 0);
  });

  it('drains a connection whose client already sent GOAWAY only once its call is answered', async () => {
    const session = http2Session();
    const ping = (): Promise<void> =>
      new Promise((resolve, reject) => {
        session.ping((error) => (error ? reject(error) : resolve()));
      });
    try {
      const taken = nextHeld();
      const stream = session.request({ ':method': 'POST', ':path': '/test.Service/Hold', ...grpcHeaders });
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      const answered = once(stream, 'close');
      stream.end(framed(Buffer.from('x')));
      const { call } = await taken;
      session.goaway(0);
      // The server has read the GOAWAY once it has answered a PING sent after it.
      await ping();
      let drained = false;
      const draining = server.drain().then(() => (drained = true));
      await ping().catch(() => undefined);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(drained, false, 'a call is still in flight');
      call.respond(null, Buffer.from('answered'));
      await answered;
      assert.deepEqual(Buffer.concat(chunks), framed(Buffer.from('answered')));
      await draining;
    } finally {
      session.destroy();
    }
  });

  it('closes a connection that stays idle, and cancels the calls of a destroyed one', async () => {
    const session = http2Session();
    // A call answered, then two refused before they ran (an unknown method, a content type that is not
    // gRPC) with 64 KiB more to read: once all three have closed, the connection counts no call in flight
    // and the idle timeout runs.
    const extra = Buffer.alloc(64 * 1024);
    const calls: [Record<string, string>, Buffer][] = [
      [grpcHeaders, framed(Buffer.from('once'))],
      [{ ...grpcHeaders, ':path': '/test.Service/Nope' }, Buffer.concat([framed(Buffer.from('x')), extra])],
      [{ 'content-type': 'text/plain' }, extra],
    ];
    for (const [headers, body] of calls) {
      const stream = session.request({ ':method': 'POST', ':path': '/test.Service/Echo', ...headers });
      stream.resume();
      stream.end(body);
      await once(stream, 'close');
    }
    const [code] = (await once(session, 'goaway')) as [number];
    assert.equal(code, 0, 'GOAWAY with NO_ERROR once idle');
    session.destroy();

    const taken = nextHeld();
    const answer = grpcCall('Hold', Buffer.from('x'));
    const { cancelled } = await taken;
    server.destroy();
    await cancelled;
    await assert.rejects(
      answer,
      (error: ServiceError) =>
        error.code === GrpcStatus.UNAVAILABLE ||
        error.code === GrpcStatus.INTERNAL ||
        error.code === GrpcStatus.CANCELLED,
    );
  });
});
