import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ClientFrameRewriter } from './client-frame-rewriter.js';
import type { Http2ProtocolViolation } from './protocol-violation.js';
import { RewritingConnection } from './rewriting-connection.js';

/**
 * The server's connection preface, sent as soon as a client connects: a SETTINGS frame with the stream cap
 * the gRPC server will advertise too, so a client knows it from the start. grpc-go (kube-apiserver's client) sends
 * no call before the server's preface has arrived, and the triage needs a call's header block to decide.
 */
function serverPreface(maxConcurrentStreams: number): Buffer {
  const frame = Buffer.from([0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x3, 0, 0, 0, 0]);
  frame.writeUInt32BE(maxConcurrentStreams, 11);
  return frame;
}
/**
 * The most the triage holds for the gRPC server before deciding: a header block (up to 128 KiB) with room to spare.
 * A client that sends more first (a flood of pings, say) is served through the rewriting layer, which
 * applies backpressure.
 */
const MAX_HELD_BYTES = 256 * 1024;

/**
 * How a connection reaches the gRPC server. `direct`: the socket itself, every byte read natively by Node's HTTP/2
 * layer, as a bare grpc-js server would. `rewritten`: through a `RewritingConnection`, for a client that
 * sends an authority nghttp2 refuses (kube-apiserver before 1.32).
 */
export type ConnectionPath = 'direct' | 'rewritten';

interface ConnectionTriageHooks {
  /** The client broke HTTP/2 or HPACK; the connection is being closed. */
  readonly onViolation: (violation: Http2ProtocolViolation) => void;
  /** The client sent an authority that nghttp2 refuses; it was replaced (first time on this connection). */
  readonly onAuthorityReplaced: (original: string) => void;
  /** The client did not send the HTTP/2 preface in time; the connection is being closed. */
  readonly onHandshakeTimeout: () => void;
  /** The connection is decided: the gRPC server is to serve `stream` (the socket itself, or its rewriting). */
  readonly onDecided: (path: ConnectionPath, stream: Duplex) => void;
}

interface ConnectionTriageOptions {
  /** For the client's preface, and then for its acknowledgement of the server's preface. */
  readonly handshakeTimeoutMs: number;
  /** From the client's preface to its first call. */
  readonly idleTimeoutMs: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS, as the gRPC server advertises it. */
  readonly maxConcurrentStreams: number;
}

type Phase = 'preface' | 'first call' | 'settings ack' | 'decided';

/**
 * Decides, from a connection's first call, how it reaches the gRPC server. The server sends its preface (an empty
 * SETTINGS frame) at once and reads the client's bytes through a `ClientFrameRewriter` that removes the
 * acknowledgement of that SETTINGS frame (the gRPC server never sent it) and passes header blocks unchanged until
 * one needs its authority replaced. Once the first header block and that acknowledgement have arrived, on
 * a frame boundary, with every authority valid, the socket is handed to the gRPC server with what was read put
 * back in front of it (`direct`): nghttp2 reads the very bytes the client sent, so its HPACK table is the
 * client's. A block with an authority to replace, a client that holds back the acknowledgement past the
 * handshake timeout or its first call past the idle timeout (the gRPC server's idle handling then closes it with
 * a GOAWAY), or more than `MAX_HELD_BYTES` held, and the connection is served `rewritten`, by the same
 * rewriter from where it stands.
 *
 * The decision is made once: a client that sends a valid authority first and a socket path later on the
 * same connection has those later calls refused by nghttp2. No known client does (grpc-go and grpc-js fix
 * the authority per connection), and kube-apiserver sends one authority for its whole life.
 */
export class ConnectionTriage {
  readonly #socket: Socket;
  readonly #hooks: ConnectionTriageHooks;
  readonly #options: ConnectionTriageOptions;
  readonly #rewriter: ClientFrameRewriter;
  readonly #held: Buffer[] = [];
  #heldBytes = 0;
  #phase: Phase = 'preface';
  #timer: NodeJS.Timeout | undefined;
  #rewriting: RewritingConnection | undefined;
  #lastActivity = performance.now();
  #bytesReadSeen = 0;
  readonly #onData = (chunk: Buffer): void => this.#read(chunk);
  readonly #onClose = (): void => clearTimeout(this.#timer);
  readonly #onError = (): void => {};

