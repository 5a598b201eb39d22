import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MethodDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { kmsServices, PROTO_DIR } from '../src/grpc/index.js';
import { V1BETA1_CODECS, V2_CODECS } from '../src/grpc/kms-codecs.js';
import type { FieldSpec, MessageCodec } from '../src/grpc/message-codec.js';

// The KMS services are hand-written codecs instead of .proto files parsed at start. These tests hold them
// to what they replace: the .proto files (same messages, field numbers, types) and @grpc/proto-loader with
// the options the server used (the same bytes out, the same objects in, the same bodies refused).

const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

/** What proto-loader gives for a message type: its descriptor (`type`). */
interface MessageTypeDefinition {
  readonly type: unknown;
}

type Api = 'v2' | 'v1beta1';
type Method = MethodDefinition<object, object>;

const reference: Record<Api, Record<string, Method>> = {
  v2: loadSync('kms-v2.proto', LOADER_OPTIONS)['v2.KeyManagementService'] as unknown as Record<
    string,
    Method
  >,
  v1beta1: loadSync('kms-v1beta1.proto', LOADER_OPTIONS)['v1beta1.KeyManagementService'] as unknown as Record<
    string,
    Method
  >,
};
const ours = kmsServices();
const CODECS: Record<Api, Record<string, MessageCodec<unknown>>> = { v2: V2_CODECS, v1beta1: V1BETA1_CODECS };

function methodPairs(): { api: Api; name: string; theirs: Method; mine: Method }[] {
  return (['v2', 'v1beta1'] as const).flatMap((api) =>
    Object.entries(reference[api]).map(([name, theirs]) => {
      const mine = ours[api].service[name];
      assert.ok(mine !== undefined, `${api} ${name} is served`);
      return { api, name, theirs, mine: mine as Method };
    }),
  );
}

/** A message type's fields as the .proto declares them (from the descriptor proto-loader builds). */
function protoFields(type: MessageTypeDefinition): FieldSpec[] {
  interface FieldDescriptor {
    name: string;
    number: number;
    type: string;
    label: string;
    typeName: string;
  }
  interface Descriptor {
    field: FieldDescriptor[];
    nestedType: { name: string; field: FieldDescriptor[]; options?: { mapEntry?: boolean } | null }[];
  }
  const descriptor = type.type as Descriptor;
  return descriptor.field.map((field): FieldSpec => {
    if (field.type === 'TYPE_STRING' && field.label === 'LABEL_OPTIONAL') {
      return { name: field.name, id: field.number, kind: 'string' };
    }
    if (field.type === 'TYPE_BYTES' && field.label === 'LABEL_OPTIONAL') {
      return { name: field.name, id: field.number, kind: 'bytes' };
    }
    const entry = descriptor.nestedType.find(
      (nested) => field.typeName === nested.name || field.typeName.endsWith(`.${nested.name}`),
    );
    assert.equal(`${field.label} ${field.type}`, 'LABEL_REPEATED TYPE_MESSAGE', field.name);
    assert.ok(entry?.options?.mapEntry === true, `${field.name}: a field type the codecs do not have`);
    assert.deepEqual(
      entry.field.map((part) => [part.name, part.number, part.type]),
      [
        ['key', 1, 'TYPE_STRING'],
        ['value', 2, 'TYPE_BYTES'],
      ],
      `${field.name}: a map the codecs do not have`,
    );
    return { name: field.name, id: field.number, kind: 'map<string,bytes>' };
  });
}

/** proto-loader leaves a map entry without a value as `[]`; ours is an empty Buffer. Otherwise equal. */
function normalized(decoded: unknown): unknown {
  if (typeof decoded !== 'object' || decoded === null) return decoded;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(decoded as Record<string, unknown>)) {
    if (Array.isArray(value)) out[key] = Buffer.from(value as number[]);
    else if (typeof value === 'object' && value !== null && !Buffer.isBuffer(value)) {
      const map: Record<string, unknown> = {};
      for (const [mapKey, mapValue] of Object.entries(value)) {
        Object.defineProperty(map, mapKey, {
          value: Array.isArray(mapValue) ? Buffer.from(mapValue as number[]) : mapValue,
          enumerable: true,
          configurable: true,
          writable: true,
        });
      }
      out[key] = map;
    } else out[key] = value;
  }
  return out;
}

