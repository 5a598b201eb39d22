import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { createTestCertificates, waitUntil, type TestCertificates } from '@trousseau/testing';
import {
  ABORTED,
  ConnectionPool,
  Http1ExchangeError,
  TIMED_OUT,
  type Http1Request,
} from '../src/http1/connection-pool.js';
import { requestHead } from '../src/http1/request-head.js';
import { BODY_TOO_LARGE, type Http1Response } from '../src/http1/response-parser.js';

const run = promisify(execFile);

type ConnectionPoolOptions = ConstructorParameters<typeof ConnectionPool>[0];

/** A request as the server read it. */
interface ReceivedRequest {
  readonly path: string;
  /** Its head and body, exactly as they came. */
  readonly bytes: Buffer;
}

/** One connection as the server sees it. */
interface ServerConnection {
  readonly socket: Socket;
  /** Every byte read on it, in order. */
  received: Buffer;
  readonly requests: ReceivedRequest[];
  closed: boolean;
}

type Responder = (connection: ServerConnection, request: ReceivedRequest) => void;

/** An HTTP/1.1 answer with a Content-Length body, and `extra` header lines (each ending in CRLF). */
const answer = (body: string, extra = ''): string =>
  `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n${extra}\r\n${body}`;

/**
 * A raw server: reads requests (head and Content-Length body) off each connection and hands them to
 * `respond`, which writes exactly the bytes a test wants; by default a 200 naming the request's path.
 */
class ScriptedServer {
  readonly connections: ServerConnection[] = [];
  respond: Responder = (connection, request) => {
    connection.socket.write(answer(`answer to ${request.path}`));
  };
  readonly server: Server;

  constructor(make: (listener: (socket: Socket) => void) => Server = (listener) => createServer(listener)) {
    this.server = make((socket) => this.#accept(socket));
  }

  /** Every request read, on any connection, in the order read. */
  get requests(): ReceivedRequest[] {
    return this.connections.flatMap((connection) => connection.requests);
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async listenOn(path: string): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(path, resolve));
  }

  async close(): Promise<void> {
    for (const connection of this.connections) connection.socket.destroy();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    const connection: ServerConnection = { socket, received: Buffer.alloc(0), requests: [], closed: false };
    this.connections.push(connection);
    let pending = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      connection.closed = true;
    });
    socket.on('data', (chunk: Buffer) => {
      connection.received = Buffer.concat([connection.received, chunk]);
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = pending.toString('latin1', 0, end + 4);
        const length = Number(/\r\ncontent-length: *(\d+)\r\n/i.exec(head)?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        const bytes = pending.subarray(0, end + 4 + length);
        pending = pending.subarray(end + 4 + length);
        const request: ReceivedRequest = { path: head.split(' ')[1] ?? '', bytes };
        connection.requests.push(request);
        this.respond(connection, request);
      }
    });
  }
}

const servers: ScriptedServer[] = [];
const pools: ConnectionPool[] = [];
/** Every client socket a pool opened, to check they are destroyed and to end them all after a test. */
let clientSockets: Socket[] = [];

async function tcpServer(): Promise<{ server: ScriptedServer; port: number }> {
  const server = new ScriptedServer();
  servers.push(server);
  return { server, port: await server.listen() };
}

/** A pool whose connections are counted and recorded; small limits unless `options` says otherwise. */
function poolOf(
  open: () => Socket,
  options: Partial<Omit<ConnectionPoolOptions, 'connect'>> = {},
): { pool: ConnectionPool; connects: () => number } {
  let connects = 0;
  const pool = new ConnectionPool({
    maxSockets: 4,
    maxIdle: 4,
    idleTimeoutMs: 30_000,
    maxBodyBytes: 1024 * 1024,
    ...options,
    connect: () => {
      connects++;
      const socket = open();
      clientSockets.push(socket);
      return socket;
    },
  });
  pools.push(pool);
  return { pool, connects: () => connects };
}