  constructor(socket: Socket, hooks: ConnectionTriageHooks, options: ConnectionTriageOptions) {
    this.#socket = socket;
    this.#hooks = hooks;
    this.#options = options;
    let reported = false;
    this.#rewriter = new ClientFrameRewriter({
      dropSettingsAck: true,
      onAuthorityReplaced: (original) => {
        if (reported) return;
        reported = true;
        hooks.onAuthorityReplaced(original);
      },
    });
    this.#arm(options.handshakeTimeoutMs, () => {
      hooks.onHandshakeTimeout();
      socket.destroy();
    });
    socket.on('data', this.#onData);
    socket.on('close', this.#onClose);
    // 'close' follows every socket error.
    socket.on('error', this.#onError);
    socket.write(serverPreface(options.maxConcurrentStreams));
  }

  /** Whether the gRPC server has the connection. */
  get decided(): boolean {
    return this.#phase === 'decided';
  }

  /** Whether the client has completed the HTTP/2 handshake (sent the connection preface). */
  get handshakeComplete(): boolean {
    return this.#rewriter.prefaceReceived;
  }

  /**
   * When the client was last seen sending (`performance.now()` milliseconds). A direct connection's bytes
   * never pass through JavaScript: there it is when this was last asked and the socket's byte count had
   * moved since the time before.
   */
  get lastActivity(): number {
    if (this.#rewriting !== undefined) return this.#rewriting.lastActivity;
    if (this.#phase === 'decided' && this.#socket.bytesRead !== this.#bytesReadSeen) {
      this.#bytesReadSeen = this.#socket.bytesRead;
      this.#lastActivity = performance.now();
    }
    return this.#lastActivity;
  }

  #read(chunk: Buffer): void {
    this.#lastActivity = performance.now();
    let parts: Buffer[];
    try {
      parts = this.#rewriter.push(chunk);
    } catch (error) {
      this.#stop();
      this.#hooks.onViolation(error as Http2ProtocolViolation);
      this.#socket.destroy();
      return;
    }
    for (const part of parts) {
      this.#held.push(part);
      this.#heldBytes += part.length;
    }
    const rewriter = this.#rewriter;
    if (this.#phase === 'preface' && rewriter.prefaceReceived) {
      this.#phase = 'first call';
      this.#arm(this.#options.idleTimeoutMs, () => this.#serve('rewritten'));
    }
    if (this.#phase === 'first call' && rewriter.headerBlocks > 0) {
      this.#phase = 'settings ack';
      this.#arm(this.#options.handshakeTimeoutMs, () => this.#serve('rewritten'));
    }
    if (rewriter.reencoding || this.#heldBytes > MAX_HELD_BYTES) this.#serve('rewritten');
    else if (this.#phase === 'settings ack' && !rewriter.settingsAckPending && rewriter.atFrameBoundary) {
      this.#serve('direct');
    }
  }

  #arm(ms: number, then: () => void): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(then, ms);
    this.#timer.unref();
  }

  #stop(): void {
    clearTimeout(this.#timer);
    this.#phase = 'decided';
    this.#socket.off('data', this.#onData);
    this.#socket.off('close', this.#onClose);
    this.#socket.off('error', this.#onError);
  }

  #serve(path: ConnectionPath): void {
    this.#stop();
    const held = this.#held.length === 1 ? (this.#held[0] as Buffer) : Buffer.concat(this.#held);
    this.#held.length = 0;
    if (path === 'direct') {
      this.#socket.pause();
      if (held.length > 0) this.#socket.unshift(held);
      this.#bytesReadSeen = this.#socket.bytesRead;
      this.#hooks.onDecided('direct', this.#socket);
    } else {
      this.#rewriting = new RewritingConnection(this.#socket, this.#rewriter, held, this.#hooks.onViolation);
      this.#hooks.onDecided('rewritten', this.#rewriting);
    }
  }
}
