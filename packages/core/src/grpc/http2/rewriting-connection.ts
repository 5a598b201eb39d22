import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { ClientFrameRewriter } from './client-frame-rewriter.js';
import type { Http2ProtocolViolation } from './protocol-violation.js';

/** The largest batch of the gRPC server's writes joined into one buffer for the socket (see `_writev`). */
const JOINED_WRITE_BYTES = 64 * 1024;

/**
 * The stream the gRPC server serves instead of the accepted socket, for a connection `ConnectionTriage` found in
 * need of rewriting: what the gRPC server writes goes to the client as it is; what the client writes goes through
 * the connection's `ClientFrameRewriter` first. Flow control follows both ways (a full read buffer on
 * the server's side pauses the socket; a full socket holds the server's writes), and either side closing closes the other.
 */
export class RewritingConnection extends Duplex {
  readonly #socket: Socket;
  readonly #rewriter: ClientFrameRewriter;
  readonly #onViolation: (violation: Http2ProtocolViolation) => void;
  #lastActivity = performance.now();

  /**
   * Takes over `socket` from the triage: `rewriter` has read everything the client sent so far, and
   * `rewritten` is what it handed out, which the gRPC server reads first. `onViolation` hears of a client that
   * broke HTTP/2 or HPACK; the connection is then closed.
   */
  constructor(
    socket: Socket,
    rewriter: ClientFrameRewriter,
    rewritten: Buffer,
    onViolation: (violation: Http2ProtocolViolation) => void,
  ) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.#rewriter = rewriter;
    this.#onViolation = onViolation;
    if (rewritten.length > 0) this.push(rewritten);
    socket.on('data', (chunk: Buffer) => this.#fromClient(chunk));
    socket.on('end', () => this.push(null));
    // 'close' follows every socket error; the gRPC server hears of it as the stream ending.
    socket.on('error', () => {});
    socket.on('close', () => this.destroy());
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
      this.#onViolation(error as Http2ProtocolViolation);
      this.#socket.destroy();
      return;
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

  /**
   * What the gRPC server wrote while corked: nghttp2 hands over each frame header and payload as a chunk of its
   * own, so a batch of answers is a few small chunks per call. Up to `JOINED_WRITE_BYTES` they go to the
   * socket as one buffer: a copy of a few KiB costs less than taking each chunk through the socket's own
   * write queue. Larger batches are written chunk by chunk, corked.
   */
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    let length = 0;
    for (const { chunk } of chunks) length += chunk.length;
    let flushed = true;
    if (length <= JOINED_WRITE_BYTES) {
      const joined = Buffer.allocUnsafe(length);
      let at = 0;
      for (const { chunk } of chunks) at += chunk.copy(joined, at);
      flushed = this.#socket.write(joined);
    } else {
      this.#socket.cork();
      for (const { chunk } of chunks) flushed = this.#socket.write(chunk);
      this.#socket.uncork();
    }
    if (flushed) callback();
    else this.#socket.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy();
    callback(error);
  }
}
