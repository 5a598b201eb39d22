import { ProtobufReader } from './protobuf-reader.js';
import { ProtobufWriter } from './protobuf-writer.js';

/** The field types the KMS messages use (proto3 `string`, `bytes` and `map<string, bytes>`). */
export type FieldKind = 'string' | 'bytes' | 'map<string,bytes>';

export interface FieldSpec {
  /** The field's name as the .proto spells it (keepCase). */
  readonly name: string;
  readonly id: number;
  readonly kind: FieldKind;
}

/**
 * One protobuf message type: its fields as the .proto declares them, and its wire codec. What `decode`
 * returns is what @grpc/proto-loader returned with `keepCase` and `defaults` (every field present,
 * bytes as Buffer); `encode` takes what proto-loader's serializer took and writes the same bytes.
 */
export interface MessageCodec<T> {
  /** The fully qualified name, e.g. `v2.EncryptRequest`. */
  readonly name: string;
  readonly fields: readonly FieldSpec[];
  encode(message: object): Buffer;
  decode(bytes: Buffer): T;
}

const WIRE_LENGTH_DELIMITED = 2;
/** A map entry's key (field 1) and value (field 2) tags, both length-delimited. */
const ENTRY_KEY_TAG = (1 << 3) | WIRE_LENGTH_DELIMITED;
const ENTRY_VALUE_TAG = (2 << 3) | WIRE_LENGTH_DELIMITED;

type Decoded = Record<string, unknown>;
type BytesMap = Record<string, Buffer>;

/** Sets `map[key]` as an own property, `__proto__` included (as protobufjs does). */
function setEntry<V>(map: Record<string, V>, key: string, value: V): void {
  if (key === '__proto__') {
    Object.defineProperty(map, key, { value, enumerable: true, configurable: true, writable: true });
  } else {
    map[key] = value;
  }
}

function bytesOf(value: unknown, where: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`${where}: bytes (a Buffer or Uint8Array) expected`);
}

/** A string field's text; numbers and booleans are written as their text, as protobufjs wrote them. */
function textOf(value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  throw new TypeError(`${where}: string expected`);
}

/** Reads one map entry into `map`; the entry must end exactly at its declared length. */
function readEntry(reader: ProtobufReader, map: BytesMap, messageEnd: number): void {
  const entryEnd = reader.uint32() + reader.pos;
  if (entryEnd > reader.len) throw new RangeError('index out of range');
  reader.len = entryEnd;
  let key = '';
  let value: Buffer | undefined;
  while (reader.pos < entryEnd) {
    const tag = reader.uint32();
    switch (tag >>> 3) {
      case 1:
        key = reader.string();
        break;
      case 2:
        value = reader.bytes();
        break;
      default:
        reader.skipType(tag & 7);
        break;
    }
  }
  if (reader.pos !== entryEnd) throw new RangeError('index out of range');
  reader.len = messageEnd;
  // protobufjs leaves an entry without a value as an empty array; an empty Buffer is what the type says.
  setEntry(map, key, value ?? Buffer.alloc(0));
}

function defaultOf(kind: FieldKind): unknown {
  switch (kind) {
    case 'string':
      return '';
    case 'bytes':
      return Buffer.alloc(0);
    case 'map<string,bytes>':
      return {};
  }
}

/** A field to write, measured: its tag, the value and the value's length on the wire. */
interface Part {
  readonly tag: number;
  readonly field: FieldSpec;
  readonly value: unknown;
  readonly length: number;
}

/**
 * Builds the codec of a message type from its fields. Fields are written in field-number order, each one
 * that is set (not `undefined` or `null`) even when empty, as protobufjs writes proto3 fields it is given.
 */
