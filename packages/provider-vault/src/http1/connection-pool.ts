// Keep-alive HTTP/1.1 connections to one origin, one request at a time on each: no pipelining, so an
// answer can only ever belong to the request written on its connection. A connection goes back to the
// pool only after a whole answer that leaves nothing behind it; an idle connection that reads a byte, ends
// or errs is dropped, and one left idle past the idle timeout is closed. Idle connections do not keep the
// process alive. This is what node:http's Agent, ClientRequest and IncomingMessage did for the Vault
// transport, without their streams: at one request per call it costs about half the CPU per request, and
// it is most of the latency a lone call adds (docs/benchmarks.md, "Vault, a lone call").
import type { Socket } from 'node:net';
import { CodedError } from './coded-error.js';
import { Http1ProtocolError, Http1ResponseParser, type Http1Response } from './response-parser.js';

/** Why an exchange failed: `code` is a node network or TLS code, an `HPE_*` parser code, or one of these. */
export class Http1ExchangeError extends CodedError {
  override readonly name = 'Http1ExchangeError';
}

/** The exchange's deadline passed. */
export const TIMED_OUT = 'ETIMEDOUT';
/** The caller's signal aborted. */
export const ABORTED = 'ABORT_ERR';

export interface ConnectionPoolOptions {
  /** Opens a new connection (TCP, TLS or a unix socket); it may still be connecting when returned. */
  readonly connect: () => Socket;
  /** Connections open at once, busy or idle; further requests wait for one. */
  readonly maxSockets: number;
  /** Idle connections kept; a connection freed past this is closed. */
  readonly maxIdle: number;
  /** An idle connection is closed after this long. */
  readonly idleTimeoutMs: number;
  /** A longer answer body fails the request (and its connection). */
  readonly maxBodyBytes: number;
}

/** One request, already serialized. */
export interface Http1Request {
  readonly method: string;
  /** Request line and header fields, each ending in CRLF, and the blank line: ASCII/latin1 text. */
  readonly head: string;
  readonly payload: Buffer | undefined;
}

interface Waiter {
  readonly start: (socket: Socket) => void;
  readonly fail: (error: Http1ExchangeError) => void;
}

/** Listeners an idle connection carries; removed when it is taken for a request. */
const IDLE = Symbol('idle listeners');
interface PooledSocket extends Socket {
  [IDLE]?: () => void;
}

export class ConnectionPool {
  readonly #options: ConnectionPoolOptions;
  /** Idle connections, most recently used last (taken first: the warmest, least likely to be stale). */
  readonly #idle: PooledSocket[] = [];
  readonly #waiting: Waiter[] = [];
  #open = 0;
  #closed = false;

  constructor(options: ConnectionPoolOptions) {
    this.#options = options;
  }

  /** Connections open now, busy or idle. */
  get openConnections(): number {
    return this.#open;
  }

  /**
   * Sends `request` on a connection of the pool and reads its answer. Rejects with an
   * {@link Http1ExchangeError} when the connection fails, the answer is malformed, `deadline` (a
   * `Date.now()` time) passes or `signal` aborts; in every such case the connection is destroyed, never
   * reused.
   */
  exchange(request: Http1Request, deadline: number, signal: AbortSignal | undefined): Promise<Http1Response> {
    return new Promise<Http1Response>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(new Http1ExchangeError(ABORTED, 'request aborted'));
        return;
      }
      let socket: PooledSocket | undefined;
      let settled = false;
      const parser = new Http1ResponseParser(request.method, this.#options.maxBodyBytes);
      const waiter: Waiter = { start: (taken) => start(taken), fail: (error) => fail(error) };
      const settle = (outcome: Http1Response | Http1ExchangeError, keep: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (socket === undefined) {
          const index = this.#waiting.indexOf(waiter);
          if (index >= 0) this.#waiting.splice(index, 1);
        } else {
          socket.removeListener('data', onData);
          socket.removeListener('error', onError);
          socket.removeListener('close', onClose);
          socket.removeListener('end', onEnd);
          if (keep) this.#release(socket);
          else this.#discard(socket);
        }
        if (outcome instanceof Http1ExchangeError) reject(outcome);
        else resolve(outcome);
      };
      const fail = (error: Http1ExchangeError): void => settle(error, false);
      const onAbort = (): void => fail(new Http1ExchangeError(ABORTED, 'request aborted'));
      const timer = setTimeout(
        () => fail(new Http1ExchangeError(TIMED_OUT, 'no answer in time')),
        Math.max(1, deadline - Date.now()),
      );
      const read = (step: () => Http1Response | undefined): void => {
        let response: Http1Response | undefined;
        try {
          response = step();
        } catch (error) {
          const code = error instanceof Http1ProtocolError ? error.code : 'HPE_INTERNAL';
          fail(new Http1ExchangeError(code, `malformed answer (${code})`));
          return;
        }
        if (response !== undefined) settle(response, response.reusable);
      };
      const onData = (chunk: Buffer): void => read(() => parser.push(chunk));
      const onEnd = (): void => {
        // An answer read until the close is whole now; any other answer was cut short.
        if (parser.started) read(() => parser.end());
        else fail(new Http1ExchangeError('ECONNRESET', 'the connection closed before an answer'));
      };
      const onClose = (): void => {
        if (!settled) onEnd();
      };
      const onError = (error: Error): void => {
        const code = codeOf(error, 'ECONNRESET');
        fail(new Http1ExchangeError(code, `connection failed (${code})`));
      };
      const start = (taken: PooledSocket): void => {
        socket = taken;
        taken.on('data', onData);
        taken.on('error', onError);
        taken.on('end', onEnd);
        taken.on('close', onClose);
        if (request.payload === undefined) taken.write(request.head, 'latin1');
        else taken.write(Buffer.concat([Buffer.from(request.head, 'latin1'), request.payload]));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const idle = this.#takeIdle();
      if (idle !== undefined) start(idle);
      else if (this.#open < this.#options.maxSockets) this.#startOnNewConnection(waiter);
      else this.#waiting.push(waiter);
    });
  }

