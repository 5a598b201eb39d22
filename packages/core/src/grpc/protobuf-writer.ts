/**
 * The protobuf wire format written into one buffer of the exact size, measured first: varints of
 * 32 bits (tags and lengths) and length-delimited fields. Strings are written as UTF-8 by Buffer.
 */
export class ProtobufWriter {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** How many bytes `value` takes as a varint. */
  static varintSize(value: number): number {
    return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
  }

  uint32(value: number): void {
    let rest = value >>> 0;
    while (rest > 127) {
      this.buf[this.pos++] = (rest & 127) | 128;
      rest >>>= 7;
    }
    this.buf[this.pos++] = rest;
  }

  bytes(value: Uint8Array): void {
    this.uint32(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  /** A string whose UTF-8 length the caller measured (the length prefix is written from it). */
  string(value: string, byteLength: number): void {
    this.uint32(byteLength);
    this.pos += this.buf.write(value, this.pos, byteLength, 'utf8');
  }

  /** The written message; throws if the measured size was not what was written. */
  finish(): Buffer {
    if (this.pos !== this.buf.length) {
      throw new Error(`protobuf writer: measured ${this.buf.length} bytes, wrote ${this.pos}`);
    }
    return this.buf;
  }
}
