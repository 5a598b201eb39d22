import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  bindPlaintext,
  decodeEnvelope,
  digestKeyId,
  encodeEnvelope,
  envelopeHasKeyId,
  isTrousseauError,
  openEnvelope,
  sealEnvelope,
} from '../src/index.js';

// Golden vectors of envelope format version 1. These bytes are stored in etcd for years: if a change
// makes this test fail, the change is wrong, not the vector. Add a new format version instead.
const GOLDEN = [
  {
    name: 'local provider, with a key reference',
    hex:
      '54525301096c6f63616c2d646576b5ccf037bfabcd940c676f6c64656e2d6b65792d31' +
      '000102030405060708090a0b3370b96eb696a77af861f0e4dd8d1d03a3a0e25784142d461854d7a57f1074d7d2a94b2921cc33cd91267c527689a351',
    instance: 'local-dev',
    keyId: 'local:golden-key-1:4ff9abfcabfb4d10',
    keyRef: 'golden-key-1',
    payloadHex:
      '000102030405060708090a0b3370b96eb696a77af861f0e4dd8d1d03a3a0e25784142d461854d7a57f1074d7d2a94b2921cc33cd91267c527689a351',
  },
  {
    name: 'vault provider, no key reference',
    hex: '545253010a7661756c742d70726f64c6cddbee52df5ce9007661756c743a76333a41414141',
    instance: 'vault-prod',
    keyId: 'vault:transit/k8s:v3:0123456789abcdef',
    keyRef: '',
    payloadHex: Buffer.from('vault:v3:AAAA').toString('hex'),
  },
] as const;

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(isTrousseauError(error));
    assert.equal(error.code, code);
    return true;
  });
}

describe('ciphertext envelope, format version 1', () => {
  for (const vector of GOLDEN) {
    it(`encodes the golden vector exactly: ${vector.name}`, () => {
      const bytes = encodeEnvelope({
        instance: vector.instance,
        keyId: vector.keyId,
        keyRef: vector.keyRef,
        payload: Buffer.from(vector.payloadHex, 'hex'),
      });
      assert.equal(bytes.toString('hex'), vector.hex);
    });

    it(`decodes the golden vector: ${vector.name}`, () => {
      const envelope = decodeEnvelope(Buffer.from(vector.hex, 'hex'));
      assert.equal(envelope.instance, vector.instance);
      assert.equal(envelope.keyRef, vector.keyRef);
      assert.deepEqual(Buffer.from(envelope.keyIdDigest), Buffer.from(digestKeyId(vector.keyId)));
      assert.equal(Buffer.from(envelope.payload).toString('hex'), vector.payloadHex);
    });
  }

  it('reads the instance name byte for byte: a high bit set in any name byte is refused', () => {
    // Node's 'ascii' decoding drops the high bit, which let a changed name byte decode as the original.
    const good = Buffer.from(GOLDEN[0].hex, 'hex');
    for (let index = 5; index < 5 + GOLDEN[0].instance.length; index++) {
      const changed = Buffer.from(good);
      changed[index] = (changed[index] ?? 0) | 0x80;
      expectCode(() => decodeEnvelope(changed), 'TROUSSEAU_ERR_CIPHERTEXT_MALFORMED');
    }
  });

  it('refuses a key reference that is not valid UTF-8, rather than decoding it lossily', () => {
    const good = Buffer.from(GOLDEN[0].hex, 'hex');
    const keyRefStart = 5 + GOLDEN[0].instance.length + 8 + 1;
    const changed = Buffer.from(good);
    changed[keyRefStart] = (changed[keyRefStart] ?? 0) | 0x80;
    expectCode(() => decodeEnvelope(changed), 'TROUSSEAU_ERR_CIPHERTEXT_MALFORMED');
  });

  it('opens a version 1 envelope to exactly what the provider decrypted', () => {
    const envelope = decodeEnvelope(Buffer.from(GOLDEN[1].hex, 'hex'));
    assert.equal(envelope.version, 1);
    assert.deepEqual(openEnvelope(envelope, Buffer.from('dek')), Buffer.from('dek'));
  });

  it('starts with the magic "TRS" and version byte 1', () => {
    const bytes = encodeEnvelope({ instance: 'a', keyId: 'k', payload: Buffer.of(1) });
    assert.equal(bytes.subarray(0, 3).toString('ascii'), 'TRS');
    assert.equal(bytes[3], 1);
  });

  it('rejects foreign, truncated and future-version input with precise codes', () => {
    const good = Buffer.from(GOLDEN[0].hex, 'hex');
    expectCode(() => decodeEnvelope(Buffer.from('vault:v1:abc')), 'TROUSSEAU_ERR_CIPHERTEXT_MALFORMED');
    expectCode(() => decodeEnvelope(Buffer.from('k8s:enc:kms:v2:')), 'TROUSSEAU_ERR_CIPHERTEXT_MALFORMED');
    for (const length of [0, 2, 3, 4, 5, 10, 14, 22, 23, 30, 35]) {
      expectCode(() => decodeEnvelope(good.subarray(0, length)), 'TROUSSEAU_ERR_CIPHERTEXT_MALFORMED');
    }
    const future = Buffer.from(good);
    future[3] = 3; // the first version this build does not read
    expectCode(() => decodeEnvelope(future), 'TROUSSEAU_ERR_CIPHERTEXT_UNSUPPORTED_VERSION');
    const badName = Buffer.from(good);
    badName[5] = 0x41; // 'A': names are lowercase
    expectCode(() => decodeEnvelope(badName), 'TROUSSEAU_ERR_CIPHERTEXT_MALFORMED');
  });

  it('refuses to encode what it could not decode', () => {
    assert.throws(() => encodeEnvelope({ instance: 'Bad_Name', keyId: 'k', payload: Buffer.of(1) }));
    assert.throws(() => encodeEnvelope({ instance: 'a', keyId: 'k', payload: Buffer.alloc(0) }));
    assert.throws(() =>
      encodeEnvelope({ instance: 'a', keyId: 'k', keyRef: 'x'.repeat(256), payload: Buffer.of(1) }),
    );
  });
});

