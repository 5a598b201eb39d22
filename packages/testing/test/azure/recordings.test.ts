// Replays every Key Vault request of the real recordings in ../shared/fixtures/azure-keyvault against the
// emulator and holds its answers to the recorded ones: status, challenge header, content type, kid format,
// error bodies, and the shape (keys, their order, value types) of every JSON body.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestCertificates, type TestCertificates } from '../../src/certificates.js';
import { JSON_CONTENT_TYPE, startAzureKeyVaultEmulator } from '../../src/azure/index.js';
import { fixtureFiles, fixturesDir } from '../fixtures.js';
import { rawRequest, type RawResponse } from './raw-client.js';

interface Recording {
  method: string;
  url: string;
  query: Record<string, string>;
  requestBody: string | null;
  status: number;
  response: string;
  responseHeaders: Record<string, string>;
}

const RECORDED_VAULT = 'https://keyvault_name.vault.azure.net';
const fixtures = fixturesDir('azure-keyvault');
const files = fixtureFiles('azure-keyvault');

const VERSION = /[0-9a-f]{32}/g;
const MISSING_TOKEN = /^(AKV10000: )?Request is missing a Bearer or PoP token\.$/;

function parse(text: string | null): unknown {
  return text === null || text === '' ? undefined : (JSON.parse(text) as unknown);
}

