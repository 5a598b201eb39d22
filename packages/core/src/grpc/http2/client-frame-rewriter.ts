import { isAuthorityField, isValidAuthority, REPLACEMENT_AUTHORITY } from './authority.js';
import { HeaderBlockDecoder } from './header-block-decoder.js';
import { encodeHeaderBlock } from './header-block-encoder.js';
import { Http2ProtocolViolation } from './protocol-violation.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER_BYTES = 9;
const FRAME_HEADERS = 0x1;
const FRAME_SETTINGS = 0x4;
const FRAME_PUSH_PROMISE = 0x5;
const FRAME_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/**
 * SETTINGS_MAX_FRAME_SIZE of the server side: the gRPC server keeps HTTP/2's default, the smallest value a peer may
 * advertise, so frames this size are always acceptable to it. A client's header frame above it is refused.
 */
const MAX_FRAME_BYTES = 16_384;
/**
 * The largest header block (all its HEADERS and CONTINUATION fragments) buffered for rewriting. Node's
 * HTTP/2 server refuses header lists over 64 KiB decoded, and HPACK never makes a list larger than twice
 * its encoding, so no block that the gRPC server would accept is refused here; a larger one ends the connection.
 */
const MAX_HEADER_BLOCK_BYTES = 128 * 1024;

/** A header block whose fragments are still arriving: HEADERS without END_HEADERS, then CONTINUATIONs. */
interface OpenHeaderBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly fragments: Buffer[];
  /** The block's frames as the client sent them, headers included: what goes out if it passes unchanged. */
  readonly frames: Buffer[];
  size: number;
}

/** The frame being read: its header, and (for header frames) the frame gathered so far. */
interface FrameInProgress {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly length: number;
  /**
   * For HEADERS and CONTINUATION, which are buffered whole: the frame header, then the payload as it
   * arrives (what goes out if the block passes unchanged). Undefined for frames passed through.
   */
  raw: Buffer | undefined;
  received: number;
}

/**
 * The client-to-server half of a KMS connection, rewritten on its way to the gRPC server so that every authority
 * kube-apiserver sends is accepted. Every byte passes through unchanged except header blocks. Each block
 * (HEADERS plus any CONTINUATION frames) is decoded with an HPACK context mirroring the client's encoder.
 * Until the first block that carries an authority nghttp2 would refuse (a socket path), blocks go on
 * exactly as the client sent them, so the gRPC server's HPACK table is the client's. That block and every later
 * one go on re-encoded, the authority replaced with `localhost`, as one HEADERS frame (split into
 * CONTINUATION frames past the frame size limit) that uses no dynamic table, keeping END_STREAM and
 * dropping padding and the deprecated priority fields: from then on the gRPC server never reads its table again,
 * so the two tables cannot drift. Connection errors throw `Http2ProtocolViolation`; the caller closes the
 * connection.
 *
 * With `dropSettingsAck`, the client's first SETTINGS acknowledgement is removed: it answers the SETTINGS
 * frame the front-end sent before the gRPC server had the connection (`ConnectionTriage`), which the gRPC server never sent
 * and must not see acknowledged.
 */
export class ClientFrameRewriter {
  readonly #decoder = new HeaderBlockDecoder();
  readonly #onAuthorityReplaced: (original: string) => void;
  #prefaceSeen = 0;
  readonly #header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  #headerFill = 0;
  #frame: FrameInProgress | undefined;
  #block: OpenHeaderBlock | undefined;
  /** Whether every byte of the current chunk so far goes out as it came, in order, and nothing else. */
  #verbatim = true;
  #settingsAcksToDrop: number;
  #headerBlocks = 0;
  #reencoding = false;

  /**
   * `onAuthorityReplaced` hears of each authority replaced (the caller decides how often to say so);
   * `dropSettingsAck` removes the client's first SETTINGS acknowledgement (see the class comment).
   */
  constructor(options: { onAuthorityReplaced?: (original: string) => void; dropSettingsAck?: boolean } = {}) {
    this.#onAuthorityReplaced = options.onAuthorityReplaced ?? (() => {});
    this.#settingsAcksToDrop = options.dropSettingsAck === true ? 1 : 0;
  }

  /** Whether the client has sent the whole HTTP/2 connection preface. */
  get prefaceReceived(): boolean {
    return this.#prefaceSeen === PREFACE.length;
  }

  /** Header blocks read whole so far. */
  get headerBlocks(): number {
    return this.#headerBlocks;
  }

  /** Whether blocks are being re-encoded (an authority was replaced): the gRPC server's HPACK table is frozen. */
  get reencoding(): boolean {
    return this.#reencoding;
  }

