/**
 * The protobuf wire format read the way protobufjs 7 reads it (its `BufferReader`), so that what decodes,
 * what does not and what it decodes to stay exactly what they were when the KMS services were loaded
 * with @grpc/proto-loader. Each quirk below is protobufjs's and is kept on purpose; the parity tests
 * (`test/kms-codec-parity.test.ts`) hold this file to it byte for byte.
 *
 * - A varint of 32 bits reads at most 10 bytes; bits past the 32nd are ignored. Near the end of the
 *   message at most 4 bytes are read, and a varint cut short fails.
 * - A string longer than what is left is cut at the end (protobufjs's BufferReader.string), bytes are not.
 * - Groups (wire type 3) are skipped up to 100 levels deep; wire types 4, 6 and 7 fail where a field
 *   would be skipped.
 */

/** The nesting protoc and protobufjs allow. */
const RECURSION_LIMIT = 100;

function outOfRange(reader: ProtobufReader, length = 1): RangeError {
  return new RangeError(`index out of range: ${reader.pos} + ${length} > ${reader.len}`);
}

export class ProtobufReader {
  readonly buf: Buffer;
  pos = 0;
  /** Where reading stops: the message's end, or a length-delimited field's while it is read. */
  len: number;

  constructor(buf: Buffer) {
    this.buf = buf;
    this.len = buf.length;
  }

  /** An unsigned 32-bit varint (a tag or a length). */
  uint32(): number {
    const buf = this.buf;
    if (this.len - this.pos < 5) {
      if (this.pos >= this.len) throw outOfRange(this);
      if ((buf[this.pos] as number) >= 128) return this.#uint32NearEnd();
    }
    let byte = buf[this.pos++] as number;
    let value = (byte & 127) >>> 0;
    if (byte < 128) return value;
    byte = buf[this.pos++] as number;
    value = (value | ((byte & 127) << 7)) >>> 0;
    if (byte < 128) return value;
    byte = buf[this.pos++] as number;
    value = (value | ((byte & 127) << 14)) >>> 0;
    if (byte < 128) return value;
    byte = buf[this.pos++] as number;
    value = (value | ((byte & 127) << 21)) >>> 0;
    if (byte < 128) return value;
    byte = buf[this.pos++] as number;
    value = (value | ((byte & 15) << 28)) >>> 0;
    if (byte < 128) return value;
    // The five bytes a 64-bit varint may still have are passed over unread.
    if ((this.pos += 5) > this.len) {
      this.pos = this.len;
      throw outOfRange(this, 10);
    }
    return value;
  }

  #uint32NearEnd(): number {
    let value = 0;
    for (let i = 0; i < 4; ++i) {
      if (this.pos >= this.len) throw outOfRange(this);
      const byte = this.buf[this.pos++] as number;
      value = (value | ((byte & 127) << (i * 7))) >>> 0;
      if (byte < 128) return value;
    }
    throw outOfRange(this);
  }

  /** A length-delimited field as bytes: a view of the message's buffer, not a copy. */
  bytes(): Buffer {
    const length = this.uint32();
    const start = this.pos;
    const end = start + length;
    if (end > this.len) throw outOfRange(this, length);
    this.pos = end;
    return start === end ? Buffer.alloc(0) : this.buf.subarray(start, end);
  }

  /** A length-delimited field as UTF-8 text, cut at the end of what is left (as protobufjs does). */
  string(): string {
    const length = this.uint32();
    const start = this.pos;
    this.pos = Math.min(start + length, this.len);
    return this.buf.toString('utf8', start, this.pos);
  }

  #skip(length: number): void {
    if (this.pos + length > this.len) throw outOfRange(this, length);
    this.pos += length;
  }

  #skipVarint(): void {
    do {
      if (this.pos >= this.len) throw outOfRange(this);
    } while ((this.buf[this.pos++] as number) & 128);
  }

  /** Skips a field of an unknown number, by its wire type. */
  skipType(wireType: number, depth = 0): void {
    if (depth > RECURSION_LIMIT) throw new Error('maximum nesting depth exceeded');
    switch (wireType) {
      case 0:
        this.#skipVarint();
        break;
      case 1:
        this.#skip(8);
        break;
      case 2:
        this.#skip(this.uint32());
        break;
      case 3: {
        let inner: number;
        while ((inner = this.uint32() & 7) !== 4) this.skipType(inner, depth + 1);
        break;
      }
      case 5:
        this.#skip(4);
        break;
      default:
        throw new Error(`invalid wire type ${wireType} at offset ${this.pos}`);
    }
  }
}
