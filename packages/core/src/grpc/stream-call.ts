import {
  constants as http2Constants,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
  type ServerStreamResponseOptions,
} from 'node:http2';
import { frameMessage } from './grpc-message-frame.js';
import { protocolFailure, type GrpcFailure } from './grpc-status.js';
import type { UnaryRequestReader } from './unary-request-reader.js';

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

/**
 * `respond`'s options, with `sendDate` (which node honours and its types leave out) off: no `date` header.
 * gRPC has no use for it (a grpc-go server sends none), and node would make, encode and keep one per call.
 */
interface RespondOptions extends ServerStreamResponseOptions {
  readonly sendDate: false;
}
const RESPOND_WITH_TRAILERS: RespondOptions = { waitForTrailers: true, sendDate: false };
export const END_STREAM: RespondOptions = { endStream: true, sendDate: false };

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

function grpcMessage(details: string): string {
  // As grpc-js sends it (and grpc-go reads it): percent-encoded, so any text fits in a header. Through
  // UTF-8 and back first: a lone surrogate (half of a character cut off) becomes U+FFFD instead of making
  // encodeURI throw, which would leave the call unanswered.
  return encodeURI(Buffer.from(details, 'utf8').toString('utf8'));
}

/**
 * One call on its HTTP/2 stream: reads its request message, runs its method, answers once, and tells the
 * handler if the caller goes away first. The stream reaches it only through its server's listeners, which
 * let go of it when the stream closes: node keeps a closed stream until the next full collection
 * (scavenges never free one), and whatever the stream still points to then is promoted to the old
 * generation with it, to be freed only by a full collection as well (docs/benchmarks.md).
 */
export class StreamCall implements UnaryCall {
  readonly deadline: number;
  onCancel: (() => void) | undefined = undefined;
  readonly #stream: ServerHttp2Stream;
  readonly #method: ServedMethod;
  readonly #encoding: string;
  /** Until the request message is read, refused, or the stream closes. */
  #reader: UnaryRequestReader | undefined;
  #answered = false;
  /** Answers DEADLINE_EXCEEDED if the call is still waiting for its request when its deadline passes. */
  #deadlineTimer: NodeJS.Timeout | undefined;

  constructor(
    stream: ServerHttp2Stream,
    method: ServedMethod,
    reader: UnaryRequestReader,
    encoding: string,
    deadline: number,
  ) {
    this.#stream = stream;
    this.#method = method;
    this.#reader = reader;
    this.#encoding = encoding;
    this.deadline = deadline;
    if (Number.isFinite(deadline)) {
      this.#deadlineTimer = setTimeout(expireWaiting, Math.max(0, deadline - Date.now()), this);
    }
  }

  /** A chunk of the request body: refused at once if the body can no longer be one acceptable message. */
  received(chunk: Buffer): void {
    const failure = this.#reader?.push(chunk);
    if (failure !== undefined) this.respond(failure);
  }

  /** The request body has ended: the method runs on its message (inflated first if it came compressed). */
  ended(): void {
    const reader = this.#reader;
    if (reader === undefined) return;
    this.#reader = undefined;
    const message = reader.finish(this.#encoding);
    if (message instanceof Promise) void message.then((inflated) => this.#run(inflated));
    else this.#run(message);
  }

  respond(failure: GrpcFailure | null, message?: Buffer): void {
    if (this.#answered) return;
    this.#answered = true;
    this.#stopDeadlineTimer();
    // Answered before its request was read (refused, or past its deadline): the rest is not read.
    this.#reader = undefined;
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
    this.#stopDeadlineTimer();
    this.#reader = undefined;
    if (this.#answered) return;
    this.#answered = true;
    const onCancel = this.onCancel;
    this.onCancel = undefined;
    onCancel?.();
  }

  /** Runs the method on the call's message, or answers the call with why there is none. */
  #run(message: Buffer | GrpcFailure): void {
    // Cancelled while its message was being inflated: there is no one to do the work for.
    if (this.#answered) return;
    if (!Buffer.isBuffer(message)) {
      this.respond(message);
      return;
    }
    // The method runs: from here on its request context keeps the deadline.
    this.#stopDeadlineTimer();
    try {
      this.#method(message, this);
    } catch {
      // As grpc-js answers a handler that throws: the call fails, the server goes on.
      this.respond(protocolFailure('UNKNOWN', 'Unknown error'));
    }
  }

  #stopDeadlineTimer(): void {
    if (this.#deadlineTimer === undefined) return;
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
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

/** A failure as a trailers-only response: the status in the one header block that ends the stream. */
export function respondWithFailure(stream: ServerHttp2Stream, failure: GrpcFailure): void {
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