// Golden vectors of envelope format version 2: the provider encrypted `binding key | plaintext`, and a
// 16-byte tag, HMAC-SHA256 under the binding key of every byte before it, ends the envelope. As permanent
// as version 1's: if a change makes this test fail, the change is wrong.
const GOLDEN_V2 = [
  {
    name: 'local provider, with a key reference',
    // payload: AES-256-GCM under key 00..1f, nonce 00..0b, associated data
    // "trousseau-local/v1/golden-key-1", of binding key 20..3f | "trousseau golden vector: 32 byte"
    hex:
      '54525302096c6f63616c2d646576b5ccf037bfabcd940c676f6c64656e2d6b65792d31' +
      '000102030405060708090a0b6723f438e1c0e43ca568bda09dc45642b3e7b507c44e694b005edfbe21543e8d7562c189dcb277f901841882e4e34d56ce2f05ee2eb9d1e01fa418397a9a818b4ae5ba35556ae5a12361b18a5c0affd5' +
      '926a2f4320dca590557ae5ec3cfe9427',
    instance: 'local-dev',
    keyId: 'local:golden-key-1:4ff9abfcabfb4d10',
    keyRef: 'golden-key-1',
    payloadHex:
      '000102030405060708090a0b6723f438e1c0e43ca568bda09dc45642b3e7b507c44e694b005edfbe21543e8d7562c189dcb277f901841882e4e34d56ce2f05ee2eb9d1e01fa418397a9a818b4ae5ba35556ae5a12361b18a5c0affd5',
    bindingKeyHex: '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
    plaintext: 'trousseau golden vector: 32 byte',
  },
  {
    name: 'vault provider, no key reference',
    hex: '545253020a7661756c742d70726f64c6cddbee52df5ce9007661756c743a76333a414141412fd43b50e61072b8e50b585681667a0f',
    instance: 'vault-prod',
    keyId: 'vault:transit/k8s:v3:0123456789abcdef',
    keyRef: '',
    payloadHex: Buffer.from('vault:v3:AAAA').toString('hex'),
    bindingKeyHex: '404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f',
    plaintext: 'a data key',
  },
] as const;