  /**
   * Closes the idle connections now, and each busy one when its answer is read; requests after this
   * open a connection each and close it after. For a pool whose settings were replaced, or on shutdown.
   */
  close(): void {
    this.#closed = true;
    for (const socket of this.#idle.splice(0)) this.#discard(socket);
  }

  /** Opens a connection for `waiter`; a connector that throws (TLS settings it cannot use) fails it. */
  #startOnNewConnection(waiter: Waiter): void {
    let socket: PooledSocket;
    try {
      socket = this.#connect();
    } catch (error) {
      const code = codeOf(error, 'ERR_CONNECT');
      waiter.fail(new Http1ExchangeError(code, `connection could not be opened (${code})`));
      return;
    }
    waiter.start(socket);
  }

  #connect(): PooledSocket {
    const socket: PooledSocket = this.#options.connect();
    this.#open++;
    socket.once('close', () => {
      this.#open--;
      this.#wakeWaiter();
    });
    return socket;
  }

  #takeIdle(): PooledSocket | undefined {
    for (;;) {
      const socket = this.#idle.pop();
      if (socket === undefined) return undefined;
      socket[IDLE]?.();
      if (!socket.destroyed && socket.readable && socket.writable) {
        socket.ref();
        socket.setTimeout(0);
        return socket;
      }
      this.#discard(socket);
    }
  }

  #release(socket: PooledSocket): void {
    if (this.#closed || socket.destroyed) {
      // A request waiting for a connection gets a new one when this one's close is seen.
      this.#discard(socket);
      return;
    }
    const waiter = this.#waiting.shift();
    if (waiter !== undefined) {
      waiter.start(socket);
      return;
    }
    if (this.#idle.length >= this.#options.maxIdle) {
      this.#discard(socket);
      return;
    }
    // Idle: any byte, end or error now is not an answer to anything, so the connection is dropped.
    const drop = (): void => {
      const index = this.#idle.indexOf(socket);
      if (index >= 0) this.#idle.splice(index, 1);
      this.#discard(socket);
    };
    socket.on('data', drop);
    socket.on('end', drop);
    socket.on('error', drop);
    socket.on('timeout', drop);
    socket[IDLE] = () => {
      socket.removeListener('data', drop);
      socket.removeListener('end', drop);
      socket.removeListener('error', drop);
      socket.removeListener('timeout', drop);
      socket[IDLE] = undefined;
    };
    socket.setTimeout(this.#options.idleTimeoutMs);
    socket.unref();
    this.#idle.push(socket);
  }

  #discard(socket: PooledSocket): void {
    socket[IDLE]?.();
    // A listener for errors after this point: a destroyed socket may still report one.
    socket.on('error', ignore);
    socket.destroy();
  }

  /** A connection closed: a request waiting for one may open its own now. */
  #wakeWaiter(): void {
    // A loop: a connector that throws fails its waiter without opening anything, and the next one may
    // still have its connection.
    while (this.#open < this.#options.maxSockets) {
      const waiter = this.#waiting.shift();
      if (waiter === undefined) return;
      this.#startOnNewConnection(waiter);
    }
  }
}

/** A node error's `code` (a network, TLS or OpenSSL code), or `fallback` when it has none. */
function codeOf(error: unknown, fallback: string): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code !== '' ? code : fallback;
}

function ignore(): void {
  // Nothing to do: the socket is being destroyed and its request already settled.
}
