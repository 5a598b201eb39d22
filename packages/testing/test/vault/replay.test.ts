// Replays every exchange recorded from a real Vault 1.4.3 (shared/fixtures/vault-1.4.3) against the
// emulator over real HTTP, in the order they were recorded (later files depend on the state earlier ones
// left: the key `k8s` and its versions), and expects the same status, error strings, headers and field
// names, and the same values wherever the value is not random (ids, ciphertexts, cluster names).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { startVaultEmulator, type VaultEmulator } from '../../src/vault/index.js';
import { fixturesDir } from '../fixtures.js';

// dist/test/vault -> repository root -> its sibling `shared/` (CI clones the repo with shared/ beside it).
const FIXTURES = pathToFileURL(fixturesDir('vault-1.4.3'));

interface Exchange {
  method: string;
  path: string;
  requestHeaders: Record<string, string>;
  requestBody: unknown;
  status: number;
  responseHeaders: Record<string, string>;
  responseBody: unknown;
}

/** Recording order: each file continues from the server state the previous one left. */
const FILES = [
  'transit-roundtrip-rotate.json',
  'transit-errors.json',
  'transit-batch.json',
  'transit-min-decryption-version.json',
  'auth-approle-token.json',
  'sys-health-seal.json',
] as const;

/** The recordings mask every token as `<token>`; these exchanges were made with a bad token. */
const BAD_TOKEN_EXCHANGES = new Set(['transit-errors.json#7']);

/** The recording was made at this instant (the server's creation_time and server_time_utc). */
const RECORDED_AT_MS = 1795733775_214;

/** Values that are random per server or per request: compared by type only. */
const VOLATILE = new Set([
  'request_id',
  'ciphertext',
  'client_token',
  'accessor',
  'entity_id',
  'expire_time',
  'issue_time',
  'id',
  'cluster_name',
  'cluster_id',
]);

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** Asserts the same shape (field names at every level, types) and the same non-volatile values. */
function assertSameShape(actual: unknown, expected: unknown, where: string): void {
  assert.equal(typeName(actual), typeName(expected), `${where}: type`);
  if (Array.isArray(expected)) {
    const list = actual as unknown[];
    assert.equal(list.length, expected.length, `${where}: length`);
    expected.forEach((item, i) => assertSameShape(list[i], item, `${where}[${i}]`));
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    const object = actual as Record<string, unknown>;
    const expectedObject = expected as Record<string, unknown>;
    assert.deepEqual(Object.keys(object).sort(), Object.keys(expectedObject).sort(), `${where}: field names`);
    for (const [key, value] of Object.entries(expectedObject)) {
      if (VOLATILE.has(key)) {
        assert.equal(typeName(object[key]), typeName(value), `${where}.${key}: type`);
      } else {
        assertSameShape(object[key], value, `${where}.${key}`);
      }
    }
    return;
  }
  assert.equal(actual, expected, `${where}: value`);
}

/** Recorded ciphertexts mapped to the emulator's ciphertexts of the same plaintext and version. */
class CiphertextMap {
  readonly #bodies = new Map<string, string>();

  learn(recorded: unknown, actual: unknown): void {
    if (Array.isArray(recorded) && Array.isArray(actual)) {
      recorded.forEach((item, i) => this.learn(item, actual[i]));
      return;
    }
    if (!recorded || typeof recorded !== 'object' || !actual || typeof actual !== 'object') return;
    for (const [key, value] of Object.entries(recorded as Record<string, unknown>)) {
      const mine = (actual as Record<string, unknown>)[key];
      if (key === 'ciphertext' && typeof value === 'string' && typeof mine === 'string') {
        this.#bodies.set(body(value), body(mine));
      } else {
        this.learn(value, mine);
      }
    }
  }

