import hpack, { type HpackDecoder, type HpackTable } from 'hpack.js';
import type { HeaderField } from './header-field.js';
import { Http2ProtocolViolation } from './protocol-violation.js';

/**
 * The size of the decoder's dynamic table that a client's encoder may use: SETTINGS_HEADER_TABLE_SIZE of
 * the server side, which the gRPC server leaves at Node's (and HTTP/2's) default. A test pins it to Node's value.
 */
export const SERVER_HEADER_TABLE_SIZE = 4096;

/**
 * Decodes a client's header blocks with an HPACK context that mirrors the client's encoder: one per
 * connection, fed every block in the order the client sent them, so its dynamic table always holds what
 * the client's encoder believes it holds. hpack.js does the bit-level work (integers, strings, Huffman)
 * and keeps the table; this class walks the representations (RFC 7541, section 6) and enforces what a
 * decoder must: a table size update only at the start of a block and never above the agreed maximum.
 * Any error is a COMPRESSION_ERROR for the whole connection: the table can no longer be trusted.
 */
export class HeaderBlockDecoder {
  readonly #table: HpackTable = hpack.table.create({ maxSize: SERVER_HEADER_TABLE_SIZE });
  readonly #decoder: HpackDecoder = hpack.decoder.create();

  decode(block: Buffer): HeaderField[] {
    try {
      return this.#decode(block);
    } catch (error) {
      if (error instanceof Http2ProtocolViolation) throw error;
      throw new Http2ProtocolViolation(
        'COMPRESSION_ERROR',
        `header block is not valid HPACK: ${(error as Error).message}`,
      );
    }
  }

  #decode(block: Buffer): HeaderField[] {
    const decoder = this.#decoder;
    decoder.push(block);
    const fields: HeaderField[] = [];
    let atBlockStart = true;
    while (!decoder.isEmpty()) {
      const kind = representation(decoder);
      if (kind === 'size-update') {
        if (!atBlockStart) {
          throw new Http2ProtocolViolation(
            'COMPRESSION_ERROR',
            'dynamic table size update after the first header field of a block',
          );
        }
        const size = decoder.decodeInt();
        if (size > SERVER_HEADER_TABLE_SIZE) {
          throw new Http2ProtocolViolation(
            'COMPRESSION_ERROR',
            `dynamic table size update to ${size} exceeds the agreed ${SERVER_HEADER_TABLE_SIZE}`,
          );
        }
        this.#table.updateSize(size);
        continue;
      }
      atBlockStart = false;
      if (kind === 'indexed') {
        const entry = this.#table.lookup(decoder.decodeInt());
        fields.push({ name: entry.name, value: entry.value, neverIndex: false });
      } else {
        fields.push(this.#literal(decoder, kind === 'incremental', kind === 'never-indexed'));
      }
    }
    return fields;
  }

  #literal(decoder: HpackDecoder, indexed: boolean, neverIndex: boolean): HeaderField {
    const nameIndex = decoder.decodeInt();
    const name = nameIndex === 0 ? octets(decoder.decodeStr()) : this.#table.lookup(nameIndex).name;
    const value = octets(decoder.decodeStr());
    if (indexed) this.#table.add(name, value, name.length, value.length);
    return { name, value, neverIndex };
  }
}

type Representation = 'indexed' | 'incremental' | 'size-update' | 'without-indexing' | 'never-indexed';

/** Reads the leading bits that name a field representation (RFC 7541, section 6). */
function representation(decoder: HpackDecoder): Representation {
  if (decoder.decodeBit() === 1) return 'indexed'; // 1xxxxxxx (6.1)
  if (decoder.decodeBit() === 1) return 'incremental'; // 01xxxxxx (6.2.1)
  if (decoder.decodeBit() === 1) return 'size-update'; // 001xxxxx (6.3)
  return decoder.decodeBit() === 1 ? 'never-indexed' : 'without-indexing'; // 0001xxxx, 0000xxxx (6.2.3, 6.2.2)
}

function octets(decoded: Buffer | number[]): string {
  return (Buffer.isBuffer(decoded) ? decoded : Buffer.from(decoded)).toString('latin1');
}