  /** Whether the SETTINGS acknowledgement to remove has not arrived yet. */
  get settingsAckPending(): boolean {
    return this.#settingsAcksToDrop > 0;
  }

  /** Whether everything read so far has been handed out: no frame or frame header is held part-read. */
  get atFrameBoundary(): boolean {
    return this.#headerFill === 0 && this.#frame?.raw === undefined && this.#block === undefined;
  }

  /** Takes the next bytes from the client; returns what to hand the gRPC server, in order. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    // Most chunks hold no header frame and end on no partial frame header: then what goes out is the
    // chunk itself, handed on without copying.
    this.#verbatim = this.#headerFill === 0 && this.#frame?.raw === undefined;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#prefaceSeen < PREFACE.length) offset = this.#readPreface(chunk, offset, out);
      else if (this.#frame === undefined) offset = this.#readFrameHeader(chunk, offset, out);
      else offset = this.#readPayload(this.#frame, chunk, offset, out);
    }
    return this.#verbatim && this.#headerFill === 0 ? [chunk] : out;
  }

  #readPreface(chunk: Buffer, offset: number, out: Buffer[]): number {
    const take = Math.min(PREFACE.length - this.#prefaceSeen, chunk.length - offset);
    const part = chunk.subarray(offset, offset + take);
    if (!part.equals(PREFACE.subarray(this.#prefaceSeen, this.#prefaceSeen + take))) {
      throw new Http2ProtocolViolation(
        'PROTOCOL_ERROR',
        'the connection does not start with the HTTP/2 preface',
      );
    }
    this.#prefaceSeen += take;
    out.push(part);
    return offset + take;
  }

  #readFrameHeader(chunk: Buffer, offset: number, out: Buffer[]): number {
    let header: Buffer;
    let next: number;
    if (this.#headerFill === 0 && chunk.length - offset >= FRAME_HEADER_BYTES) {
      header = chunk.subarray(offset, offset + FRAME_HEADER_BYTES);
      next = offset + FRAME_HEADER_BYTES;
    } else {
      const take = Math.min(FRAME_HEADER_BYTES - this.#headerFill, chunk.length - offset);
      chunk.copy(this.#header, this.#headerFill, offset, offset + take);
      this.#headerFill += take;
      if (this.#headerFill < FRAME_HEADER_BYTES) return offset + take;
      this.#headerFill = 0;
      header = Buffer.from(this.#header);
      next = offset + take;
    }
    const frame: FrameInProgress = {
      length: header.readUIntBE(0, 3),
      type: header[3] ?? 0,
      flags: header[4] ?? 0,
      streamId: header.readUInt32BE(5) & 0x7fffffff,
      raw: undefined,
      received: 0,
    };
    this.#checkSequence(frame);
    if (frame.type === FRAME_HEADERS || frame.type === FRAME_CONTINUATION) {
      if (frame.length > MAX_FRAME_BYTES) {
        throw new Http2ProtocolViolation(
          'FRAME_SIZE_ERROR',
          `a header frame of ${frame.length} bytes exceeds the frame size limit of ${MAX_FRAME_BYTES}`,
        );
      }
      frame.raw = Buffer.allocUnsafe(FRAME_HEADER_BYTES + frame.length);
      header.copy(frame.raw);
      this.#verbatim = false;
    } else if (this.#isSettingsAckToDrop(frame)) {
      this.#settingsAcksToDrop--;
      this.#verbatim = false;
    } else {
      out.push(header);
    }
    this.#frame = frame;
    // A frame with no payload is complete already.
    if (frame.length === 0) this.#completeFrame(frame, out);
    return next;
  }

  /** An empty SETTINGS acknowledgement while one is to be dropped (a malformed one goes on to the gRPC server). */
  #isSettingsAckToDrop(frame: FrameInProgress): boolean {
    return (
      this.#settingsAcksToDrop > 0 &&
      frame.type === FRAME_SETTINGS &&
      (frame.flags & FLAG_ACK) !== 0 &&
      frame.streamId === 0 &&
      frame.length === 0
    );
  }

  /** A header block must continue with CONTINUATION frames on its own stream and nothing else (6.10). */
  #checkSequence(frame: FrameInProgress): void {
    const block = this.#block;
    if (block !== undefined) {
      if (frame.type !== FRAME_CONTINUATION || frame.streamId !== block.streamId) {
        throw new Http2ProtocolViolation(
          'PROTOCOL_ERROR',
          `expected CONTINUATION on stream ${block.streamId}, got frame type ${frame.type} on stream ${frame.streamId}`,
        );
      }
    } else if (frame.type === FRAME_CONTINUATION) {
      throw new Http2ProtocolViolation('PROTOCOL_ERROR', 'CONTINUATION without an open header block');
    } else if (frame.type === FRAME_PUSH_PROMISE) {
      throw new Http2ProtocolViolation('PROTOCOL_ERROR', 'a client must not send PUSH_PROMISE');
    }
  }

  #readPayload(frame: FrameInProgress, chunk: Buffer, offset: number, out: Buffer[]): number {
    const take = Math.min(frame.length - frame.received, chunk.length - offset);
    if (frame.raw === undefined) out.push(chunk.subarray(offset, offset + take));
    else chunk.copy(frame.raw, FRAME_HEADER_BYTES + frame.received, offset, offset + take);
    frame.received += take;
    if (frame.received === frame.length) this.#completeFrame(frame, out);
    return offset + take;
  }

  #completeFrame(frame: FrameInProgress, out: Buffer[]): void {
    this.#frame = undefined;
    const raw = frame.raw;
    if (raw === undefined) return;
    const payload = raw.subarray(FRAME_HEADER_BYTES);
    const fragment = frame.type === FRAME_HEADERS ? headersFragment(frame, payload) : payload;
    const block: OpenHeaderBlock = this.#block ?? {
      streamId: frame.streamId,
      endStream: (frame.flags & FLAG_END_STREAM) !== 0,
      fragments: [],
      frames: [],
      size: 0,
    };
    block.fragments.push(fragment);
    block.frames.push(raw);
    block.size += fragment.length;
    if (block.size > MAX_HEADER_BLOCK_BYTES) {
      throw new Http2ProtocolViolation(
        'PROTOCOL_ERROR',
        `a header block over ${MAX_HEADER_BLOCK_BYTES} bytes on stream ${block.streamId}`,
      );
    }
    if ((frame.flags & FLAG_END_HEADERS) === 0) {
      this.#block = block;
      return;
    }
    this.#block = undefined;
    this.#headerBlocks++;
    this.#passBlock(block, out);
  }

  /** Decodes a whole block (keeping the mirror table current) and hands on the block or its rewrite. */
  #passBlock(block: OpenHeaderBlock, out: Buffer[]): void {
    const encoded = block.fragments.length === 1 ? block.fragments[0] : Buffer.concat(block.fragments);
    const fields = this.#decoder.decode(encoded ?? Buffer.alloc(0));
    for (const field of fields) {
      if (isAuthorityField(field.name) && !isValidAuthority(field.value)) {
        this.#onAuthorityReplaced(field.value);
        field.value = REPLACEMENT_AUTHORITY;
        this.#reencoding = true;
      }
    }
    if (this.#reencoding) out.push(headerFrames(block.streamId, block.endStream, encodeHeaderBlock(fields)));
    else out.push(...block.frames);
  }
}