  /**
   * A recorded ciphertext, or one derived from it by tampering (same length, some characters changed) or
   * by another version prefix, becomes the emulator's ciphertext with the same change.
   */
  translate(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((item) => this.translate(item));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.translate(v)]));
    }
    if (typeof value !== 'string' || !value.startsWith('vault:v')) return value;
    const prefix = value.slice(0, value.indexOf(':', 'vault:v'.length) + 1);
    const recordedBody = value.slice(prefix.length);
    for (const [recorded, mine] of this.#bodies) {
      if (recorded.length !== recordedBody.length || recorded.length !== mine.length) continue;
      let same = 0;
      while (same < recorded.length && recorded[same] === recordedBody[same]) same++;
      if (same < recorded.length / 2) continue;
      // Keep the emulator's characters where the request kept the recorded ones.
      let out = '';
      for (let i = 0; i < recorded.length; i++)
        out += recordedBody[i] === recorded[i] ? mine[i] : recordedBody[i];
      return prefix + out;
    }
    return value;
  }
}

function body(ciphertext: string): string {
  return ciphertext.slice(ciphertext.indexOf(':', 'vault:v'.length) + 1);
}

function readFixture(name: string): Exchange[] {
  const parsed = JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as { exchanges: Exchange[] };
  return parsed.exchanges;
}

describe('Vault 1.4.3 recordings replayed against the emulator', () => {
  let vault: VaultEmulator;
  const ciphertexts = new CiphertextMap();

  before(async () => {
    vault = await startVaultEmulator({ clock: { now: () => RECORDED_AT_MS } });
    // The state the recordings were made with (see each file's note).
    vault.createKey('k8s');
    vault.writePolicy('kms', [
      { path: 'transit/encrypt/k8s', capabilities: ['update'] },
      { path: 'transit/decrypt/k8s', capabilities: ['update'] },
      { path: 'transit/keys/k8s', capabilities: ['read'] },
    ]);
    vault.configureAppRole({
      roleName: 'kms',
      roleId: 'c0d819eb-e003-2b30-abfb-26fa2ec77c31',
      secretId: '36da993b-6f50-c6d3-aa66-e29b9d8c34bc',
      policies: ['kms'],
      tokenTtlSeconds: 60,
    });
  });

  after(async () => {
    await vault.close();
  });

  for (const file of FILES) {
    it(`replays ${file}`, async () => {
      const exchanges = readFixture(file);
      assert.ok(exchanges.length > 0);
      let loginToken: string | undefined;
      for (const [index, exchange] of exchanges.entries()) {
        const where = `${file}#${index} ${exchange.method} ${exchange.path}`;
        const headers: Record<string, string> = {};
        if (exchange.requestHeaders['X-Vault-Token'] !== undefined) {
          headers['X-Vault-Token'] = BAD_TOKEN_EXCHANGES.has(`${file}#${index}`)
            ? 's.NotAValidTokenAtAll000000'
            : (loginToken ?? vault.rootToken);
        }
        let requestBody = ciphertexts.translate(exchange.requestBody);
        if (exchange.path === '/v1/sys/unseal') requestBody = { key: vault.unsealKey };
        if (requestBody !== null) headers['content-type'] = 'application/json';
        const response = await fetch(vault.url + exchange.path, {
          method: exchange.method,
          headers,
          ...(requestBody !== null ? { body: JSON.stringify(requestBody) } : {}),
        });
        const text = await response.text();
        assert.equal(response.status, exchange.status, `${where}: status (body ${text})`);
        for (const [name, value] of Object.entries(exchange.responseHeaders)) {
          assert.equal(response.headers.get(name), value, `${where}: header ${name}`);
        }
        if (exchange.responseBody === null) {
          assert.equal(text, '', `${where}: empty body`);
          continue;
        }
        const actual: unknown = JSON.parse(text);
        assertSameShape(actual, exchange.responseBody, where);
        ciphertexts.learn(exchange.responseBody, actual);
        const auth = (actual as { auth?: { client_token?: string } | null }).auth;
        if (exchange.path.endsWith('/login') && auth?.client_token) loginToken = auth.client_token;
      }
    });
  }
});