const tcpPool = (
  port: number,
  options: Partial<Omit<ConnectionPoolOptions, 'connect'>> = {},
): ReturnType<typeof poolOf> => poolOf(() => connect({ host: '127.0.0.1', port }), options);

function request(method: string, path: string, payload?: Buffer): Http1Request {
  return {
    method,
    head: requestHead({
      method,
      path,
      host: '127.0.0.1',
      headers: { Accept: 'application/json' },
      contentLength: payload?.length,
    }),
    payload,
  };
}
const get = (path: string): Http1Request => request('GET', path);

/** A deadline for exchanges that should settle well before it: a bound for a broken build. */
const later = (): number => Date.now() + 20_000;

const bodyOf = (response: Http1Response): string => response.body.toString('latin1');

/** Awaits `work`, checks it rejects with an Http1ExchangeError whose code matches, returns the code. */
async function rejectsWithCode(work: Promise<unknown>, code: string | RegExp): Promise<string> {
  let seen = '';
  await assert.rejects(work, (error: unknown) => {
    assert.ok(error instanceof Http1ExchangeError, `not an Http1ExchangeError: ${String(error)}`);
    if (typeof code === 'string') assert.equal(error.code, code, error.message);
    else assert.match(error.code, code, error.message);
    seen = error.code;
    return true;
  });
  return seen;
}

const first = <T>(list: readonly T[], what: string): T => list[0] ?? assert.fail(`no ${what}`);

