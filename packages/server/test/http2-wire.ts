import { connect as connectHttp2, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect as connectSocket, type Socket } from 'node:net';
import { Duplex } from 'node:stream';

// HTTP/2 as the bytes on the KMS socket: a gRPC caller on Node's own HTTP/2 client (nghttp2: Huffman
// and incremental indexing in its HPACK encoder), a tap that records and may reshape the frames that
// client writes, and raw frame building for abuse tests.

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME = { DATA: 0x0, HEADERS: 0x1, SETTINGS: 0x4, CONTINUATION: 0x9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

export function encodeFrame(frame: Frame): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(frame.payload.length, 0, 3);
  header[3] = frame.type;
  header[4] = frame.flags;
  header.writeUInt32BE(frame.streamId, 5);
  return Buffer.concat([header, frame.payload]);
}

/** Reshapes one complete frame the client wrote into the frames to send instead. */
export type FrameReshaper = (frame: Frame, index: number) => Frame[];

/**
 * Sits between Node's HTTP/2 client and the socket: records the client's header block fragments and
 * sends each client frame through `reshape` (identity by default). Server bytes pass unchanged.
 */
class ClientTap extends Duplex {
  readonly headerBlocks: Buffer[] = [];
  readonly #socket: Socket;
  readonly #reshape: FrameReshaper;
  #pending = Buffer.alloc(0);
  #prefaceSent = false;
  #frames = 0;

  constructor(socket: Socket, reshape: FrameReshaper) {
    super();
    this.#socket = socket;
    this.#reshape = reshape;
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (error) => this.destroy(error));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.#pending = Buffer.concat([this.#pending, chunk]);
    const out: Buffer[] = [];
    if (!this.#prefaceSent) {
      if (this.#pending.length < PREFACE.length) return callback();
      out.push(this.#pending.subarray(0, PREFACE.length));
      this.#pending = this.#pending.subarray(PREFACE.length);
      this.#prefaceSent = true;
    }
    while (this.#pending.length >= 9) {
      const length = this.#pending.readUIntBE(0, 3);
      if (this.#pending.length < 9 + length) break;
      const frame: Frame = {
        type: this.#pending[3] ?? 0,
        flags: this.#pending[4] ?? 0,
        streamId: this.#pending.readUInt32BE(5),
        payload: this.#pending.subarray(9, 9 + length),
      };
      this.#pending = this.#pending.subarray(9 + length);
      if (frame.type === FRAME.HEADERS || frame.type === FRAME.CONTINUATION) {
        this.headerBlocks.push(Buffer.from(frame.payload));
      }
      for (const reshaped of this.#reshape(frame, this.#frames++)) out.push(encodeFrame(reshaped));
    }
    if (out.length === 0 || this.#socket.write(Buffer.concat(out))) callback();
    else this.#socket.once('drain', callback);
  }

  override _final(callback: () => void): void {
    this.#socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.#socket.destroy();
    callback(error);
  }
}

export interface TappedSession {
  readonly session: ClientHttp2Session;
  /** The header block fragments the client wrote, in order, before reshaping. */
  readonly headerBlocks: Buffer[];
  close(): Promise<void>;
}

/** Node's HTTP/2 client on the unix socket, through a tap. */
export async function connectTapped(
  socketPath: string,
  reshape: FrameReshaper = (frame) => [frame],
): Promise<TappedSession> {
  const socket = connectSocket(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const tap = new ClientTap(socket, reshape);
  const session = connectHttp2('http://localhost', { createConnection: () => tap });
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  return {
    session,
    headerBlocks: tap.headerBlocks,
    close: () => new Promise<void>((resolve) => session.close(() => resolve())),
  };
}

export interface GrpcAnswer {
  readonly status: number;
  readonly message: string;
  /** The response message without its 5-byte gRPC prefix (empty when the call failed). */
  readonly body: Buffer;
}

/** One unary gRPC call written by hand: the request headers are exactly `headers` plus the basics. */
export function grpcUnary(
  session: ClientHttp2Session,
  options: { path: string; authority: string; message: Buffer; headers?: Record<string, string> },
): Promise<GrpcAnswer> {
  return new Promise((resolve, reject) => {
    const request = session.request({
      ':method': 'POST',
      ':scheme': 'http',
      ':path': options.path,
      ':authority': options.authority,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...options.headers,
    });
    const chunks: Buffer[] = [];
    let trailers: IncomingHttpHeaders | undefined;
    let responseHeaders: IncomingHttpHeaders | undefined;
    request.on('response', (headers: IncomingHttpHeaders) => {
      responseHeaders = headers;
    });
    request.on('trailers', (headers: IncomingHttpHeaders) => {
      trailers = headers;
    });
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('error', reject);
    request.on('close', () => {
      // A failed call may come back as trailers only: grpc-status in the response headers.
      const final = trailers ?? responseHeaders;
      const status = final?.['grpc-status'];
      if (typeof status !== 'string') {
        reject(new Error(`no grpc-status (stream closed with RST code ${request.rstCode})`));
        return;
      }
      const body = Buffer.concat(chunks);
      resolve({
        status: Number(status),
        message: decodeURIComponent(String(final?.['grpc-message'] ?? '')),
        body: body.length >= 5 ? body.subarray(5, 5 + body.readUInt32BE(1)) : Buffer.alloc(0),
      });
    });
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(options.message.length, 1);
    request.end(Buffer.concat([prefix, options.message]));
  });
}
