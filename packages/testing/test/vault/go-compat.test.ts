// The emulator's copies of Go behaviour Vault shows on the wire: strict base64 and duration texts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { formatGoDuration, parseDurationMs } from '../../src/vault/duration.js';
import { goBase64Decode } from '../../src/vault/go-base64.js';

describe('Go-compatible base64 (encoding/base64 StdEncoding)', () => {
  it('decodes what Go decodes, including line breaks', () => {
    for (let length = 0; length < 40; length++) {
      const bytes = randomBytes(length);
      assert.deepEqual(goBase64Decode(bytes.toString('base64')), bytes);
    }
    assert.deepEqual(goBase64Decode('aGVs\nbG8='), Buffer.from('hello'));
  });

  it('refuses what Go refuses, at the byte offset Go reports', () => {
    const cases: Array<[string, number]> = [
      ['%%%not-base64', 0],
      ['aGVsbG8', 4],
      ['AAA', 0],
      ['AAAA=', 4],
      ['AA=A', 2],
      ['AA==AAAA', 4],
      ['aGVsbG8=!', 8],
      ['aGV-bG8=', 3],
      ['A', 0],
    ];
    for (const [input, offset] of cases) {
      assert.throws(
        () => goBase64Decode(input),
        { message: `illegal base64 data at input byte ${offset}` },
        input,
      );
    }
  });
});

describe('Go durations', () => {
  it('parses Vault duration inputs', () => {
    assert.equal(parseDurationMs('60s'), 60_000);
    assert.equal(parseDurationMs('1h30m'), 5_400_000);
    assert.equal(parseDurationMs('90'), 90_000);
    assert.equal(parseDurationMs(45), 45_000);
    assert.equal(parseDurationMs(undefined), 0);
    assert.equal(parseDurationMs('soon'), undefined);
  });

  it('prints like time.Duration.String()', () => {
    assert.equal(formatGoDuration(60_000), '1m0s');
    assert.equal(formatGoDuration(3_600_000), '1h0m0s');
    assert.equal(formatGoDuration(29_500), '29.5s');
    assert.equal(formatGoDuration(1_500), '1.5s');
    assert.equal(formatGoDuration(250), '250ms');
    assert.equal(formatGoDuration(0), '0s');
  });
});