export function messageCodec<T>(name: string, fields: readonly FieldSpec[]): MessageCodec<T> {
  const sorted = [...fields].sort((a, b) => a.id - b.id);
  const byId = (id: number): FieldSpec | undefined => sorted.find((field) => field.id === id);
  const ordered = [
    ...sorted.filter((field) => field.kind === 'map<string,bytes>'),
    ...sorted.filter((field) => field.kind !== 'map<string,bytes>'),
  ];

  function measure(message: Record<string, unknown>): { parts: Part[]; size: number } {
    const parts: Part[] = [];
    let size = 0;
    for (const field of sorted) {
      const raw = message[field.name];
      if (raw === undefined || raw === null) continue;
      const tag = ((field.id << 3) | WIRE_LENGTH_DELIMITED) >>> 0;
      const tagSize = ProtobufWriter.varintSize(tag);
      const where = `.${name}.${field.name}`;
      switch (field.kind) {
        case 'string': {
          const text = textOf(raw, where);
          const length = Buffer.byteLength(text, 'utf8');
          parts.push({ tag, field, value: text, length });
          size += tagSize + ProtobufWriter.varintSize(length) + length;
          break;
        }
        case 'bytes': {
          const bytes = bytesOf(raw, where);
          parts.push({ tag, field, value: bytes, length: bytes.length });
          size += tagSize + ProtobufWriter.varintSize(bytes.length) + bytes.length;
          break;
        }
        case 'map<string,bytes>': {
          // As protobufjs: a map that is falsy (0, '', false) is left out, any other non-object refused.
          if (!raw) break;
          if (typeof raw !== 'object') throw new TypeError(`${where}: object expected`);
          const map = raw as Record<string, unknown>;
          for (const key of Object.keys(map)) {
            const value = bytesOf(map[key], `${where}[${JSON.stringify(key)}]`);
            const keyLength = Buffer.byteLength(key, 'utf8');
            const length =
              1 +
              ProtobufWriter.varintSize(keyLength) +
              keyLength +
              1 +
              ProtobufWriter.varintSize(value.length) +
              value.length;
            parts.push({ tag, field, value: [key, keyLength, value], length });
            size += tagSize + ProtobufWriter.varintSize(length) + length;
          }
          break;
        }
      }
    }
    return { parts, size };
  }

  return {
    name,
    fields: sorted,
    encode(message: object): Buffer {
      if (Array.isArray(message)) {
        throw new Error(
          `Failed to serialize message: expected object with ${name} structure, got array instead`,
        );
      }
      const { parts, size } = measure(message as Record<string, unknown>);
      const writer = new ProtobufWriter(size);
      for (const part of parts) {
        writer.uint32(part.tag);
        switch (part.field.kind) {
          case 'string':
            writer.string(part.value as string, part.length);
            break;
          case 'bytes':
            writer.bytes(part.value as Uint8Array);
            break;
          case 'map<string,bytes>': {
            const [key, keyLength, value] = part.value as [string, number, Uint8Array];
            writer.uint32(part.length);
            writer.uint32(ENTRY_KEY_TAG);
            writer.string(key, keyLength);
            writer.uint32(ENTRY_VALUE_TAG);
            writer.bytes(value);
            break;
          }
        }
      }
      return writer.finish();
    },
    decode(bytes: Buffer): T {
      const reader = new ProtobufReader(bytes);
      const end = reader.len;
      const found: Decoded = {};
      while (reader.pos < end) {
        const tag = reader.uint32();
        // As protobufjs: the field number decides how a field is read; its wire type is not checked.
        const field = byId(tag >>> 3);
        if (field === undefined) {
          reader.skipType(tag & 7);
          continue;
        }
        switch (field.kind) {
          case 'string':
            found[field.name] = reader.string();
            break;
          case 'bytes':
            found[field.name] = reader.bytes();
            break;
          case 'map<string,bytes>': {
            const map = (found[field.name] ??= {}) as BytesMap;
            readEntry(reader, map, end);
            break;
          }
        }
      }
      // Maps first, then the other fields by number: the key order proto-loader's objects had.
      const message: Decoded = {};
      for (const field of ordered) message[field.name] = found[field.name] ?? defaultOf(field.kind);
      return message as T;
    },
  };
}
