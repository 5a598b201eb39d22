import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeEnvelope, digestKeyId, encodeEnvelope, isTrousseauError } from '../src/index.js';

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
    future[3] = 2;
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