type Outcome = { ok: true; value: unknown } | { ok: false };

function attempt(decode: (bytes: Buffer) => unknown, bytes: Buffer): Outcome {
  try {
    return { ok: true, value: normalized(decode(bytes)) };
  } catch {
    return { ok: false };
  }
}

function assertSameDecoding(theirs: Method, mine: Method, bytes: Buffer, what: string): void {
  const expected = attempt(theirs.requestDeserialize, bytes);
  const actual = attempt(mine.requestDeserialize, bytes);
  assert.deepStrictEqual(actual, expected, `${what}: ${bytes.toString('hex')}`);
  const expectedResponse = attempt(theirs.responseDeserialize, bytes);
  const actualResponse = attempt(mine.responseDeserialize, bytes);
  assert.deepStrictEqual(actualResponse, expectedResponse, `${what} (response): ${bytes.toString('hex')}`);
}

/** xorshift32 from a fixed seed, so a failure repeats. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}

const PIECES = [
  'a',
  'Z',
  '0',
  '.',
  '-',
  '/',
  ' ',
  'é',
  'ß',
  '中',
  '😀',
  '\u0000',
  '\u007f',
  '\u0080',
  '\uffff',
];

function randomString(next: () => number): string {
  const length = next() < 0.1 ? 0 : next() < 0.8 ? Math.floor(next() * 12) : Math.floor(next() * 200);
  let text = '';
  for (let i = 0; i < length; i++) text += PIECES[Math.floor(next() * PIECES.length)] ?? 'a';
  return text;
}

function randomBytes(next: () => number): Buffer {
  const roll = next();
  const length =
    roll < 0.1
      ? 0
      : roll < 0.8
        ? Math.floor(next() * 64)
        : roll < 0.97
          ? 100 + Math.floor(next() * 300)
          : 17_000;
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(next() * 256);
  return bytes;
}

function randomMessage(codec: MessageCodec<unknown>, next: () => number): Record<string, unknown> {
  const message: Record<string, unknown> = {};
  for (const field of codec.fields) {
    if (next() < 0.15) continue;
    switch (field.kind) {
      case 'string':
        message[field.name] = randomString(next);
        break;
      case 'bytes':
        message[field.name] = next() < 0.5 ? randomBytes(next) : new Uint8Array(randomBytes(next));
        break;
      case 'map<string,bytes>': {
        const map: Record<string, Uint8Array> = {};
        const count = next() < 0.3 ? 0 : Math.floor(next() * 5);
        for (let i = 0; i < count; i++) map[randomString(next)] = randomBytes(next);
        message[field.name] = map;
        break;
      }
    }
  }
  return message;
}

/** Bodies that break the wire format in each way a decoder can meet, and some that only look odd. */
const EDGE_BODIES: Record<string, number[]> = {
  empty: [],
  'wire type 7': [0x0f],
  'wire type 7, field 9': [0x4f],
  'wire type 6': [0x0e],
  'an end-group with no group': [0x0c],
  'field number 0': [0x00],
  'field 0, length-delimited': [0x02, 0x00],
  'a varint cut short': [0x08, 0xff],
  'a tag cut short': [0x80],
  'a 10-byte tag': [0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0a, 0x00],
  'a 10-byte tag with garbage past 32 bits': [
    0x8a, 0x80, 0x80, 0x80, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00,
  ],
  'an 11-byte varint field': [0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
  'a 5-byte tag near the end': [0x8a, 0x80, 0x80, 0x80],
  'unknown fields of every wire type': [
    0x78, 0x01, 0x79, 1, 2, 3, 4, 5, 6, 7, 8, 0x7a, 0x02, 9, 9, 0x7b, 0x08, 0x01, 0x7c, 0x7d, 1, 2, 3, 4,
  ],
  'a group left open': [0x7b, 0x08, 0x01],
  'groups 101 deep': [...Array<number>(101).fill(0x7b), ...Array<number>(101).fill(0x7c)],
  'groups 100 deep': [...Array<number>(100).fill(0x7b), ...Array<number>(100).fill(0x7c)],
  'a length past the end': [0x0a, 0x05, 1, 2],
  'a string cut at the end': [0x12, 0x05, 0x61, 0x62],
  'field 1 as a varint': [0x08, 0x00],
  'field 2 as fixed32': [0x15, 0x01, 0x02, 0x03, 0x04],
  'a field twice (the last one wins)': [
    0x0a, 0x01, 0x01, 0x0a, 0x01, 0x02, 0x12, 0x01, 0x61, 0x12, 0x01, 0x62,
  ],
  'a map entry': [
    0x22, 0x07, 0x0a, 0x01, 0x61, 0x12, 0x02, 1, 2, 0x1a, 0x07, 0x0a, 0x01, 0x61, 0x12, 0x02, 1, 2,
  ],
  'a map entry without a value': [0x22, 0x03, 0x0a, 0x01, 0x61, 0x1a, 0x03, 0x0a, 0x01, 0x61],
  'a map entry without a key': [0x22, 0x03, 0x12, 0x01, 0x07, 0x1a, 0x03, 0x12, 0x01, 0x07],
  'a map entry with an unknown field': [
    0x22, 0x05, 0x0a, 0x01, 0x61, 0x18, 0x05, 0x1a, 0x05, 0x0a, 0x01, 0x61, 0x18, 0x05,
  ],
  'a map entry past the end': [0x22, 0x09, 0x0a, 0x01, 0x61, 0x1a, 0x09, 0x0a, 0x01, 0x61],
  'a map entry whose value overruns it': [
    0x22, 0x04, 0x12, 0x05, 1, 2, 3, 4, 5, 0x1a, 0x04, 0x12, 0x05, 1, 2, 3, 4, 5,
  ],
  'a map entry whose key overruns it': [
    0x22, 0x03, 0x0a, 0x05, 0x61, 0x62, 0x63, 0x1a, 0x03, 0x0a, 0x05, 0x61, 0x62, 0x63,
  ],
  'a map key twice': [
    0x22, 0x06, 0x0a, 0x01, 0x61, 0x12, 0x01, 1, 0x22, 0x06, 0x0a, 0x01, 0x61, 0x12, 0x01, 2, 0x1a, 0x06,
    0x0a, 0x01, 0x61, 0x12, 0x01, 1, 0x1a, 0x06, 0x0a, 0x01, 0x61, 0x12, 0x01, 2,
  ],
  'a __proto__ map key': [
    0x22,
    0x0e,
    0x0a,
    0x09,
    ...Buffer.from('__proto__'),
    0x12,
    0x01,
    0x05,
    0x1a,
    0x0e,
    0x0a,
    0x09,
    ...Buffer.from('__proto__'),
    0x12,
    0x01,
    0x05,
  ],
  'invalid UTF-8 in a string': [0x12, 0x03, 0xff, 0xfe, 0x80, 0x1a, 0x02, 0xc3, 0x28],
};

describe('KMS codecs', () => {
  it('declare the messages of the .proto files: the same fields, numbers and types', () => {
    for (const { api, name, theirs, mine } of methodPairs()) {
      assert.equal(mine.path, theirs.path);
      assert.equal(mine.originalName, theirs.originalName);
      assert.equal(mine.requestStream, false);
      assert.equal(mine.responseStream, false);
      const pairs = [
        [(theirs as unknown as { requestType: MessageTypeDefinition }).requestType, 'Request'],
        [(theirs as unknown as { responseType: MessageTypeDefinition }).responseType, 'Response'],
      ] as const;
      for (const [type, role] of pairs) {
        const typeName = (type.type as { name: string }).name;
        const codec = CODECS[api][typeName];
        assert.ok(codec !== undefined, `${api}.${typeName} (${name} ${role}) has a codec`);
        assert.equal(codec.name, `${api}.${typeName}`);
        assert.deepEqual(
          [...codec.fields].sort((a, b) => a.id - b.id),
          protoFields(type).sort((a, b) => a.id - b.id),
          `${api}.${typeName}`,
        );
      }
    }
    // No codec without a message in the .proto files.
    assert.deepEqual(Object.keys(V2_CODECS).sort(), [
      'DecryptRequest',
      'DecryptResponse',
      'EncryptRequest',
      'EncryptResponse',
      'StatusRequest',
      'StatusResponse',
    ]);
    assert.deepEqual(Object.keys(ours.v2.service).sort(), Object.keys(reference.v2).sort());
    assert.deepEqual(Object.keys(ours.v1beta1.service).sort(), Object.keys(reference.v1beta1).sort());
  });

  it('write golden messages byte for byte', () => {
    const golden: [Api, string, 'request' | 'response', object, string][] = [
      ['v2', 'Status', 'request', {}, ''],
      [
        'v2',
        'Status',
        'response',
        { version: 'v2', healthz: 'ok', key_id: 'k1' },
        '0a02763212026f6b1a026b31',
      ],
      ['v2', 'Encrypt', 'request', { plaintext: Buffer.from([1, 2, 3]), uid: 'u' }, '0a03010203120175'],
      ['v2', 'Encrypt', 'request', { plaintext: Buffer.alloc(0), uid: '' }, '0a001200'],
      [
        'v2',
        'Encrypt',
        'response',
        { ciphertext: Buffer.from([9]), key_id: 'k', annotations: { 'a.b': Buffer.from([7]) } },
        '0a010912016b1a080a03612e62120107',
      ],
      [
        'v2',
        'Decrypt',
        'request',
        { ciphertext: Buffer.from([9]), uid: '', key_id: 'k', annotations: { x: Buffer.alloc(0) } },
        '0a010912001a016b22050a01781200',
      ],
      ['v2', 'Decrypt', 'response', { plaintext: Buffer.alloc(200, 1) }, `0ac801${'01'.repeat(200)}`],
      ['v1beta1', 'Version', 'request', { version: 'v1beta1' }, '0a0776316265746131'],
      [
        'v1beta1',
        'Version',
        'response',
        { version: 'v1beta1', runtime_name: 't', runtime_version: '1' },
        '0a07763162657461311201741a0131',
      ],
      [
        'v1beta1',
        'Encrypt',
        'request',
        { version: 'v1beta1', plain: Buffer.from('hi') },
        '0a077631626574613112026869',
      ],
      ['v1beta1', 'Decrypt', 'response', { plain: Buffer.from('hi') }, '0a026869'],
    ];
    for (const [api, name, role, message, hex] of golden) {
      const theirs = reference[api][name] as Method;
      const mine = ours[api].service[name] as Method;
      const serialize = role === 'request' ? 'requestSerialize' : 'responseSerialize';
      assert.equal(mine[serialize](message).toString('hex'), hex, `${api} ${name} ${role}`);
      assert.equal(theirs[serialize](message).toString('hex'), hex, `${api} ${name} ${role} (proto-loader)`);
    }
  });

  it('write and read random messages exactly as proto-loader did', () => {
    const next = random(0x5eed_1234);
    for (const { api, name, theirs, mine } of methodPairs()) {
      for (const role of ['request', 'response'] as const) {
        const typeName = (
          (theirs as unknown as Record<string, MessageTypeDefinition>)[`${role}Type`]?.type as {
            name: string;
          }
        ).name;
        const codec = CODECS[api][typeName];
        assert.ok(codec !== undefined);
        const serialize = role === 'request' ? 'requestSerialize' : 'responseSerialize';
        const deserialize = role === 'request' ? 'requestDeserialize' : 'responseDeserialize';
        for (let i = 0; i < 300; i++) {
          const message = randomMessage(codec, next);
          const expected = theirs[serialize](message);
          const actual = mine[serialize](message);
          assert.ok(actual.equals(expected), `${api} ${name} ${role} #${i}: ${actual.toString('hex')}`);
          assert.deepStrictEqual(
            normalized(mine[deserialize](actual)),
            normalized(theirs[deserialize](expected)),
            `${api} ${name} ${role} #${i} read back`,
          );
        }
      }
    }
  });

  it('accept and refuse the same bodies, and read them to the same objects', () => {
    for (const { api, name, theirs, mine } of methodPairs()) {
      for (const [what, body] of Object.entries(EDGE_BODIES)) {
        assertSameDecoding(theirs, mine, Buffer.from(body), `${api} ${name}: ${what}`);
      }
    }
    // The cases hostile clients send must be refused, not merely refused alike.
    for (const { mine } of methodPairs()) {
      for (const what of ['wire type 7', 'wire type 6', 'an end-group with no group', 'field number 0']) {
        assert.throws(() => mine.requestDeserialize(Buffer.from(EDGE_BODIES[what] ?? [])), what);
      }
      assert.throws(() => mine.requestDeserialize(Buffer.from(EDGE_BODIES['a varint cut short'] ?? [])));
    }
  });

  it('agree on random mutations of valid messages and on random garbage', () => {
    const next = random(0x0bad_f00d);
    for (const { api, name, theirs, mine } of methodPairs()) {
      const typeName = (
        (theirs as unknown as { requestType: MessageTypeDefinition }).requestType.type as {
          name: string;
        }
      ).name;
      const codec = CODECS[api][typeName];
      assert.ok(codec !== undefined);
      for (let i = 0; i < 400; i++) {
        const valid = theirs.requestSerialize(randomMessage(codec, next));
        const body = Buffer.from(valid);
        const roll = next();
        let mutated: Buffer;
        if (roll < 0.3 && body.length > 0) {
          // Flip bits in a few bytes.
          for (let flips = 1 + Math.floor(next() * 3); flips > 0; flips--) {
            const at = Math.floor(next() * body.length);
            body[at] = (body[at] ?? 0) ^ (1 << Math.floor(next() * 8));
          }
          mutated = body;
        } else if (roll < 0.5) {
          mutated = body.subarray(0, Math.floor(next() * (body.length + 1)));
        } else if (roll < 0.7) {
          const at = Math.floor(next() * (body.length + 1));
          const inserted = Buffer.from(
            Array.from({ length: 1 + Math.floor(next() * 4) }, () => Math.floor(next() * 256)),
          );
          mutated = Buffer.concat([body.subarray(0, at), inserted, body.subarray(at)]);
        } else {
          mutated = Buffer.from(
            Array.from({ length: Math.floor(next() * 24) }, () => Math.floor(next() * 256)),
          );
        }
        assertSameDecoding(theirs, mine, mutated, `${api} ${name} #${i}`);
      }
    }
  });

  it('write strings as well-formed UTF-8, where protobufjs wrote a lone surrogate of a short string as is', () => {
    const mine = ours.v2.service['Status'] as Method;
    const written = mine.responseSerialize({ version: 'v2', healthz: 'bad \ud800', key_id: 'k' });
    // U+FFFD (ef bf bd) in place of the lone surrogate: what Go's protobuf accepts as a string.
    assert.equal(written.toString('hex'), '0a027632120762616420efbfbd1a016b');
  });

  it('refuse a bytes field that is not bytes and a map that is not an object (a falsy one is left out)', () => {
    const encrypt = ours.v2.service['Encrypt'] as Method;
    assert.throws(() => encrypt.requestSerialize({ plaintext: 'text' }), /bytes/);
    assert.throws(() => encrypt.responseSerialize({ annotations: 5 }), /object expected/);
    assert.throws(() => encrypt.responseSerialize({ annotations: { a: 'x' } }), /bytes/);
    assert.throws(() => encrypt.requestSerialize([]), /got array instead/);
    // protobufjs leaves a falsy map out rather than refusing it; so does the codec.
    const theirs = reference.v2['Encrypt'] as Method;
    for (const annotations of [0, '', false]) {
      const message = { ciphertext: Buffer.from([1]), annotations };
      assert.equal(
        encrypt.responseSerialize(message).toString('hex'),
        theirs.responseSerialize(message).toString('hex'),
      );
    }
  });
});
