import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers.js';
import { runHostileClient } from './hostile-process.js';
import type { CaseResult } from './hostile-client.js';
import { heapCensus, MiB, retainedSince, type Retention } from './memory.js';

// Requests no apiserver sends, from a client in its own process: bodies that are not protobuf, random
// garbage, fields far past every limit. Each is answered with the status and Trousseau code the table
// promises, the server keeps serving, and what it retains afterwards is what it retained before.

/** What each case must be answered with: gRPC status and Trousseau code ("" for none). */
const EXPECTED: Readonly<Record<string, readonly [string, string]>> = {
  'not protobuf: wire type 7': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_REQUEST_INVALID'],
  'not protobuf: wire type 7, field 9': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_REQUEST_INVALID'],
  'not protobuf: wire type 6': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_REQUEST_INVALID'],
  'not protobuf: an end-group with no group': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_REQUEST_INVALID'],
  'not protobuf: field number 0': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_REQUEST_INVALID'],
  'not protobuf: a varint cut short': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_REQUEST_INVALID'],
  'empty body': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_REQUEST_EMPTY'],
  'unknown method': ['UNIMPLEMENTED', ''],
  // grpc-js refuses a message over grpc.max_receive_message_length before any handler runs.
  'message over 4 MiB': ['RESOURCE_EXHAUSTED', ''],
  '1 MiB plaintext': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_REQUEST_TOO_LARGE'],
  '1 MiB ciphertext': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_REQUEST_TOO_LARGE'],
  '65535 bytes of garbage ciphertext': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_CIPHERTEXT_MALFORMED'],
  '1 MiB key_id': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_CIPHERTEXT_KEY_ID_MISMATCH'],
  '1 MiB cipher': ['INVALID_ARGUMENT', 'TROUSSEAU_ERR_REQUEST_TOO_LARGE'],
  // Annotations Trousseau never set are ignored, however many; a uid is only a correlation id.
  '3 MiB of annotations and a 1 MiB uid': ['OK', ''],
  '1 MiB uid': ['OK', ''],
};

describe('abuse: hostile requests', () => {
  let t: TestServer;
  let results: CaseResult[] = [];
  let retained: Retention = { bytes: 0, grown: [] };
  before(async () => {
    t = await startTestServer();
    // Warm every path once, so what is built on first use does not count as growth.
    await runHostileClient('requests', t.socket);
    const before = await heapCensus();
    results = JSON.parse(await runHostileClient('requests', t.socket)) as CaseResult[];
    // 678 requests: nothing may be kept per request (100 instances of a class would be).
    retained = await retainedSince(before, { maxBytes: 16 * MiB, maxInstances: 100 });
  });
  after(() => t.close());

  it('answers every case with its status and code; random garbage never with more than a caller error', () => {
    const byCase = new Map<string, number>();
    for (const result of results) {
      byCase.set(result.case, (byCase.get(result.case) ?? 0) + 1);
      if (result.case === 'random garbage') {
        // Garbage that happens to decode is a request like any other: Status and Version answer it, and
        // Encrypt encrypts the plaintext it decoded to. Decrypt never opens garbage.
        const acceptable =
          (result.status === 'INVALID_ARGUMENT' && result.code.startsWith('TROUSSEAU_ERR_')) ||
          (result.status === 'OK' && !result.method.endsWith('/Decrypt'));
        assert.ok(acceptable, `random garbage to ${result.method}: ${result.status} ${result.code}`);
        continue;
      }
      const expected = EXPECTED[result.case];
      assert.ok(expected !== undefined, `a case without an expectation: ${result.case}`);
      assert.deepEqual([result.status, result.code], expected, `${result.case} to ${result.method}`);
    }
    // Every method got every malformed body and 100 garbage ones; the field cases ran five rounds.
    assert.equal(byCase.get('not protobuf: wire type 7'), 6);
    assert.equal(byCase.get('random garbage'), 600);
    assert.equal(byCase.get('1 MiB key_id'), 5);
    assert.equal(results.length, 6 * 6 + 600 + 2 + 5 * 8);
  });

  it('keeps serving', async () => {
    assert.equal((await t.client.status()).healthz, 'ok');
    const seed = randomBytes(32);
    const encrypted = await t.client.encrypt(seed);
    assert.deepEqual(
      (await t.client.decrypt({ ciphertext: encrypted.ciphertext, keyId: encrypted.key_id })).plaintext,
      seed,
    );
  });

  it('retains no more memory afterwards than before (within 16 MiB)', (t) => {
    t.diagnostic(
      `retained ${(retained.bytes / MiB).toFixed(1)} MiB more after ${results.length} hostile requests`,
    );
    assert.deepEqual(retained.grown, [], 'objects kept per request');
    assert.ok(
      retained.bytes < 16 * MiB,
      `retained ${(retained.bytes / MiB).toFixed(1)} MiB more than before the abuse`,
    );
  });
});
