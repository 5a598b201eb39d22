// A hostile client of the KMS socket, run as its own process so that the memory the test measures
// afterwards is the server's alone (Node's HTTP/2 client keeps megabytes of the bodies it sent after
// the server refused them). Usage:
//   node hostile-client.js requests <socket>     prints one JSON report of every case and its answer
//   node hostile-client.js connections <socket>  opens idle, half-open and broken connections, prints
//                                                "ready", waits for a line on stdin, prints a JSON report
import { randomBytes } from 'node:crypto';
import { connect as connectHttp2, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { KmsClient } from '@trousseau/core/grpc';
import { encodeFrame, FLAG, FRAME, grpcUnary, PREFACE } from '../http2-wire.js';

export const METHODS = [
  '/v2.KeyManagementService/Status',
  '/v2.KeyManagementService/Encrypt',
  '/v2.KeyManagementService/Decrypt',
  '/v1beta1.KeyManagementService/Version',
  '/v1beta1.KeyManagementService/Encrypt',
  '/v1beta1.KeyManagementService/Decrypt',
] as const;

/** Bodies no KMS message decodes from: each breaks the protobuf wire format itself. */
export const NOT_PROTOBUF: Readonly<Record<string, readonly number[]>> = {
  'wire type 7': [0x0f],
  'wire type 7, field 9': [0x4f],
  'wire type 6': [0x0e],
  'an end-group with no group': [0x0c],
  'field number 0': [0x00],
  'a varint cut short': [0x08, 0xff],
};

/** One request sent and how it was answered: gRPC status name and the Trousseau code, if any. */
export interface CaseResult {
  readonly case: string;
  readonly method: string;
  readonly status: string;
  readonly code: string;
}

const MiB = 1024 * 1024;

/** A deterministic stream of garbage: xorshift32 from a fixed seed. */
function garbage(count: number, seed = 0x2545f491): Buffer[] {
  let state = seed;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  return Array.from({ length: count }, () => {
    const bytes = Buffer.alloc(1 + (next() % 256));
    for (let i = 0; i < bytes.length; i++) bytes[i] = next() & 0xff;
    return bytes;
  });
}

function openSession(socket: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const client = connectHttp2('http://localhost', { createConnection: () => connect(socket) });
    client.on('error', () => undefined);
    client.once('connect', () => resolve(client));
    client.once('close', () => reject(new Error('closed before connecting')));
  });
}

/** The Trousseau code at the start of a grpc-message ("TROUSSEAU_ERR_X: ..."), or "". */
function codeOf(message: string): string {
  return /^(TROUSSEAU_ERR_[A-Z0-9_]+):/.exec(message)?.[1] ?? '';
}

async function requests(socket: string): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const session = await openSession(socket);
  const raw = async (name: string, method: string, message: Buffer): Promise<void> => {
    const answer = await grpcUnary(session, { path: method, authority: 'localhost', message });
    results.push({
      case: name,
      method,
      status: GrpcStatus[answer.status] ?? String(answer.status),
      code: codeOf(answer.message),
    });
  };
  for (const method of METHODS) {
    for (const [name, bytes] of Object.entries(NOT_PROTOBUF))
      await raw(`not protobuf: ${name}`, method, Buffer.from(bytes));
    for (const body of garbage(100)) await raw('random garbage', method, body);
  }
  await raw('empty body', '/v2.KeyManagementService/Encrypt', Buffer.alloc(0));
  await raw('unknown method', '/v2.KeyManagementService/Rotate', Buffer.alloc(0));
  session.destroy();

  const client = new KmsClient(socket, { timeoutMs: 30_000 });
  const call = async (name: string, method: string, work: () => Promise<unknown>): Promise<void> => {
    try {
      await work();
      results.push({ case: name, method, status: 'OK', code: '' });
    } catch (error) {
      const failure = error as ServiceError;
      const code = failure.metadata?.get('trousseau-error-code')[0];
      results.push({
        case: name,
        method,
        status: GrpcStatus[failure.code] ?? String(failure.code),
        code: typeof code === 'string' ? code : '',
      });
    }
  };
  const good = await client.encrypt(randomBytes(32));
  const huge = 'x'.repeat(MiB);
  const annotations = Object.fromEntries(
    Array.from({ length: 1_000 }, (_, i) => [`key-${i}.trousseau.kms.k8s.io`, randomBytes(3 * 1024)]),
  );
  for (let round = 0; round < 5; round++) {
    await call('message over 4 MiB', 'v2 Encrypt', () => client.encrypt(randomBytes(5 * MiB)));
    await call('1 MiB plaintext', 'v2 Encrypt', () => client.encrypt(randomBytes(MiB)));
    await call('1 MiB ciphertext', 'v2 Decrypt', () =>
      client.decrypt({ ciphertext: randomBytes(MiB), keyId: good.key_id }),
    );
    await call('65535 bytes of garbage ciphertext', 'v2 Decrypt', () =>
      client.decrypt({ ciphertext: randomBytes(65_535), keyId: good.key_id }),
    );
    await call('1 MiB key_id', 'v2 Decrypt', () =>
      client.decrypt({ ciphertext: good.ciphertext, keyId: huge }),
    );
    await call('1 MiB cipher', 'v1beta1 Decrypt', () => client.v1Decrypt(randomBytes(MiB)));
    await call('3 MiB of annotations and a 1 MiB uid', 'v2 Decrypt', () =>
      client.decrypt({ ciphertext: good.ciphertext, keyId: good.key_id, annotations, uid: huge }),
    );
    await call('1 MiB uid', 'v2 Encrypt', () => client.encrypt(randomBytes(32), huge));
  }
  client.close();
  return results;
}