/** Opens an envelope the way the broker does, with a backend that authenticates nothing: it always
 * answers `decrypted`, so only the envelope's own tag can tell a changed byte. */
function openWithUnauthenticatedBackend(bytes: Buffer, decrypted: Buffer): Uint8Array {
  return openEnvelope(decodeEnvelope(bytes), decrypted);
}

describe('ciphertext envelope, format version 2', () => {
  for (const vector of GOLDEN_V2) {
    const bindingKey = Buffer.from(vector.bindingKeyHex, 'hex');
    const decrypted = Buffer.concat([bindingKey, Buffer.from(vector.plaintext)]);

    it(`seals the golden vector exactly: ${vector.name}`, () => {
      const bytes = sealEnvelope(
        {
          instance: vector.instance,
          keyId: vector.keyId,
          keyRef: vector.keyRef,
          payload: Buffer.from(vector.payloadHex, 'hex'),
        },
        bindingKey,
      );
      assert.equal(bytes.toString('hex'), vector.hex);
      // The tag, computed here without the module: HMAC-SHA256 under the binding key, first 16 bytes.
      const tag = createHmac('sha256', bindingKey).update(bytes.subarray(0, -16)).digest().subarray(0, 16);
      assert.deepEqual(bytes.subarray(-16), tag);
    });

    it(`decodes and opens the golden vector: ${vector.name}`, () => {
      const envelope = decodeEnvelope(Buffer.from(vector.hex, 'hex'));
      assert.equal(envelope.version, 2);
      assert.equal(envelope.instance, vector.instance);
      assert.equal(envelope.keyRef, vector.keyRef);
      assert.ok(envelopeHasKeyId(envelope, vector.keyId));
      assert.equal(Buffer.from(envelope.payload).toString('hex'), vector.payloadHex);
      assert.equal(Buffer.from(openEnvelope(envelope, decrypted)).toString(), vector.plaintext);
    });

    it(`refuses every single-bit change, even with a backend that authenticates nothing: ${vector.name}`, () => {
      const good = Buffer.from(vector.hex, 'hex');
      let refused = 0;
      for (let bit = 0; bit < good.length * 8; bit++) {
        const changed = Buffer.from(good);
        changed[bit >> 3] = (changed[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        assert.throws(
          () => openWithUnauthenticatedBackend(changed, decrypted),
          (error: unknown) => isTrousseauError(error) && error.fault === 'client',
          `bit ${bit} (byte ${bit >> 3})`,
        );
        refused++;
      }
      assert.equal(refused, good.length * 8);
    });
  }

  it('refuses a wrong binding key, a short provider answer and a missing tag', () => {
    const vector = GOLDEN_V2[1];
    const good = Buffer.from(vector.hex, 'hex');
    const other = Buffer.concat([Buffer.alloc(32, 7), Buffer.from(vector.plaintext)]);
    expectCode(() => openWithUnauthenticatedBackend(good, other), 'TROUSSEAU_ERR_CIPHERTEXT_INVALID');
    expectCode(
      () => openWithUnauthenticatedBackend(good, Buffer.from(vector.bindingKeyHex, 'hex')),
      'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
    );
    expectCode(
      () => decodeEnvelope(good.subarray(0, good.length - 16)),
      'TROUSSEAU_ERR_CIPHERTEXT_MALFORMED',
    );
  });

  it('binds a fresh random key each time, and a version 1 reader cannot take a version 2 envelope for its own', () => {
    const first = bindPlaintext(Buffer.from('k'));
    const second = bindPlaintext(Buffer.from('k'));
    assert.equal(first.bindingKey.length, 32);
    assert.notDeepEqual(first.bindingKey, second.bindingKey);
    assert.deepEqual(first.plaintext.subarray(32), Buffer.from('k'));
    // A single bit never turns version byte 2 into 1: the versions differ in two bits.
    for (let bit = 0; bit < 8; bit++) assert.notEqual(2 ^ (1 << bit), 1);
  });
});