afterEach(async () => {
  for (const pool of pools.splice(0)) pool.close();
  for (const socket of clientSockets) socket.destroy();
  clientSockets = [];
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

describe('ConnectionPool: keep-alive', () => {
  it('reuses one connection for two sequential exchanges; the server reads exactly the requests', async () => {
    const { server, port } = await tcpServer();
    const { pool, connects } = tcpPool(port);
    const payload = Buffer.from('{"plaintext":"aGVsbG8gd29ybGQ="}', 'utf8');
    const encrypt = request('POST', '/v1/transit/encrypt/key', payload);
    const health = get('/v1/sys/health?standbyok=true');

    const one = await pool.exchange(encrypt, later(), undefined);
    assert.equal(one.statusCode, 200);
    assert.equal(bodyOf(one), 'answer to /v1/transit/encrypt/key');
    assert.equal(one.reusable, true);
    const two = await pool.exchange(health, later(), undefined);
    assert.equal(bodyOf(two), 'answer to /v1/sys/health?standbyok=true');

    assert.equal(connects(), 1);
    assert.equal(server.connections.length, 1);
    assert.equal(pool.openConnections, 1);
    const connection = first(server.connections, 'connection');
    assert.deepEqual(
      connection.requests.map((received) => received.path),
      ['/v1/transit/encrypt/key', '/v1/sys/health?standbyok=true'],
    );
    assert.equal(
      connection.received.toString('latin1'),
      Buffer.concat([
        Buffer.from(encrypt.head, 'latin1'),
        payload,
        Buffer.from(health.head, 'latin1'),
      ]).toString('latin1'),
    );
  });

  it('drops an idle connection that receives unsolicited bytes; the next exchange gets its own answer', async () => {
    const { server, port } = await tcpServer();
    for (const [index, unsolicited] of [answer('not an answer to anything'), 'H', '\r\n'].entries()) {
      const { pool } = tcpPool(port);
      const earlier = server.connections.length;
      assert.equal(
        bodyOf(await pool.exchange(get(`/first-${index}`), later(), undefined)),
        `answer to /first-${index}`,
      );
      const stale = server.connections[earlier] ?? assert.fail('no connection');
      const staleClient = clientSockets.at(-1) ?? assert.fail('no client socket');
      stale.socket.write(unsolicited);
      await waitUntil(
        () => stale.closed && pool.openConnections === 0,
        'the pool drops the connection that spoke out of turn',
      );
      assert.equal(staleClient.destroyed, true);

      const next = await pool.exchange(get(`/second-${index}`), later(), undefined);
      assert.equal(next.statusCode, 200);
      assert.equal(bodyOf(next), `answer to /second-${index}`);
      assert.equal(server.connections.length, earlier + 2, 'the next exchange went on a new connection');
      assert.deepEqual(
        server.connections[earlier + 1]?.requests.map((received) => received.path),
        [`/second-${index}`],
      );
    }
  });

  it('resolves an answer followed by extra bytes, and does not reuse its connection', async () => {
    const { server, port } = await tcpServer();
    server.respond = (connection, received) => {
      const extra = received.path === '/glued' ? answer('a second answer nobody asked for') : '';
      connection.socket.write(`${answer(`answer to ${received.path}`)}${extra}`);
    };
    const { pool, connects } = tcpPool(port);
    const glued = await pool.exchange(get('/glued'), later(), undefined);
    assert.equal(glued.statusCode, 200);
    assert.equal(bodyOf(glued), 'answer to /glued');
    const dropped = first(server.connections, 'connection');
    await waitUntil(() => dropped.closed && pool.openConnections === 0, 'the connection is closed');

    const next = await pool.exchange(get('/next'), later(), undefined);
    assert.equal(bodyOf(next), 'answer to /next');
    assert.equal(connects(), 2);
    assert.deepEqual(
      server.connections.map((connection) => connection.requests.map((received) => received.path)),
      [['/glued'], ['/next']],
    );
  });

  it('does not reuse a connection after an answer with Connection: close or an HTTP/1.0 answer', async () => {
    const { server, port } = await tcpServer();
    server.respond = (connection, received) => {
      if (received.path === '/close') connection.socket.write(answer('closing', 'Connection: close\r\n'));
      else if (received.path === '/old')
        connection.socket.write('HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold');
      else connection.socket.write(answer(`answer to ${received.path}`));
    };
    const { pool, connects } = tcpPool(port);
    const closing = await pool.exchange(get('/close'), later(), undefined);
    assert.equal(bodyOf(closing), 'closing');
    assert.equal(closing.reusable, false);
    const old = await pool.exchange(get('/old'), later(), undefined);
    assert.equal(bodyOf(old), 'old');
    assert.equal(old.reusable, false);
    assert.equal(bodyOf(await pool.exchange(get('/after'), later(), undefined)), 'answer to /after');
    assert.equal(connects(), 3);
    await waitUntil(
      () => server.connections.filter((connection) => connection.closed).length === 2,
      'both connections closed',
    );
  });

  it('opens a new connection after the server closed the idle one', async () => {
    const { server, port } = await tcpServer();
    const { pool, connects } = tcpPool(port);
    assert.equal(bodyOf(await pool.exchange(get('/one'), later(), undefined)), 'answer to /one');
    const idle = first(server.connections, 'connection');
    idle.socket.end();
    await waitUntil(() => pool.openConnections === 0, 'the pool sees the idle connection close');
    assert.equal(first(clientSockets, 'client socket').destroyed, true);

    assert.equal(bodyOf(await pool.exchange(get('/two'), later(), undefined)), 'answer to /two');
    assert.equal(connects(), 2);
    assert.equal(server.connections.length, 2);
    assert.deepEqual(
      server.connections[1]?.requests.map((received) => received.path),
      ['/two'],
    );
  });

  it('reads a body that ends with the connection, then drops the connection', async () => {
    const { server, port } = await tcpServer();
    server.respond = (connection) => {
      connection.socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
    };
    const { pool } = tcpPool(port);
    const response = await pool.exchange(get('/x'), later(), undefined);
    assert.equal(bodyOf(response), 'until the end');
    assert.equal(response.reusable, false);
    await waitUntil(() => pool.openConnections === 0, 'the connection is gone');
  });
});

describe('ConnectionPool: failures', () => {
  it('rejects with ECONNRESET when the server closes without answering', async () => {
    const { server, port } = await tcpServer();
    server.respond = (connection) => connection.socket.end();
    const { pool } = tcpPool(port);
    await rejectsWithCode(pool.exchange(get('/x'), later(), undefined), 'ECONNRESET');
    server.respond = (connection) => connection.socket.resetAndDestroy();
    await rejectsWithCode(pool.exchange(get('/y'), later(), undefined), 'ECONNRESET');
    await waitUntil(() => pool.openConnections === 0, 'no connection left open');
    assert.equal(server.requests.length, 2);
  });

  it('rejects with an HPE_* code on a half answer, a bad answer or a too-long body, and drops the connection', async () => {
    const { server, port } = await tcpServer();
    const script: Record<string, string> = {
      '/half-body': 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc',
      '/half-head': 'HTTP/1.1 200 OK\r\nContent-Len',
      '/smuggle':
        'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      '/garbage': 'garbage\r\n\r\n',
      '/large': answer('x'.repeat(65)),
    };
    server.respond = (connection, received) => {
      const bytes = script[received.path] ?? '';
      // The cut answers end there; the others stay open, the client must drop them itself.
      if (received.path.startsWith('/half')) connection.socket.end(bytes);
      else connection.socket.write(bytes);
    };
    const { pool } = tcpPool(port, { maxBodyBytes: 64 });
    const codes: Record<string, string> = {};
    for (const path of Object.keys(script)) {
      codes[path] = await rejectsWithCode(pool.exchange(get(path), later(), undefined), /^(HPE_|ERR_HTTP1_)/);
    }
    assert.deepEqual(codes, {
      '/half-body': 'HPE_INVALID_EOF_STATE',
      '/half-head': 'HPE_INVALID_EOF_STATE',
      '/smuggle': 'HPE_UNEXPECTED_CONTENT_LENGTH',
      '/garbage': 'HPE_INVALID_CONSTANT',
      '/large': BODY_TOO_LARGE,
    });
    assert.equal(server.connections.length, 5, 'each exchange on its own connection');
    await waitUntil(
      () => server.connections.every((connection) => connection.closed) && pool.openConnections === 0,
      'every connection closed',
    );
  });

  it('rejects with ECONNREFUSED when nothing listens', async () => {
    const { server, port } = await tcpServer();
    await server.close();
    const { pool } = tcpPool(port);
    await rejectsWithCode(pool.exchange(get('/x'), later(), undefined), 'ECONNREFUSED');
    await waitUntil(() => pool.openConnections === 0, 'the failed connection is not counted');
  });

  it('rejects with ETIMEDOUT when the deadline passes, and closes the connection', async () => {
    const { server, port } = await tcpServer();
    server.respond = () => undefined;
    const { pool } = tcpPool(port);
    const started = Date.now();
    await rejectsWithCode(pool.exchange(get('/slow'), Date.now() + 100, undefined), TIMED_OUT);
    assert.equal(TIMED_OUT, 'ETIMEDOUT');
    assert.ok(Date.now() - started >= 90, 'not before the deadline');
    assert.deepEqual(
      server.requests.map((received) => received.path),
      ['/slow'],
    );
    const connection = first(server.connections, 'connection');
    await waitUntil(() => connection.closed, 'the server sees the connection closed');
    await waitUntil(() => pool.openConnections === 0, 'the pool counts no connection');
  });

  it('rejects with ABORT_ERR when the signal aborts mid-exchange, and destroys the connection', async () => {
    const { server, port } = await tcpServer();
    let arrived = (): void => undefined;
    const requestArrived = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    server.respond = () => arrived();
    const { pool } = tcpPool(port);
    const controller = new AbortController();
    const exchange = pool.exchange(get('/held'), later(), controller.signal);
    await requestArrived;
    controller.abort();
    await rejectsWithCode(exchange, ABORTED);
    assert.equal(ABORTED, 'ABORT_ERR');
    assert.equal(first(clientSockets, 'client socket').destroyed, true);
    const connection = first(server.connections, 'connection');
    await waitUntil(() => connection.closed && pool.openConnections === 0, 'the connection is closed');
  });

  it('rejects an already-aborted signal without connecting', async () => {
    const { server, port } = await tcpServer();
    const { pool, connects } = tcpPool(port);
    await rejectsWithCode(pool.exchange(get('/never'), later(), AbortSignal.abort()), ABORTED);
    assert.equal(connects(), 0);
    assert.equal(pool.openConnections, 0);
    // The pool still works after it.
    assert.equal(bodyOf(await pool.exchange(get('/then'), later(), undefined)), 'answer to /then');
    assert.deepEqual(
      server.requests.map((received) => received.path),
      ['/then'],
    );
  });
});

/** A server that holds each answer until the test releases it by the request's path. */
function holdAnswers(server: ScriptedServer): Map<string, () => void> {
  const held = new Map<string, () => void>();
  server.respond = (connection, received) => {
    held.set(received.path, () => connection.socket.write(answer(`answer to ${received.path}`)));
  };
  return held;
}

const release = (held: Map<string, () => void>, path: string): void => {
  const write = held.get(path) ?? assert.fail(`${path} is not held`);
  write();
};

/** The server connection that carried the request for `path`. */
const connectionOf = (server: ScriptedServer, path: string): ServerConnection | undefined =>
  server.connections.find((connection) => connection.requests.some((received) => received.path === path));

describe('ConnectionPool: limits', () => {
  it('opens at most maxSockets connections; a further exchange waits for one to be free', async () => {
    const { server, port } = await tcpServer();
    const held = holdAnswers(server);
    const { pool, connects } = tcpPool(port, { maxSockets: 2 });
    const one = pool.exchange(get('/one'), later(), undefined);
    const two = pool.exchange(get('/two'), later(), undefined);
    const three = pool.exchange(get('/three'), later(), undefined);
    assert.equal(connects(), 2, 'the third exchange did not connect');
    await waitUntil(() => held.size === 2, 'the first two requests arrive');
    assert.deepEqual([...held.keys()].sort(), ['/one', '/two']);
    assert.equal(pool.openConnections, 2);
    assert.equal(server.connections.length, 2);

    release(held, '/one');
    assert.equal(bodyOf(await one), 'answer to /one');
    await waitUntil(() => held.has('/three'), 'the third request arrives');
    assert.equal(connectionOf(server, '/three'), connectionOf(server, '/one'), 'on the freed connection');
    release(held, '/two');
    release(held, '/three');
    assert.equal(bodyOf(await two), 'answer to /two');
    assert.equal(bodyOf(await three), 'answer to /three');
    assert.equal(connects(), 2);
    assert.equal(server.connections.length, 2);
  });

  it('a queued exchange aborted while waiting rejects with ABORT_ERR and never reaches the server', async () => {
    const { server, port } = await tcpServer();
    const held = holdAnswers(server);
    const { pool, connects } = tcpPool(port, { maxSockets: 1 });
    const one = pool.exchange(get('/one'), later(), undefined);
    const controller = new AbortController();
    const queued = pool.exchange(get('/queued'), later(), controller.signal);
    const expiring = pool.exchange(get('/expiring'), Date.now() + 50, undefined);
    await waitUntil(() => held.has('/one'), 'the first request arrives');
    controller.abort();
    await rejectsWithCode(queued, ABORTED);
    await rejectsWithCode(expiring, TIMED_OUT);

    release(held, '/one');
    assert.equal(bodyOf(await one), 'answer to /one');
    const next = pool.exchange(get('/next'), later(), undefined);
    await waitUntil(() => held.has('/next'), 'the next request arrives');
    release(held, '/next');
    assert.equal(bodyOf(await next), 'answer to /next');
    assert.deepEqual(
      server.requests.map((received) => received.path),
      ['/one', '/next'],
    );
    assert.equal(connects(), 1);
  });

  it('keeps at most maxIdle idle connections', async () => {
    const { server, port } = await tcpServer();
    const held = holdAnswers(server);
    const { pool } = tcpPool(port, { maxSockets: 3, maxIdle: 1 });
    const exchanges = ['/one', '/two', '/three'].map((path) => pool.exchange(get(path), later(), undefined));
    await waitUntil(() => held.size === 3, 'the three requests arrive');
    for (const path of ['/one', '/two', '/three']) release(held, path);
    assert.deepEqual((await Promise.all(exchanges)).map(bodyOf), [
      'answer to /one',
      'answer to /two',
      'answer to /three',
    ]);
    await waitUntil(
      () => pool.openConnections === 1 && server.connections.filter((c) => c.closed).length === 2,
      'two connections closed, one kept idle',
    );
    assert.equal(server.connections.length, 3);
  });

  it('closes a connection left idle past idleTimeoutMs', async () => {
    const { server, port } = await tcpServer();
    const { pool } = tcpPool(port, { idleTimeoutMs: 50 });
    assert.equal(bodyOf(await pool.exchange(get('/one'), later(), undefined)), 'answer to /one');
    const connection = first(server.connections, 'connection');
    await waitUntil(() => connection.closed, 'the server sees the idle connection closed');
    await waitUntil(() => pool.openConnections === 0, 'the pool counts no connection');
    assert.equal(first(clientSockets, 'client socket').destroyed, true);
    // And the pool goes on with a new connection.
    assert.equal(bodyOf(await pool.exchange(get('/two'), later(), undefined)), 'answer to /two');
    assert.equal(server.connections.length, 2);
  });

  it('close() destroys idle connections now and a busy one after its answer', async () => {
    const { server, port } = await tcpServer();
    const held = holdAnswers(server);
    const { pool, connects } = tcpPool(port, { maxSockets: 2 });
    const one = pool.exchange(get('/one'), later(), undefined);
    const two = pool.exchange(get('/two'), later(), undefined);
    await waitUntil(() => held.size === 2, 'both requests arrive');
    release(held, '/one');
    assert.equal(bodyOf(await one), 'answer to /one');
    const idle = connectionOf(server, '/one') ?? assert.fail('no connection for /one');
    const busy = connectionOf(server, '/two') ?? assert.fail('no connection for /two');
    assert.equal(idle.closed, false);

    pool.close();
    await waitUntil(() => idle.closed && pool.openConnections === 1, 'the idle connection is closed');
    assert.equal(busy.closed, false, 'the busy connection is still open');
    release(held, '/two');
    assert.equal(bodyOf(await two), 'answer to /two');
    await waitUntil(() => busy.closed && pool.openConnections === 0, 'the busy connection closed after');

    // After close(), an exchange opens its own connection and closes it after.
    const afterClose = pool.exchange(get('/after'), later(), undefined);
    await waitUntil(() => held.has('/after'), 'the request after close() arrives');
    release(held, '/after');
    assert.equal(bodyOf(await afterClose), 'answer to /after');
    const own = connectionOf(server, '/after') ?? assert.fail('no connection for /after');
    await waitUntil(() => own.closed && pool.openConnections === 0, 'its connection is closed after');
    assert.equal(connects(), 3);
  });
});

describe('ConnectionPool: close() and connectors that throw', () => {
  it('close() with an exchange queued behind a busy connection: the queued one runs on a new connection', async () => {
    const { server, port } = await tcpServer();
    const held = holdAnswers(server);
    const { pool, connects } = tcpPool(port, { maxSockets: 1 });
    const one = pool.exchange(get('/one'), later(), undefined);
    const queued = pool.exchange(get('/queued'), later(), undefined);
    await waitUntil(() => held.has('/one'), 'the first request arrives');
    pool.close();
    release(held, '/one');
    assert.equal(bodyOf(await one), 'answer to /one');
    await waitUntil(() => held.has('/queued'), 'the queued request arrives');
    assert.notEqual(connectionOf(server, '/queued'), connectionOf(server, '/one'), 'on a new connection');
    release(held, '/queued');
    assert.equal(bodyOf(await queued), 'answer to /queued');
    assert.equal(connects(), 2);
  });

  it('a connector that throws for one queued exchange does not strand the next one', async () => {
    const { server, port } = await tcpServer();
    // The first answer closes its connection, so each queued exchange needs a connection of its own.
    server.respond = (connection, received) => {
      connection.socket.write(answer(`answer to ${received.path}`, 'Connection: close\r\n'));
    };
    let calls = 0;
    const { pool } = poolOf(
      () => {
        calls++;
        if (calls === 2) throw Object.assign(new Error('unusable settings'), { code: 'ERR_OSSL_TEST' });
        return connect({ host: '127.0.0.1', port });
      },
      { maxSockets: 1 },
    );
    const one = pool.exchange(get('/one'), later(), undefined);
    const two = pool.exchange(get('/two'), later(), undefined);
    const three = pool.exchange(get('/three'), Date.now() + 5_000, undefined);
    assert.equal(bodyOf(await one), 'answer to /one');
    await rejectsWithCode(two, 'ERR_OSSL_TEST');
    assert.equal(bodyOf(await three), 'answer to /three');
    assert.equal(calls, 3);
  });

  it('a connector that throws fails the exchange with its code, and leaves no timer behind', async () => {
    // tls.connect with a certificate and a key that do not match throws before any socket exists.
    const certificates = await createTestCertificates();
    const { pool } = poolOf(() =>
      tlsConnect({ host: '127.0.0.1', port: 1, cert: certificates.serverCert, key: certificates.clientKey }),
    );
    const code = await rejectsWithCode(pool.exchange(get('/x'), later(), undefined), /^ERR_OSSL|^ERR_/);
    assert.notEqual(code, 'ERR_CONNECT', "the connector's own code");
    assert.equal(pool.openConnections, 0);
  });
});

describe('ConnectionPool: process lifetime', () => {
  it('an idle pooled connection does not keep the process alive', async () => {
    const { server, port } = await tcpServer();
    const poolModule = new URL('../src/http1/connection-pool.js', import.meta.url);
    assert.ok(existsSync(poolModule), `${poolModule.href} is built`);
    const script = `
      import { connect } from 'node:net';
      const { ConnectionPool } = await import(process.env.POOL_MODULE);
      const pool = new ConnectionPool({
        connect: () => connect({ host: '127.0.0.1', port: Number(process.env.PORT) }),
        maxSockets: 4, maxIdle: 4, idleTimeoutMs: 600000, maxBodyBytes: 1048576,
      });
      const head = 'GET /child HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: keep-alive\\r\\n\\r\\n';
      const response = await pool.exchange({ method: 'GET', head, payload: undefined }, Date.now() + 600000, undefined);
      console.log(JSON.stringify({
        status: response.statusCode,
        body: response.body.toString(),
        reusable: response.reusable,
        open: pool.openConnections,
      }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, POOL_MODULE: poolModule.href, PORT: String(port) },
      // Generous: the child must end on its own; if the idle connection held it, it would be killed here.
      timeout: 10_000,
    });
    assert.deepEqual(JSON.parse(stdout.trim()), {
      status: 200,
      body: 'answer to /child',
      reusable: true,
      open: 1,
    });
    const connection = first(server.connections, 'connection');
    assert.deepEqual(
      connection.requests.map((received) => received.path),
      ['/child'],
    );
    // The server never closed it: the child exited with the connection idle in its pool.
    await waitUntil(() => connection.closed, 'the child process is gone with its connection');
  });
});

describe('ConnectionPool: TLS', () => {
  let certificates: TestCertificates;
  before(async () => {
    certificates = await createTestCertificates();
  });

  async function tlsServer(): Promise<{ server: ScriptedServer; port: number }> {
    const server = new ScriptedServer((listener) => {
      const tls = createTlsServer({ key: certificates.serverKey, cert: certificates.serverCert }, listener);
      tls.on('tlsClientError', () => undefined);
      return tls;
    });
    servers.push(server);
    return { server, port: await server.listen() };
  }

  it('works over TLS when the CA is trusted, on one connection', async () => {
    const { server, port } = await tlsServer();
    const { pool, connects } = poolOf(() => tlsConnect({ host: '127.0.0.1', port, ca: certificates.ca }));
    const payload = Buffer.from('{"token":"x"}');
    const login = request('POST', '/v1/auth/cert/login', payload);
    assert.equal(bodyOf(await pool.exchange(login, later(), undefined)), 'answer to /v1/auth/cert/login');
    assert.equal(
      bodyOf(await pool.exchange(get('/v1/sys/health'), later(), undefined)),
      'answer to /v1/sys/health',
    );
    assert.equal(connects(), 1);
    assert.equal(server.connections.length, 1);
    assert.equal(
      first(server.connections, 'connection').received.toString('latin1'),
      `${login.head}${payload.toString('latin1')}${get('/v1/sys/health').head}`,
    );
  });

  it('rejects with a TLS verification code when the CA is not trusted, and sends nothing', async () => {
    const { server, port } = await tlsServer();
    const { pool } = poolOf(() => tlsConnect({ host: '127.0.0.1', port }));
    const code = await rejectsWithCode(
      pool.exchange(get('/secret'), later(), undefined),
      /CERT|SIGNATURE|VERIFY/,
    );
    assert.equal(code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    await waitUntil(() => pool.openConnections === 0, 'the connection is dropped');
    assert.equal(server.requests.length, 0, 'no request reached the untrusted server');
  });

  it('rejects with ERR_TLS_CERT_ALTNAME_INVALID when the name does not match', async () => {
    const { server, port } = await tlsServer();
    const { pool } = poolOf(() =>
      tlsConnect({ host: '127.0.0.1', port, ca: certificates.ca, servername: 'vault.example.com' }),
    );
    await rejectsWithCode(pool.exchange(get('/secret'), later(), undefined), 'ERR_TLS_CERT_ALTNAME_INVALID');
    await waitUntil(() => pool.openConnections === 0, 'the connection is dropped');
    assert.equal(server.requests.length, 0, 'no request reached the server');
  });
});

describe('ConnectionPool: unix socket', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trousseau-http1-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('works on a unix socket the same, reusing its connection', async () => {
    const server = new ScriptedServer();
    servers.push(server);
    const path = join(dir, 'agent.sock');
    await server.listenOn(path);
    const { pool, connects } = poolOf(() => connect({ path }));
    const payload = Buffer.from('{"plaintext":"AA=="}');
    const encrypt = request('PUT', '/v1/transit/encrypt/k', payload);
    assert.equal(bodyOf(await pool.exchange(encrypt, later(), undefined)), 'answer to /v1/transit/encrypt/k');
    assert.equal(
      bodyOf(await pool.exchange(get('/v1/sys/health'), later(), undefined)),
      'answer to /v1/sys/health',
    );
    assert.equal(connects(), 1);
    assert.equal(pool.openConnections, 1);
    assert.equal(
      first(server.connections, 'connection').received.toString('latin1'),
      `${encrypt.head}${payload.toString('latin1')}${get('/v1/sys/health').head}`,
    );
    first(server.connections, 'connection').socket.end();
    await waitUntil(() => pool.openConnections === 0, 'the pool sees the close');
    assert.equal(bodyOf(await pool.exchange(get('/again'), later(), undefined)), 'answer to /again');
    assert.equal(server.connections.length, 2);
  });
});
