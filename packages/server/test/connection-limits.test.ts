import assert from 'node:assert/strict';
import { connect as connectHttp2 } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KmsClient } from '@trousseau/core/grpc';
import { startTestServer, type TestServer } from './helpers.js';
import { PREFACE } from './http2-wire.js';

// What one client may hold on the KMS socket (socket.limits): idle and hostile connections are bounded,
// and a legitimate caller still gets through when they fill the cap.

const MAX_CONNECTIONS = 20;
const QUICK = { timeout: 60_000 };

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves when the server has closed the connection (reading, so the end of the stream is seen). */
function whenClosed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.on('error', () => {});
    socket.resume();
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
  });
}

async function statusOk(socketPath: string): Promise<void> {
  const client = new KmsClient(socketPath, { authority: socketPath, timeoutMs: 10_000 });
  try {
    assert.equal((await client.status()).healthz, 'ok');
  } finally {
    client.close();
  }
}

describe('KMS socket limits against idle and hostile clients', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      socketLimits: { maxConnections: MAX_CONNECTIONS, handshakeTimeoutSeconds: 1, idleTimeoutSeconds: 1 },
    });
  });
  after(() => t.close());

  it('closes a connection that sends no HTTP/2 preface within the handshake timeout', QUICK, async () => {
    const silent = await open(t.socket);
    await whenClosed(silent);
    const partial = await open(t.socket);
    partial.write(PREFACE.subarray(0, 10));
    await whenClosed(partial);
  });

  it('keeps at most maxConnections open, and a legitimate Status succeeds at the cap', QUICK, async () => {
    // A server of its own with long timeouts: here only the cap may close a connection.
    const capped = await startTestServer({ socketLimits: { maxConnections: MAX_CONNECTIONS } });
    try {
      // Five times the cap, each sending the preface so that it counts as a real HTTP/2 client.
      const crowd = await Promise.all(Array.from({ length: 5 * MAX_CONNECTIONS }, () => open(capped.socket)));
      for (const socket of crowd) socket.write(PREFACE);
      let closed = 0;
      const waiters: { count: number; resolve: () => void }[] = [];
      const closedAtLeast = (count: number) =>
        new Promise<void>((resolve) => {
          if (closed >= count) resolve();
          else waiters.push({ count, resolve });
        });
      for (const socket of crowd) {
        void whenClosed(socket).then(() => {
          closed++;
          for (const waiter of waiters) if (closed >= waiter.count) waiter.resolve();
        });
      }
      await closedAtLeast(crowd.length - MAX_CONNECTIONS);
      // The cap is full of idle clients; a legitimate caller still gets its answer, and its connection
      // took the place of one more of them.
      await statusOk(capped.socket);
      await closedAtLeast(crowd.length - MAX_CONNECTIONS + 1);
      for (const socket of crowd) socket.destroy();
    } finally {
      await capped.close();
    }
  });

  it('closes a connection with no call in flight after the idle timeout, with a GOAWAY', QUICK, async () => {
    const session = connectHttp2('http://localhost', { createConnection: () => connect(t.socket) });
    session.on('error', () => {});
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    await new Promise<void>((resolve) => session.once('connect', () => resolve()));
    await goaway;
    await closed;
    await statusOk(t.socket);
  });

  it('advertises the stream cap to clients in SETTINGS', QUICK, async () => {
    const session = connectHttp2('http://localhost', { createConnection: () => connect(t.socket) });
    session.on('error', () => {});
    const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve) =>
      session.once('remoteSettings', resolve),
    );
    assert.equal(settings.maxConcurrentStreams, 1024);
    session.destroy();
  });
});
