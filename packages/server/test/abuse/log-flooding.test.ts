import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { TrousseauError } from '@trousseau/core';
import { startTestServer } from '../helpers.js';
import { capturedLog, levelOf, WARN } from './log-sink.js';
import { runPool } from './pool.js';

// A client cannot flood the log: what it does wrong is logged at debug, what fails on our side is a
// warning at most once per interval with a count, and no value it sends is copied whole into a line.

const CALLS = 2_000;

describe('abuse: log flooding', () => {
  it(
    `${CALLS} tampered ciphertexts write no warning at the default level`,
    { timeout: 120_000 },
    async () => {
      const log = capturedLog('info');
      const t = await startTestServer({ logger: log.logger });
      try {
        const good = await t.client.encrypt(randomBytes(32));
        const tampered = Buffer.from(good.ciphertext);
        tampered[tampered.length - 20] = (tampered[tampered.length - 20] ?? 0) ^ 0x01;
        let refused = 0;
        await runPool(Array.from({ length: CALLS }), 32, async () => {
          await t.client.decrypt({ ciphertext: tampered, keyId: good.key_id }).catch(() => refused++);
        });
        assert.equal(refused, CALLS);
        const warnings = log.lines().filter((line) => levelOf(line) >= WARN);
        assert.deepEqual(warnings, [], 'a caller sending bad ciphertexts is not our problem to shout about');
      } finally {
        await t.close();
      }
    },
  );

  it(
    `${CALLS} calls failing on our side write one warning per kind, not one per call`,
    { timeout: 120_000 },
    async () => {
      const log = capturedLog('info');
      const t = await startTestServer({ logger: log.logger });
      try {
        const good = await t.client.encrypt(randomBytes(32));
        t.faulty.faults.callError = new TrousseauError('TROUSSEAU_ERR_PROVIDER_UNAVAILABLE', 'backend down');
        let failed = 0;
        await runPool(Array.from({ length: CALLS }), 32, async () => {
          await t.client.decrypt({ ciphertext: good.ciphertext, keyId: good.key_id }).catch(() => failed++);
        });
        assert.equal(failed, CALLS);
        const warnings = log.lines().filter((line) => levelOf(line) >= WARN);
        // One from the broker ("decrypt failed"), one from the front-end ("kms call failed"), unless the
        // run crossed a 10 s interval on a slow machine: then a few more, each carrying the count held back.
        assert.ok(warnings.length >= 2 && warnings.length <= 2 * 13, `${warnings.length} warnings`);
        const kinds = new Set(warnings.map((line) => (JSON.parse(line) as { msg: string }).msg));
        assert.deepEqual([...kinds].sort(), ['decrypt failed', 'kms call failed']);
        for (const line of warnings) {
          assert.equal(
            typeof (JSON.parse(line) as { suppressedSinceLast?: unknown }).suppressedSinceLast,
            'number',
          );
        }
      } finally {
        t.faulty.faults.callError = undefined;
        await t.close();
      }
    },
  );

  it(
    'a 1 MiB uid, key_id or version string reaches no log line whole, even at debug',
    { timeout: 60_000 },
    async () => {
      const log = capturedLog('trace');
      const t = await startTestServer({ logger: log.logger });
      try {
        const huge = 'u'.repeat(1024 * 1024);
        const encrypted = await t.client.encrypt(randomBytes(32), huge);
        await assert.rejects(t.client.decrypt({ ciphertext: encrypted.ciphertext, keyId: huge, uid: huge }));
        t.faulty.faults.callError = new TrousseauError('TROUSSEAU_ERR_PROVIDER_UNAVAILABLE', 'backend down');
        await assert.rejects(
          t.client.decrypt({ ciphertext: encrypted.ciphertext, keyId: encrypted.key_id, uid: huge }),
        );
        t.faulty.faults.callError = undefined;
        const { v1beta1 } = t.client;
        await new Promise<void>((resolve) => {
          (v1beta1 as unknown as Record<string, (request: object, callback: () => void) => void>)[
            'Encrypt'
          ]?.call(v1beta1, { version: huge, plain: randomBytes(32) }, () => resolve());
        });
        const lines = log.lines();
        assert.ok(
          lines.some((line) => line.includes('"requestId":"uuuu')),
          'the uid is quoted, cut short',
        );
        const longest = Math.max(...lines.map((line) => line.length));
        assert.ok(longest < 4_096, `the longest log line is ${longest} characters`);
      } finally {
        t.faulty.faults.callError = undefined;
        await t.close();
      }
    },
  );
});
