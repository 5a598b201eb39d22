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
import { deadlineOf } from './grpc-timeout.js';
import { protocolFailure, type GrpcFailure } from './grpc-status.js';
import { END_STREAM, respondWithFailure, StreamCall, type ServedMethod } from './stream-call.js';
import { UnaryRequestReader } from './unary-request-reader.js';

const UNSUPPORTED_MEDIA_TYPE: OutgoingHttpHeaders = {
  [http2Constants.HTTP2_HEADER_STATUS]: http2Constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE,
};

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

/**
 * What a stream's listeners reach its call and its connection's state by. The listeners are functions
 * shared by every stream (`this` is the stream), not closures made per call: a closed stream, which node
 * keeps until the next full collection, then points to nothing of the call's once its 'close' has run.
 */
const CALL = Symbol('unary call');
const SESSION_STATE = Symbol('session state');

interface CallStream extends ServerHttp2Stream {
  [CALL]?: StreamCall | undefined;
  [SESSION_STATE]?: SessionState | undefined;
}

function onCallData(this: CallStream, chunk: Buffer): void {
  this[CALL]?.received(chunk);
}

function onCallEnd(this: CallStream): void {
  this[CALL]?.ended();
}

function onStreamClose(this: CallStream): void {
  // The connection's count first: a cancellation that throws must not keep the connection from idling.
  const state = this[SESSION_STATE];
  if (state !== undefined && --state.active === 0) state.idleTimer.refresh();
  const call = this[CALL];
  this[CALL] = undefined;
  call?.closed();
}

function ignore(): void {
  // An event whose consequence arrives by another one ('close').
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

  #onStream(served: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const stream: CallStream = served;
    // Every stream error also closes the stream, which is where the call learns of it.
    stream.on('error', ignore);
    const state = this.#sessions.get(stream.session as Http2Session);
    if (state !== undefined) state.active++;
    stream[SESSION_STATE] = state;
    stream.on('close', onStreamClose);
    const contentType = headers[http2Constants.HTTP2_HEADER_CONTENT_TYPE];
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      stream.respond(UNSUPPORTED_MEDIA_TYPE, END_STREAM);
      return;
    }
    const pathHeader = headers[http2Constants.HTTP2_HEADER_PATH];
    const path = typeof pathHeader === 'string' ? pathHeader : '';
    const method = this.#methods.get(path);
    if (method === undefined) {
      this.#refuse(
        stream,
        protocolFailure('UNIMPLEMENTED', `The server does not implement the method ${path}`),
      );
      return;
    }
    const timeout = headers['grpc-timeout'];
    const deadline = deadlineOf(timeout, Date.now());
    if (deadline === undefined) {
      this.#refuse(stream, protocolFailure('INTERNAL', `Invalid grpc-timeout value "${String(timeout)}"`));
      return;
    }
    const encoding = headers['grpc-encoding'];
    stream[CALL] = new StreamCall(
      stream,
      method,
      new UnaryRequestReader(path, this.#maxReceiveMessageBytes),
      typeof encoding === 'string' ? encoding : 'identity',
      deadline,
    );
    stream.on('data', onCallData);
    stream.on('end', onCallEnd);
  }

  /** Answers a call that will not run with its status, and reads (and drops) whatever else it sends. */
  #refuse(stream: ServerHttp2Stream, failure: GrpcFailure): void {
    respondWithFailure(stream, failure);
    stream.resume();
  }
}
