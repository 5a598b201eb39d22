import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { ClientFrameRewriter } from './client-frame-rewriter.js';
import type { Http2ProtocolViolation } from './protocol-violation.js';

interface RewritingConnectionHooks {
  /** The client broke HTTP/2 or HPACK; the connection is being closed. */
  readonly onViolation: (violation: Http2ProtocolViolation) => void;
  /** The client sent an authority that nghttp2 refuses; it was replaced (first time on this connection). */
  readonly onAuthorityReplaced: (original: string) => void;
  /** The client did not send the HTTP/2 preface in time; the connection is being closed. */
  readonly onHandshakeTimeout: () => void;
}

/**
 * The stream grpc-js serves instead of the accepted socket: what grpc-js writes goes to the client as it
 * is; what the client writes goes through a `ClientFrameRewriter` first. Flow control follows both ways
 * (a full grpc-js read buffer pauses the socket; a full socket holds grpc-js's writes), and either side
 * closing closes the other.
 */
export class RewritingConnection extends Duplex {
  readonly #socket: Socket;
  readonly #rewriter: ClientFrameRewriter;
  readonly #hooks: RewritingConnectionHooks;
  readonly #handshakeTimer: NodeJS.Timeout;
  #lastActivity = performance.now();
  #handshakeDone = false;

  constructor(socket: Socket, hooks: RewritingConnectionHooks, options: { handshakeTimeoutMs: number }) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.#hooks = hooks;
    this.#handshakeTimer = setTimeout(() => {
      hooks.onHandshakeTimeout();
      socket.destroy();
    }, options.handshakeTimeoutMs);
    this.#handshakeTimer.unref();
    let reported = false;
    this.#rewriter = new ClientFrameRewriter((original) => {
      if (reported) return;
      reported = true;
      hooks.onAuthorityReplaced(original);
    });
    socket.on('data', (chunk: Buffer) => this.#fromClient(chunk));
    socket.on('end', () => this.push(null));
    // 'close' follows every socket error; grpc-js hears of it as the stream ending.
    socket.on('error', () => {});
    socket.on('close', () => this.destroy());
  }

  /** Whether the client has completed the HTTP/2 handshake (sent the connection preface). */
  get handshakeComplete(): boolean {
    return this.#rewriter.prefaceReceived;
  }

  /** When the client last sent anything (`performance.now()` milliseconds). */
  get lastActivity(): number {
    return this.#lastActivity;
  }

  #fromClient(chunk: Buffer): void {
    this.#lastActivity = performance.now();
    let parts: Buffer[];
    try {
      parts = this.#rewriter.push(chunk);
    } catch (error) {
      this.#hooks.onViolation(error as Http2ProtocolViolation);
      this.#socket.destroy();
      return;
    }
    if (!this.#handshakeDone && this.#rewriter.prefaceReceived) {
      this.#handshakeDone = true;
      clearTimeout(this.#handshakeTimer);
    }
    if (parts.length === 0) return;
    const data = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    if (!this.push(data)) this.#socket.pause();
  }

  override _read(): void {
    if (this.#socket.isPaused()) this.#socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#socket.write(chunk)) callback();
    else this.#socket.once('drain', () => callback());
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    this.#socket.cork();
    let flushed = true;
    for (const { chunk } of chunks) flushed = this.#socket.write(chunk);
    this.#socket.uncork();
    if (flushed) callback();
    else this.#socket.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#handshakeTimer);
    this.#socket.destroy();
    callback(error);
  }
}
