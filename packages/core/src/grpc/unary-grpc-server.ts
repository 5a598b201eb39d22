import {
  constants as http2Constants,
  createServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Duplex } from 'node:stream';
import { frameMessage } from './grpc-message-frame.js';
import { deadlineOf } from './grpc-timeout.js';
import { protocolFailure, type GrpcFailure } from './grpc-status.js';
import { UnaryRequestReader } from './unary-request-reader.js';

/**
 * The response headers: what gRPC requires and no more. A grpc-js server adds `grpc-encoding: identity`
 * and `grpc-accept-encoding`, which no caller needs (an answer without `grpc-encoding` is not compressed,
 * and a grpc-go server, k8s.io/kms's, sends neither); each header is work on every call.
 */
const RESPONSE_HEADERS: OutgoingHttpHeaders = {
  [http2Constants.HTTP2_HEADER_STATUS]: 200,
  [http2Constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto',
};
const OK_TRAILERS: OutgoingHttpHeaders = { 'grpc-status': '0', 'grpc-message': 'OK' };
const UNSUPPORTED_MEDIA_TYPE: OutgoingHttpHeaders = {
  [http2Constants.HTTP2_HEADER_STATUS]: http2Constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE,
};
const RESPOND_WITH_TRAILERS = { waitForTrailers: true } as const;
const END_STREAM = { endStream: true } as const;

/** One call as its handler sees it. */
export interface UnaryCall {
  /** Epoch ms by which the caller wants the answer (its `grpc-timeout`); `Infinity` for none. */
  readonly deadline: number;
  /**
   * Called once when the call ends before it was answered: the caller went away (RST_STREAM, a closed
   * connection) or the server stopped it.
   */
  onCancel: (() => void) | undefined;
  /** Answers the call: a failure, or the encoded response message. Only the first answer counts. */
  respond(failure: GrpcFailure | null, message?: Buffer): void;
}

/** A unary method: given the request message's bytes, it answers through the call. */
export type ServedMethod = (message: Buffer, call: UnaryCall) => void;

interface UnaryGrpcServerOptions {
  /** The unary methods served, by path (`/package.Service/Method`). */
  readonly methods: ReadonlyMap<string, ServedMethod>;
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised to every client. */
  readonly maxConcurrentStreams: number;
  /** A connection with no call in flight for this long is closed with GOAWAY. */
  readonly idleTimeoutMs: number;
  /** The largest request message accepted (grpc-js's `grpc.max_receive_message_length`). */
  readonly maxReceiveMessageBytes: number;
}

/** A connection's calls in flight, and the timer that closes it once it has been idle too long. */
interface SessionState {
  active: number;
  readonly idleTimer: NodeJS.Timeout;
}

function grpcMessage(details: string): string {
  // As grpc-js sends it (and grpc-go reads it): percent-encoded, so any text fits in a header. Through
  // UTF-8 and back first: a lone surrogate (half of a character cut off) becomes U+FFFD instead of making
  // encodeURI throw, which would leave the call unanswered.
  return encodeURI(Buffer.from(details, 'utf8').toString('utf8'));
}

/** One call on its HTTP/2 stream: answers once, and tells the handler if the caller goes away first. */
class StreamCall implements UnaryCall {
  readonly deadline: number;
  onCancel: (() => void) | undefined = undefined;
  readonly #stream: ServerHttp2Stream;
  #answered = false;
  /** Answers DEADLINE_EXCEEDED if the call is still waiting for its request when its deadline passes. */
  #deadlineTimer: NodeJS.Timeout | undefined;

  constructor(stream: ServerHttp2Stream, deadline: number) {
    this.#stream = stream;
    this.deadline = deadline;
    if (Number.isFinite(deadline)) {
      this.#deadlineTimer = setTimeout(expireWaiting, Math.max(0, deadline - Date.now()), this);
    }
  }

  /** Whether the call has been answered, or cancelled. */
  get settled(): boolean {
    return this.#answered;
  }

  /** The method runs: from here on its request context keeps the deadline. */
  started(): void {
    clearTimeout(this.#deadlineTimer);
  }

  respond(failure: GrpcFailure | null, message?: Buffer): void {
    if (this.#answered) return;
    this.#answered = true;
    clearTimeout(this.#deadlineTimer);
    this.onCancel = undefined;
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) return;
    if (failure !== null || message === undefined) {
      respondWithFailure(stream, failure ?? protocolFailure('INTERNAL', 'no response'));
      return;
    }
    const frame = frameMessage(message);
    try {
      stream.respond(RESPONSE_HEADERS, RESPOND_WITH_TRAILERS);
      stream.on('wantTrailers', sendOkTrailers);
      stream.end(frame);
    } catch {
      closeBroken(stream);
    }
  }

  /** The stream closed: a call not answered by then was cancelled. */
  closed(): void {
    clearTimeout(this.#deadlineTimer);
    if (this.#answered) return;
    this.#answered = true;
    const onCancel = this.onCancel;
    this.onCancel = undefined;
    onCancel?.();
  }
}

/** The trailers of a call answered with its message ('wantTrailers' of its stream: `this` is the stream). */
function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

function expireWaiting(call: StreamCall): void {
  // grpc-js's own answer, when a call's deadline passes before its method has run.
  call.respond(protocolFailure('DEADLINE_EXCEEDED', 'Deadline exceeded'));
}

/**
 * A stream the answer could not be written to: closed already (nothing to do), or refused by Node (reset
 * with INTERNAL_ERROR, which a gRPC client reports as INTERNAL): never left open without an answer.
 */
function closeBroken(stream: ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.closed) stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
}

function ignore(): void {
  // An event whose consequence arrives by another one ('close').
}

/** Runs a method on the call's message, or answers the call with why there is none. */
function run(method: ServedMethod, message: Buffer | GrpcFailure, call: StreamCall): void {
  // Cancelled while its message was being read or inflated: there is no one to do the work for.
  if (call.settled) return;
  if (!Buffer.isBuffer(message)) {
    call.respond(message);
    return;
  }
  call.started();
  try {
    method(message, call);
  } catch {
    // As grpc-js answers a handler that throws: the call fails, the server goes on.
    call.respond(protocolFailure('UNKNOWN', 'Unknown error'));
  }
}

/** A failure as a trailers-only response: the status in the one header block that ends the stream. */
function respondWithFailure(stream: ServerHttp2Stream, failure: GrpcFailure): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  try {
    stream.respond(
      {
        ...RESPONSE_HEADERS,
        'grpc-status': String(failure.code),
        'grpc-message': grpcMessage(failure.details),
        ...failure.trailers,
      },
      END_STREAM,
    );
  } catch {
    closeBroken(stream);
  }
}

/**
 * Unary gRPC served by node:http2 directly: each call's one request message read by
 * {@link UnaryRequestReader}, its method run, its answer framed and sent with the status in the trailers.
 * It answers with the statuses and messages a grpc-js server answers with, at a fraction of its cost per
 * call, and owns only what unary calls need: no streaming, no interceptors, no channelz.
 * Connections come from outside ({@link serve}): the KMS front-end accepts the socket itself.
 */
export class UnaryGrpcServer {
  readonly #http2: Http2Server;
  readonly #methods: ReadonlyMap<string, ServedMethod>;
  readonly #sessions = new Map<Http2Session, SessionState>();
  readonly #idleTimeoutMs: number;
  readonly #maxReceiveMessageBytes: number;

  constructor(options: UnaryGrpcServerOptions) {
    this.#methods = options.methods;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#maxReceiveMessageBytes = options.maxReceiveMessageBytes;
    this.#http2 = createServer({
      // As grpc-js sets them: no limit of node's own on header blocks sent or on a session's memory (node
      // refuses new streams once that is reached, which degrades badly under load).
      maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
      settings: { maxConcurrentStreams: options.maxConcurrentStreams },
    });
    // No idle timeout of node's own: idleness is counted here, in calls rather than in bytes.
    this.#http2.setTimeout(0);
    this.#http2.on('session', (session) => this.#onSession(session));
    this.#http2.on('stream', (stream, headers) => this.#onStream(stream, headers));
  }

  /** Serves HTTP/2 on a connection accepted elsewhere (a socket, or a stream standing for one). */
  serve(connection: Duplex): void {
    this.#http2.emit('connection', connection);
  }

  /** Connections being served. */
  get connections(): number {
    return this.#sessions.size;
  }

  /** Closes every connection with GOAWAY once its calls are answered; resolves when all are closed. */
  async drain(): Promise<void> {
    await Promise.all(
      [...this.#sessions.keys()].map(
        (session) =>
          new Promise<void>((resolve) => {
            if (session.destroyed) {
              resolve();
              return;
            }
            // A session the client already sent GOAWAY on is closing too, but still has calls to answer.
            session.once('close', () => resolve());
            if (!session.closed) session.close();
          }),
      ),
    );
  }

  /** Closes every connection now: calls in flight are cut off (their handlers are told). */
  destroy(): void {
    for (const session of this.#sessions.keys()) session.destroy();
  }

  #onSession(session: Http2Session): void {
    const idleTimer = setTimeout(() => this.#closeIfIdle(session), this.#idleTimeoutMs);
    idleTimer.unref();
    this.#sessions.set(session, { active: 0, idleTimer });
    // A broken connection ends in 'close' as well; its error needs no more than that.
    session.on('error', ignore);
    session.once('close', () => {
      clearTimeout(idleTimer);
      this.#sessions.delete(session);
    });
  }

  #closeIfIdle(session: Http2Session): void {
    const state = this.#sessions.get(session);
    if (state === undefined || state.active > 0 || session.closed || session.destroyed) return;
    session.close();
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    // Every stream error also closes the stream, which is where the call learns of it.
    stream.on('error', ignore);
    const state = this.#sessions.get(stream.session as Http2Session);
    if (state !== undefined) state.active++;
    const contentType = headers[http2Constants.HTTP2_HEADER_CONTENT_TYPE];
    const pathHeader = headers[http2Constants.HTTP2_HEADER_PATH];
    const path = typeof pathHeader === 'string' ? pathHeader : '';
    const method = this.#methods.get(path);
    const timeout = headers['grpc-timeout'];
    const deadline = deadlineOf(timeout, Date.now());
    const call =
      method === undefined || deadline === undefined ? undefined : new StreamCall(stream, deadline);
    stream.on('close', () => {
      call?.closed();
      if (state !== undefined && --state.active === 0) state.idleTimer.refresh();
    });
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      stream.respond(UNSUPPORTED_MEDIA_TYPE, END_STREAM);
      return;
    }
    if (method === undefined) {
      this.#refuse(
        stream,
        protocolFailure('UNIMPLEMENTED', `The server does not implement the method ${path}`),
      );
      return;
    }
    if (call === undefined) {
      this.#refuse(stream, protocolFailure('INTERNAL', `Invalid grpc-timeout value "${String(timeout)}"`));
      return;
    }
    const encoding = headers['grpc-encoding'];
    const reader = new UnaryRequestReader(path, this.#maxReceiveMessageBytes);
    let refused = false;
    stream.on('data', (chunk: Buffer) => {
      if (refused) return;
      const failure = reader.push(chunk);
      if (failure === undefined) return;
      refused = true;
      call.respond(failure);
    });
    stream.on('end', () => {
      if (refused) return;
      const message = reader.finish(typeof encoding === 'string' ? encoding : 'identity');
      if (message instanceof Promise) void message.then((inflated) => run(method, inflated, call));
      else run(method, message, call);
    });
  }

  /** Answers a call that will not run with its status, and reads (and drops) whatever else it sends. */
  #refuse(stream: ServerHttp2Stream, failure: GrpcFailure): void {
    respondWithFailure(stream, failure);
    stream.resume();
  }
}