/** What the connections battery saw: how many of its connections of each kind the server closed. */
export interface ConnectionsReport {
  readonly opened: Record<string, number>;
  readonly closedByServer: Record<string, number>;
  readonly stalledStreams: number;
}

async function connections(socket: string, perKind: number, streamsPerConnection: number): Promise<void> {
  const opened: Record<string, number> = {};
  const closedByServer: Record<string, number> = {};
  const sockets: Socket[] = [];
  const sessions: ClientHttp2Session[] = [];
  const streams: ClientHttp2Stream[] = [];
  let stopping = false;
  const track = (kind: string, target: { once(event: 'close', listener: () => void): unknown }): void => {
    opened[kind] = (opened[kind] ?? 0) + 1;
    target.once('close', () => {
      if (!stopping) closedByServer[kind] = (closedByServer[kind] ?? 0) + 1;
    });
  };
  const raw = async (kind: string, bytes: Buffer[], end: boolean): Promise<void> => {
    const connection = connect(socket);
    connection.on('error', () => undefined);
    connection.resume();
    await new Promise<void>((resolve) => connection.once('connect', () => resolve()));
    track(kind, connection);
    for (const chunk of bytes) connection.write(chunk);
    if (end) connection.end();
    sockets.push(connection);
  };
  const headerBlockStart = Buffer.from([0x83, 0x86, 0x44]); // :method POST, :scheme http, :path (cut)
  for (let i = 0; i < perKind; i++) {
    // Idle: connected, nothing sent.
    await raw('idle', [], false);
    // The preface only, then silence.
    await raw('preface only', [PREFACE], false);
    // Truncated HTTP/2: a frame header promising more than ever comes, then a half-close.
    await raw(
      'truncated frame',
      [
        PREFACE,
        encodeFrame({ type: FRAME.SETTINGS, flags: 0, streamId: 0, payload: Buffer.alloc(0) }).subarray(0, 5),
      ],
      true,
    );
    // A HEADERS frame cut inside its header block, then a half-close.
    await raw(
      'truncated header block',
      [
        PREFACE,
        encodeFrame({ type: FRAME.SETTINGS, flags: 0, streamId: 0, payload: Buffer.alloc(0) }),
        encodeFrame({ type: FRAME.HEADERS, flags: FLAG.END_HEADERS, streamId: 1, payload: headerBlockStart }),
      ],
      true,
    );
    // Not HTTP/2 at all.
    await raw('garbage instead of the preface', [randomBytes(64)], false);
    // Half-open calls: streams whose request body never comes, no deadline.
    const session = await openSession(socket).catch(() => undefined);
    if (session !== undefined) {
      track('stalled calls', session);
      sessions.push(session);
      for (let s = 0; s < streamsPerConnection; s++) {
        const stream = session.request(
          {
            ':method': 'POST',
            ':path': '/v2.KeyManagementService/Decrypt',
            'content-type': 'application/grpc',
            te: 'trailers',
          },
          { endStream: false },
        );
        stream.on('error', () => undefined);
        streams.push(stream);
      }
    }
  }
  // The broken connections must be closed by the server by themselves, promptly; wait for that (within
  // a bound, so a server that keeps them shows up in the report instead of hanging the test).
  const broken = ['truncated frame', 'truncated header block', 'garbage instead of the preface'];
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && broken.some((kind) => (closedByServer[kind] ?? 0) < (opened[kind] ?? 0))) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) =>
    createInterface({ input: process.stdin }).once('line', () => resolve()),
  );
  stopping = true;
  const report: ConnectionsReport = { opened, closedByServer, stalledStreams: streams.length };
  for (const session of sessions) session.destroy();
  for (const connection of sockets) connection.destroy();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

const [mode, socket, perKind, streams] = process.argv.slice(2);
if (socket !== undefined && mode === 'requests') {
  const results = await requests(socket);
  process.stdout.write(`${JSON.stringify(results)}\n`);
} else if (socket !== undefined && mode === 'connections') {
  await connections(socket, Number(perKind ?? '10'), Number(streams ?? '10'));
}
