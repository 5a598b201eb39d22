// Types for the parts of hpack.js (https://github.com/indutny/hpack.js) that the header-block decoder uses:
// its bit-level decoder (integers, strings, Huffman) and its dynamic table. The package ships no types.
declare module 'hpack.js' {
  export interface HpackTableEntry {
    readonly name: string;
    readonly value: string;
  }
  export interface HpackTable {
    lookup(index: number): HpackTableEntry;
    add(name: string, value: string, nameSize: number, valueSize: number): void;
    updateSize(size: number): void;
  }
  export interface HpackDecoder {
    push(chunk: Buffer): void;
    isEmpty(): boolean;
    decodeBit(): number;
    decodeInt(): number;
    /** A raw string as a Buffer, a Huffman-coded one as its decoded octets. */
    decodeStr(): Buffer | number[];
  }
  const hpack: {
    readonly decoder: { create(): HpackDecoder };
    readonly table: { create(options: { maxSize: number }): HpackTable };
  };
  export default hpack;
}
