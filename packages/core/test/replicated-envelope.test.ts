import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  decodeEnvelope,
  decodeReplicatedEnvelope,
  isReplicatedEnvelope,
  isTrousseauError,
  openEnvelope,
  openReplicatedEnvelope,
  replicatedEnvelopeHasKeyId,
  sealReplicatedEnvelope,
} from '../src/index.js';

// Golden vector of envelope format version 4 (replicated: several copies of one data key). These bytes
// are stored in etcd for years: if a change makes this test fail, the change is wrong, not the vector.

const BINDING_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => 0x20 + index));
const PLAINTEXT = Buffer.from('trousseau replicated golden data');
const KEY_ID = 'trousseau-replicated:2:00112233445566778899aabbccddeeff';
const COPIES = [
  {
    instance: 'vault-prod',
    keyId: 'vault:transit/k8s:v3:0123456789abcdef',
    keyRef: '',
    payload: Buffer.from('vault:v3:AAAA'),
  },
  {
    instance: 'aws-backup',
    keyId: 'aws:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab:m1',
    keyRef: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    payload: Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'),
  },
] as const;
const GOLDEN_V4 =
  '54525304' + // magic, version 4
  'd95cbbf6ff834715' + // SHA-256(KEY_ID)[0..8]
  '02' + // two copies
  '0a' +
  '7661756c742d70726f64' + // "vault-prod"
  'c6cddbee52df5ce9' + // SHA-256 of its key id
  '00' + // no key reference
  '000d' +
  '7661756c743a76333a41414141' + // "vault:v3:AAAA"
  '0a' +
  '6177732d6261636b7570' + // "aws-backup"
  '5d94a096ea4c61ec' +
  '4b' +
  '61726e3a6177733a6b6d733a65752d776573742d313a3131313132323232333333333a6b65792f31323334616263642d313261622d333463642d353665662d313233343536373839306162' +
  '0010' +
  '000102030405060708090a0b0c0d0e0f' +
  'c0ea1e75a15d1338ae1acda1789896b1'; // tag

const sha8 = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

/** Opens any envelope as the broker does, with a backend that authenticates nothing. */
function openWithUnauthenticatedBackend(bytes: Buffer): Uint8Array {
  const decrypted = Buffer.concat([BINDING_KEY, PLAINTEXT]);
  if (isReplicatedEnvelope(bytes)) return openReplicatedEnvelope(decodeReplicatedEnvelope(bytes), decrypted);
  return openEnvelope(decodeEnvelope(bytes), decrypted);
}

describe('ciphertext envelope, format version 4 (replicated)', () => {
  it('seals the golden vector exactly, with the tag computed as documented', () => {
    const bytes = sealReplicatedEnvelope(KEY_ID, COPIES, BINDING_KEY);
    assert.equal(bytes.toString('hex'), GOLDEN_V4);
    assert.equal(GOLDEN_V4.slice(8, 24), sha8(KEY_ID));
    assert.equal(GOLDEN_V4.slice(48, 64), sha8(COPIES[0].keyId));
    const tag = createHmac('sha256', BINDING_KEY).update(bytes.subarray(0, -16)).digest().subarray(0, 16);
    assert.deepEqual(bytes.subarray(-16), tag);
  });

  it('decodes and opens the golden vector: every copy, in order, with its key reference', () => {
    const envelope = decodeReplicatedEnvelope(Buffer.from(GOLDEN_V4, 'hex'));
    assert.equal(envelope.version, 4);
    assert.ok(replicatedEnvelopeHasKeyId(envelope, KEY_ID));
    assert.ok(!replicatedEnvelopeHasKeyId(envelope, COPIES[0].keyId));
    assert.deepEqual(
      envelope.copies.map((copy) => [
        copy.instance,
        Buffer.from(copy.keyIdDigest).toString('hex'),
        copy.keyRef,
        Buffer.from(copy.payload).toString('hex'),
      ]),
      COPIES.map((copy) => [copy.instance, sha8(copy.keyId), copy.keyRef, copy.payload.toString('hex')]),
    );
    const opened = openReplicatedEnvelope(envelope, Buffer.concat([BINDING_KEY, PLAINTEXT]));
    assert.equal(Buffer.from(opened).toString(), PLAINTEXT.toString());
  });

  it('refuses every single-bit change, even with a backend that authenticates nothing', () => {
    const good = Buffer.from(GOLDEN_V4, 'hex');
    assert.equal(Buffer.from(openWithUnauthenticatedBackend(good)).toString(), PLAINTEXT.toString());
    let refused = 0;
    for (let bit = 0; bit < good.length * 8; bit++) {
      const changed = Buffer.from(good);
      changed[bit >> 3] = (changed[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      assert.throws(
        () => openWithUnauthenticatedBackend(changed),
        (error: unknown) => isTrousseauError(error) && error.fault === 'client',
        `bit ${bit} (byte ${bit >> 3})`,
      );
      refused++;
    }
    assert.equal(refused, good.length * 8);
  });

  it('is refused when truncated, padded, or with a copy named twice; version byte 4 is two bits from 1 and 2', () => {
    const good = Buffer.from(GOLDEN_V4, 'hex');
    for (const length of [4, 12, 13, 30, good.length - 17, good.length - 1]) {
      assert.throws(() => decodeReplicatedEnvelope(good.subarray(0, length)), /not a Trousseau envelope/);
    }
    assert.throws(
      () => decodeReplicatedEnvelope(Buffer.concat([good, Buffer.of(0)])),
      /not a Trousseau envelope/,
    );
    assert.throws(
      () => sealReplicatedEnvelope(KEY_ID, [COPIES[0], COPIES[0]], BINDING_KEY),
      /two copies of one provider instance/,
    );
    for (let bit = 0; bit < 8; bit++) {
      assert.notEqual(4 ^ (1 << bit), 1);
      assert.notEqual(4 ^ (1 << bit), 2);
    }
  });
});
