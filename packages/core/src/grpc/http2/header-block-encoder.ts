import type { HeaderField } from './header-field.js';

/**
 * Encodes header fields for the gRPC server without touching its HPACK dynamic table: every field is a literal
 * "without indexing" (or "never indexed" where the client said so) with a literal name and raw strings.
 * The server's table therefore stays empty for the life of the connection, and nothing the
 * client does to its own table can make the two sides disagree. It costs a few bytes per header on a
 * local socket, and no state.
 */
export function encodeHeaderBlock(fields: readonly HeaderField[]): Buffer {
  let size = 0;
  for (const field of fields) {
    size += 1 + integerLength(field.name.length, 7) + field.name.length;
    size += integerLength(field.value.length, 7) + field.value.length;
  }
  const out = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const field of fields) {
    out[offset++] = field.neverIndex ? 0x10 : 0x00;
    offset = writeString(out, offset, field.name);
    offset = writeString(out, offset, field.value);
  }
  return out;
}

/** Strings up to this length are copied octet by octet in JS: cheaper than a call into `Buffer.write`. */
const SHORT_STRING = 64;

/** A string literal without Huffman coding (RFC 7541, 5.2): H=0, a 7-bit prefix length, the octets. */
function writeString(out: Buffer, offset: number, value: string): number {
  const at = writeInteger(out, offset, value.length, 7, 0x00);
  if (value.length > SHORT_STRING) return at + out.write(value, at, 'latin1');
  // One octet per character (latin1), as Buffer.write would write it.
  for (let index = 0; index < value.length; index++) out[at + index] = value.charCodeAt(index) & 0xff;
  return at + value.length;
}

/** An integer with an N-bit prefix (RFC 7541, 5.1). */
function writeInteger(out: Buffer, offset: number, value: number, prefixBits: number, flags: number): number {
  const max = (1 << prefixBits) - 1;
  let at = offset;
  if (value < max) {
    out[at++] = flags | value;
    return at;
  }
  out[at++] = flags | max;
  let rest = value - max;
  while (rest >= 0x80) {
    out[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  out[at++] = rest;
  return at;
}

function integerLength(value: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) return 1;
  let length = 2;
  for (let rest = value - max; rest >= 0x80; rest >>>= 7) length++;
  return length;
}