/** The header block fragment of a HEADERS frame: without its pad length, priority fields and padding. */
function headersFragment(frame: FrameInProgress, payload: Buffer): Buffer {
  let start = 0;
  let padding = 0;
  if ((frame.flags & FLAG_PADDED) !== 0) {
    padding = payload[0] ?? 0;
    start = 1;
  }
  if ((frame.flags & FLAG_PRIORITY) !== 0) start += 5;
  if (start + padding > payload.length) {
    throw new Http2ProtocolViolation(
      'PROTOCOL_ERROR',
      `HEADERS on stream ${frame.streamId}: padding and priority exceed the frame`,
    );
  }
  return payload.subarray(start, payload.length - padding);
}

/** One HEADERS frame carrying `block`, continued in CONTINUATION frames where it exceeds the frame limit. */
function headerFrames(streamId: number, endStream: boolean, block: Buffer): Buffer {
  const frameCount = Math.max(1, Math.ceil(block.length / MAX_FRAME_BYTES));
  const out = Buffer.allocUnsafe(frameCount * FRAME_HEADER_BYTES + block.length);
  let at = 0;
  for (let index = 0; index < frameCount; index++) {
    const fragment = block.subarray(index * MAX_FRAME_BYTES, (index + 1) * MAX_FRAME_BYTES);
    const last = index === frameCount - 1;
    let flags = last ? FLAG_END_HEADERS : 0;
    if (index === 0 && endStream) flags |= FLAG_END_STREAM;
    out.writeUIntBE(fragment.length, at, 3);
    out[at + 3] = index === 0 ? FRAME_HEADERS : FRAME_CONTINUATION;
    out[at + 4] = flags;
    out.writeUInt32BE(streamId, at + 5);
    fragment.copy(out, at + FRAME_HEADER_BYTES);
    at += FRAME_HEADER_BYTES + fragment.length;
  }
  return out;
}