function kind(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/** Recursively: same value types, same keys in the same order; kid, n, e and wrapped values checked too. */
function assertSameShape(actual: unknown, recorded: unknown, where: string, vaultUrl: string): void {
  assert.equal(kind(actual), kind(recorded), `${where}: type`);
  if (Array.isArray(recorded)) {
    assert.ok(Array.isArray(actual));
    if (where.endsWith('key_ops')) assert.deepEqual(actual, recorded, `${where}: values`);
    return;
  }
  if (kind(recorded) === 'object') {
    const got = actual as Record<string, unknown>;
    const want = recorded as Record<string, unknown>;
    let keys = Object.keys(got);
    // The 7.0 service did not yet report recoverableDays; later ones do (as the emulator).
    if (where.endsWith('attributes') && !('recoverableDays' in want)) {
      keys = keys.filter((key) => key !== 'recoverableDays');
    }
    assert.deepEqual(keys, Object.keys(want), `${where}: keys and their order`);
    for (const key of keys) assertSameShape(got[key], want[key], `${where}.${key}`, vaultUrl);
    return;
  }
  if (typeof recorded === 'string' && typeof actual === 'string') {
    if (where.endsWith('.kid')) {
      assert.match(
        actual,
        new RegExp(`^${escape(vaultUrl)}/keys/[0-9A-Za-z-]+/[0-9a-f]{32}$`),
        `${where}: kid`,
      );
      assert.match(
        recorded,
        /^https:\/\/keyvault_name\.vault\.azure\.net\/keys\/[0-9A-Za-z-]+\/[0-9a-f]{32}$/,
      );
    }
    if (where.endsWith('.recoveryId')) assert.match(actual, new RegExp(`^${escape(vaultUrl)}/deletedkeys/`));
    if (where.endsWith('.n') || where === 'body.value') {
      assert.match(actual, /^[A-Za-z0-9_-]+$/, `${where}: base64url without padding`);
      if (where.endsWith('.n')) assert.equal(actual.length, recorded.length, `${where}: modulus size`);
    }
    if (where.endsWith('.e') || where.endsWith('.kty')) assert.equal(actual, recorded, where);
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('Azure Key Vault emulator against the real recordings', () => {
  let certificates: TestCertificates;
  before(async () => {
    certificates = await createTestCertificates();
  });

  it('finds the recordings', () => {
    assert.ok(files.length >= 7, `expected the 7 recordings in ${fixtures}, found ${files.length}`);
  });

  for (const file of files) {
    it(`replays ${file}`, async () => {
      const recordings = (
        JSON.parse(readFileSync(join(fixtures, file), 'utf8')) as { recordings: Recording[] }
      ).recordings;
      const challenge = recordings.find((entry) => entry.status === 401)?.responseHeaders['www-authenticate'];
      const tenantId = /login\.windows\.net\/([^"]+)"/.exec(challenge ?? '')?.[1] ?? 'tenant';
      const emulator = await startAzureKeyVaultEmulator({
        tls: { key: certificates.serverKey, cert: certificates.serverCert },
        tenantId,
      });
      after(() => emulator.close());
      const token = emulator.issueToken();
      const versions = new Map<string, string>();
      const wrapped = new Map<string, string>();
      const deleted = new Set<string>();
      let replayed = 0;
      let lastCreated: { kid: string; n: string } | undefined;

      const learnVersions = (recorded: unknown, actual: unknown): void => {
        const recordedKid = (recorded as { key?: { kid?: string }; kid?: string } | undefined)?.key?.kid;
        const actualKid = (actual as { key?: { kid?: string } } | undefined)?.key?.kid;
        const from = recordedKid?.match(VERSION)?.[0];
        const to = actualKid?.match(VERSION)?.[0];
        if (from !== undefined && to !== undefined) versions.set(from, to);
      };

      for (const [index, entry] of recordings.entries()) {
        if (entry.url.startsWith('https://login.microsoftonline.com/')) continue;
        const where = `${file} #${index} ${entry.method} ${entry.url.replace(RECORDED_VAULT, '')}`;
        assert.ok(entry.url.startsWith(RECORDED_VAULT), `${where}: a Key Vault url`);
        const path = entry.url.slice(RECORDED_VAULT.length).replace(VERSION, (v) => versions.get(v) ?? v);
        const query = new URLSearchParams(entry.query).toString();
        let body = entry.requestBody ?? '';
        if (body !== '' && path.endsWith('/unwrapkey')) {
          const request = JSON.parse(body) as { alg: string; value: string };
          body = JSON.stringify({ ...request, value: wrapped.get(request.value) ?? request.value });
        }
        // The recorded 401s are the SDK's first, token-less request; every other request carries a token.
        const headers: Record<string, string> =
          entry.status === 401 ? {} : { authorization: `Bearer ${token}` };
        const response: RawResponse = await rawRequest(`${emulator.url}${path}?${query}`, {
          method: entry.method,
          ca: certificates.ca,
          headers,
          body,
        });
        replayed += 1;
        const recorded = parse(entry.response);
        const actual = parse(response.text);

        // Key Vault deletes eventually: the recordings poll GET /deletedkeys/<name> through 404s until 200.
        // Either answer is right while a deletion propagates; the emulator's deletion is immediate.
        const polling =
          entry.method === 'GET' &&
          entry.status === 404 &&
          path.startsWith('/deletedkeys/') &&
          deleted.has(path.slice('/deletedkeys/'.length));
        if (polling && response.status === 200) {
          const settled = recordings
            .slice(index)
            .find((later) => later.url === entry.url && later.status === 200);
          assert.ok(settled !== undefined, `${where}: the recording ends its polling with a 200`);
          assertSameShape(actual, parse(settled.response), 'body', emulator.url);
          continue;
        }

        assert.equal(response.status, entry.status, `${where}: status (${response.text})`);
        if (entry.status === 204) {
          assert.equal(response.text, '', `${where}: no body`);
          continue;
        }
        assert.equal(
          response.headers['content-type'],
          entry.responseHeaders['content-type'],
          `${where}: type`,
        );
        assert.equal(response.headers['content-type'], JSON_CONTENT_TYPE);
        if (entry.status === 401) {
          assert.equal(
            response.headers['www-authenticate'],
            entry.responseHeaders['www-authenticate'],
            `${where}: the bearer challenge`,
          );
        }
        if (entry.status >= 400) {
          const got = actual as { error: { code: string; message: string } };
          const want = recorded as { error: { code: string; message: string } };
          assert.deepEqual(Object.keys(got), ['error'], `${where}: error envelope`);
          assert.deepEqual(Object.keys(got.error), Object.keys(want.error), `${where}: error fields`);
          assert.equal(got.error.code, want.error.code, `${where}: error code`);
          if (MISSING_TOKEN.test(want.error.message)) assert.match(got.error.message, MISSING_TOKEN);
          else assert.equal(got.error.message, want.error.message, `${where}: error message`);
          continue;
        }
        assertSameShape(actual, recorded, 'body', emulator.url);
        learnVersions(recorded, actual);
        if (entry.method === 'DELETE' && path.startsWith('/keys/')) {
          deleted.add(path.slice('/keys/'.length));
          const record = actual as {
            deletedDate: number;
            scheduledPurgeDate: number;
            attributes: { recoverableDays: number };
          };
          assert.equal(
            record.scheduledPurgeDate - record.deletedDate,
            record.attributes.recoverableDays * 86_400,
          );
        }
        if (path.endsWith('/wrapkey')) {
          const got = actual as { kid: string; value: string };
          const want = recorded as { kid: string; value: string };
          assert.equal(got.value.length, want.value.length, `${where}: a 2048-bit RSA ciphertext`);
          assert.equal(
            got.kid,
            `${emulator.url}${path.replace(/\/wrapkey$/, '')}`,
            `${where}: kid of the version`,
          );
          wrapped.set(want.value, got.value);
        }
        if (path.endsWith('/unwrapkey')) {
          assert.equal(
            (actual as { value: string }).value,
            (recorded as { value: string }).value,
            `${where}: plaintext`,
          );
        }
        const bundle = actual as { key?: { kid: string; n: string } };
        if (path.endsWith('/rotate')) {
          assert.ok(lastCreated !== undefined, `${where}: a key was created before`);
          assert.notEqual(bundle.key?.kid, lastCreated.kid, `${where}: rotation makes a new version`);
          assert.notEqual(bundle.key?.n, lastCreated.n, `${where}: with new key material`);
        }
        if (path.endsWith('/create') && bundle.key !== undefined) lastCreated = bundle.key;
      }
      assert.ok(replayed > 0, `${file}: replayed no Key Vault request`);
    });
  }
});
