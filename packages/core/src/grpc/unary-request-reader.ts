import { gunzip, inflate } from 'node:zlib';
import { GRPC_PREFIX_BYTES } from './grpc-message-frame.js';
import { protocolFailure, type GrpcFailure } from './grpc-status.js';

/**
 * Reads the one length-prefixed message of a unary call from its request body, as the DATA frames bring
 * it: refuses a message over the size limit as soon as its prefix says so, and a body with more than one
 * message or none. The answers are grpc-js's own, word for word, so a caller sees what it saw from a
 * grpc-js server (the messages that say "server streaming" included).
 */
export class UnaryRequestReader {
  readonly #path: string;
  readonly #maxMessageBytes: number;
  #chunks: Buffer[] = [];
  #received = 0;
  /** The message length the prefix declares, once the prefix has come in. */
  #declared: number | undefined;

  constructor(path: string, maxMessageBytes: number) {
    this.#path = path;
    this.#maxMessageBytes = maxMessageBytes;
  }

  /** Takes a chunk of the body; returns a failure once the body can no longer be one acceptable message. */
  push(chunk: Buffer): GrpcFailure | undefined {
    this.#chunks.push(chunk);
    this.#received += chunk.length;
    if (this.#received < GRPC_PREFIX_BYTES) return undefined;
    if (this.#declared === undefined) {
      this.#declared = this.#body().readUInt32BE(1);
      if (this.#declared > this.#maxMessageBytes) {
        return protocolFailure(
          'RESOURCE_EXHAUSTED',
          `Received message larger than max (${this.#declared} vs ${this.#maxMessageBytes})`,
        );
      }
    }
    if (this.#received > GRPC_PREFIX_BYTES + this.#declared) return this.#secondMessage();
    return undefined;
  }

  /**
   * The message, once the body has ended: its bytes (inflated if the caller compressed it with
   * `encoding`: only then does the answer come later), or the failure to answer with.
   */
  finish(encoding: string): Buffer | GrpcFailure | Promise<Buffer | GrpcFailure> {
    const declared = this.#declared;
    if (declared === undefined || this.#received < GRPC_PREFIX_BYTES + declared) return this.#noMessage();
    const body = this.#body();
    const message = body.subarray(GRPC_PREFIX_BYTES, GRPC_PREFIX_BYTES + declared);
    // Only a flag of 1 means compressed (any other value is read as 0, as grpc-js reads it), and with
    // the `identity` encoding a compressed flag changes nothing.
    if (body[0] !== 1 || encoding === 'identity') return message;
    if (encoding !== 'gzip' && encoding !== 'deflate') {
      return protocolFailure(
        'UNIMPLEMENTED',
        `Received message compressed with unsupported encoding "${encoding}"`,
      );
    }
    return new Promise((resolve) => {
      const inflated = (error: Error | null, result: Buffer): void => {
        if (error === null) resolve(result);
        else if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
          resolve(
            protocolFailure(
              'RESOURCE_EXHAUSTED',
              `Received message that decompresses to a size larger than ${this.#maxMessageBytes}`,
            ),
          );
        } else resolve(protocolFailure('INTERNAL', 'Failed to decompress message'));
      };
      const options = { maxOutputLength: this.#maxMessageBytes };
      if (encoding === 'gzip') gunzip(message, options, inflated);
      else inflate(message, options, inflated);
    });
  }

  /** The body read so far as one buffer (joined when it came in more than one chunk). */
  #body(): Buffer {
    const [first] = this.#chunks;
    if (this.#chunks.length === 1 && first !== undefined) return first;
    const joined = Buffer.concat(this.#chunks, this.#received);
    this.#chunks = [joined];
    return joined;
  }

  #secondMessage(): GrpcFailure {
    return protocolFailure(
      'UNIMPLEMENTED',
      `Received a second request message for server streaming method ${this.#path}`,
    );
  }

  #noMessage(): GrpcFailure {
    return protocolFailure(
      'UNIMPLEMENTED',
      `Received no request message for server streaming method ${this.#path}`,
    );
  }
}
