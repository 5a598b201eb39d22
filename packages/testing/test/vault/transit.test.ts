// Transit: the real ciphertext layout, tampering, versions, min_decryption_version, batches, derived keys,
// key management, the newer-Vault switches, and the node-vault client against the emulator.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import vaultClient from 'node-vault';
import { startVaultEmulator, type VaultEmulator } from '../../src/vault/index.js';
import { b64, call, data, errorsOf, ManualClock } from './support.js';

function blobOf(ciphertext: string): Buffer {
  return Buffer.from(ciphertext.slice(ciphertext.indexOf(':', 7) + 1), 'base64');
}

function withBlob(ciphertext: string, blob: Buffer): string {
  return ciphertext.slice(0, ciphertext.indexOf(':', 7) + 1) + blob.toString('base64');
}

describe('vault emulator: transit', () => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1));
  let vault: VaultEmulator;
  let root: string;
  const encrypt = async (plaintext: string, key = 'k8s'): Promise<string> => {
    const reply = await call(vault, 'POST', `transit/encrypt/${key}`, {
      token: root,
      body: { plaintext: b64(plaintext) },
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    return data(reply).ciphertext as string;
  };
  const decrypt = (ciphertext: string, key = 'k8s') =>
    call(vault, 'POST', `transit/decrypt/${key}`, { token: root, body: { ciphertext } });

  before(async () => {
    vault = await startVaultEmulator({ clock });
    root = vault.rootToken;
    vault.createKey('k8s');
  });
  after(() => vault.close());

  it('produces vault:vN: + base64(12-byte nonce | AES-GCM ciphertext | 16-byte tag), fresh nonce each time', async () => {
    const a = await encrypt('0123456789abcdef0123456789abcdef');
    const b = await encrypt('0123456789abcdef0123456789abcdef');
    assert.match(a, /^vault:v1:[A-Za-z0-9+/]+=*$/);
    assert.equal(blobOf(a).length, 12 + 32 + 16);
    assert.notEqual(a, b);
    assert.notDeepEqual(blobOf(a).subarray(0, 12), blobOf(b).subarray(0, 12));
    assert.equal(data(await decrypt(a)).plaintext, b64('0123456789abcdef0123456789abcdef'));
    assert.equal(data(await decrypt(await encrypt(''))).plaintext, '');
  });

  it('refuses tampered ciphertexts: nonce, body, tag, version label, length, base64, prefix', async () => {
    const good = await encrypt('dek');
    const cases: Array<[string, string]> = [];
    for (const index of [0, 13, blobOf(good).length - 1]) {
      const blob = Buffer.from(blobOf(good));
      blob[index] = (blob[index] as number) ^ 0x01;
      cases.push([withBlob(good, blob), 'invalid ciphertext: unable to decrypt']);
    }
    cases.push([withBlob(good, blobOf(good).subarray(0, 20)), 'invalid ciphertext: unable to decrypt']);
    cases.push([withBlob(good, blobOf(good).subarray(0, 8)), 'invalid ciphertext length']);
    cases.push([`${good.slice(0, 9)}***`, 'invalid ciphertext: could not decode base64']);
    cases.push([good.replace('vault:v1:', 'vault:v2:'), 'invalid ciphertext: version is too new']);
    cases.push([
      good.replace('vault:v1:', 'vault:vx:'),
      'invalid ciphertext: version number could not be decoded',
    ]);
    cases.push([good.replace('vault:v1:', 'vault:v1'), 'invalid ciphertext: wrong number of fields']);
    cases.push([good.slice(6), 'invalid ciphertext: no prefix']);
    for (const [ciphertext, message] of cases) {
      const reply = await decrypt(ciphertext);
      assert.equal(reply.status, 400, message);
      assert.deepEqual(errorsOf(reply), [message]);
    }
    const missing = await call(vault, 'POST', 'transit/decrypt/k8s', { token: root, body: {} });
    assert.deepEqual(errorsOf(missing), ['missing ciphertext to decrypt']);
    const noPlaintext = await call(vault, 'POST', 'transit/encrypt/k8s', { token: root, body: {} });
    assert.deepEqual(errorsOf(noPlaintext), ['missing plaintext to encrypt']);
  });

  it('rotates: new data under the new version, every older version still decrypts, v2 data is not v1 data', async () => {
    vault.createKey('rot');
    const v1 = await encrypt('one', 'rot');
    clock.advance(100);
    assert.equal((await call(vault, 'POST', 'transit/keys/rot/rotate', { token: root })).status, 204);
    const v2 = await encrypt('two', 'rot');
    assert.match(v2, /^vault:v2:/);
    vault.rotateKey('rot');
    const v3 = await encrypt('three', 'rot');
    assert.match(v3, /^vault:v3:/);
    assert.equal(data(await decrypt(v1, 'rot')).plaintext, b64('one'));
    assert.equal(data(await decrypt(v2, 'rot')).plaintext, b64('two'));
    const relabelled = await decrypt(v2.replace('vault:v2:', 'vault:v1:'), 'rot');
    assert.deepEqual(errorsOf(relabelled), ['invalid ciphertext: unable to decrypt']);
    const key = data(await call(vault, 'GET', 'transit/keys/rot', { token: root }));
    assert.equal(key.latest_version, 3);
    const created = Math.floor(clock.ms / 1000);
    assert.deepEqual(key.keys, { '1': created - 100, '2': created, '3': created });
  });

  it('enforces min_decryption_version, hides archived versions, and restores them when lowered', async () => {
    vault.createKey('mdv');
    const v1 = await encrypt('old', 'mdv');
    vault.rotateKey('mdv');
    const raise = await call(vault, 'POST', 'transit/keys/mdv/config', {
      token: root,
      body: { min_decryption_version: 2 },
    });
    assert.equal(raise.status, 204);
    const refused = await decrypt(v1, 'mdv');
    assert.equal(refused.status, 400);
    assert.deepEqual(errorsOf(refused), [
      'ciphertext or signature version is disallowed by policy (too old)',
    ]);
    const key = data(await call(vault, 'GET', 'transit/keys/mdv', { token: root }));
    assert.deepEqual(Object.keys(key.keys as object), ['2']);
    assert.equal(key.min_decryption_version, 2);
    const tooHigh = await call(vault, 'POST', 'transit/keys/mdv/config', {
      token: root,
      body: { min_decryption_version: 5 },
    });
    assert.deepEqual(errorsOf(tooHigh), ['cannot set min decryption version of 5, latest key version is 2']);
    const zero = await call(vault, 'POST', 'transit/keys/mdv/config', {
      token: root,
      body: { min_decryption_version: 0 },
    });
    assert.equal(zero.status, 200);
    assert.deepEqual((zero.body as { warnings: unknown }).warnings, [
      'since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1',
    ]);
    assert.equal(data(await decrypt(v1, 'mdv')).plaintext, b64('old'));
    vault.setMinDecryptionVersion('mdv', 2);
    assert.equal((await decrypt(v1, 'mdv')).status, 400);
    const missing = await call(vault, 'POST', 'transit/keys/nope/config', {
      token: root,
      body: { min_decryption_version: 1 },
    });
    assert.deepEqual(errorsOf(missing), ['no existing key named nope could be found']);
  });

  it('answers batches item by item; a partial failure is 200 as in Vault 1.4.3', async () => {
    const enc = await call(vault, 'POST', 'transit/encrypt/k8s', {
      token: root,
      body: { batch_input: [{ plaintext: b64('a') }, { plaintext: '%%' }, { plaintext: b64('c') }] },
    });
    assert.equal(enc.status, 200);
    const results = data(enc).batch_results as Array<Record<string, string>>;
    assert.deepEqual(Object.keys(results[1] as object), ['error']);
    assert.equal(results[1]?.error, 'illegal base64 data at input byte 0');
    const dec = await call(vault, 'POST', 'transit/decrypt/k8s', {
      token: root,
      body: {
        batch_input: [
          { ciphertext: results[2]?.ciphertext },
          { ciphertext: 'vault:v1:AAAA' },
          { ciphertext: results[0]?.ciphertext },
        ],
      },
    });
    assert.equal(dec.status, 200);
    assert.deepEqual(data(dec).batch_results, [
      { plaintext: b64('c') },
      { error: 'invalid ciphertext length' },
      { plaintext: b64('a') },
    ]);
    assert.equal(vault.requests.at(-1)?.batchSize, 3);
    const empty = await call(vault, 'POST', 'transit/decrypt/k8s', {
      token: root,
      body: { batch_input: [] },
    });
    assert.deepEqual(errorsOf(empty), ['missing batch input to process']);
    const unknownKey = await call(vault, 'POST', 'transit/decrypt/none', {
      token: root,
      body: { batch_input: [{ ciphertext: 'x' }] },
    });
    assert.deepEqual(errorsOf(unknownKey), ['encryption key not found']);
  });

  it('frames answers as Go does: a Content-Length up to 2048 bytes, chunked past that', async () => {
    const small = await call(vault, 'POST', 'transit/encrypt/k8s', {
      token: root,
      body: { plaintext: b64('a') },
    });
    assert.equal(small.headers.get('transfer-encoding'), null);
    assert.ok(Number(small.headers.get('content-length')) <= 2048);
    // 40 items of 32 bytes: each ciphertext is about 90 characters, the answer well past 2048 bytes.
    const batch = await call(vault, 'POST', 'transit/encrypt/k8s', {
      token: root,
      body: { batch_input: Array.from({ length: 40 }, () => ({ plaintext: b64('k'.repeat(32)) })) },
    });
    assert.equal(batch.status, 200);
    assert.equal(batch.headers.get('transfer-encoding'), 'chunked');
    assert.equal(batch.headers.get('content-length'), null);
    assert.equal((data(batch).batch_results as unknown[]).length, 40);
  });

  it('accepts a context on a non-derived key and ignores it; derived keys need the same context', async () => {
    const withContext = await call(vault, 'POST', 'transit/encrypt/k8s', {
      token: root,
      body: { plaintext: b64('x'), context: b64('ctx') },
    });
    assert.equal(withContext.status, 200);
    assert.equal(data(await decrypt(data(withContext).ciphertext as string)).plaintext, b64('x'));
    const mixed = await call(vault, 'POST', 'transit/encrypt/k8s', {
      token: root,
      body: { batch_input: [{ plaintext: b64('x'), context: b64('c') }, { plaintext: b64('y') }] },
    });
    assert.deepEqual(errorsOf(mixed), ['context should be set either in all the request blocks or in none']);

    vault.createKey('derived', { derived: true });
    const enc = await call(vault, 'POST', 'transit/encrypt/derived', {
      token: root,
      body: { plaintext: b64('x'), context: b64('tenant-1') },
    });
    const ciphertext = data(enc).ciphertext as string;
    const right = await call(vault, 'POST', 'transit/decrypt/derived', {
      token: root,
      body: { ciphertext, context: b64('tenant-1') },
    });
    assert.equal(data(right).plaintext, b64('x'));
    const wrong = await call(vault, 'POST', 'transit/decrypt/derived', {
      token: root,
      body: { ciphertext, context: b64('tenant-2') },
    });
    assert.deepEqual(errorsOf(wrong), ['invalid ciphertext: unable to decrypt']);
    const none = await call(vault, 'POST', 'transit/decrypt/derived', { token: root, body: { ciphertext } });
    assert.match(String((errorsOf(none) as string[])[0]), /^missing 'context' for key derivation/);
  });

  it('manages keys over HTTP: create, list, read, delete only when allowed', async () => {
    assert.equal((await call(vault, 'POST', 'transit/keys/made', { token: root, body: {} })).status, 204);
    assert.equal((await call(vault, 'POST', 'transit/keys/made', { token: root, body: {} })).status, 204);
    const badType = await call(vault, 'POST', 'transit/keys/rsa', {
      token: root,
      body: { type: 'nonsense' },
    });
    assert.deepEqual(errorsOf(badType), ['unknown key type nonsense']);
    // node's HTTP parser cannot receive the LIST verb; Vault's equivalent GET ?list=true is served.
    const list = await call(vault, 'GET', 'transit/keys?list=true', { token: root });
    assert.ok((data(list).keys as string[]).includes('made'));
    const denied = await call(vault, 'DELETE', 'transit/keys/made', { token: root });
    assert.deepEqual(errorsOf(denied), ['deletion is not allowed for this key']);
    await call(vault, 'POST', 'transit/keys/made/config', { token: root, body: { deletion_allowed: true } });
    assert.equal((await call(vault, 'DELETE', 'transit/keys/made', { token: root })).status, 204);
    const gone = await call(vault, 'GET', 'transit/keys/made', { token: root });
    assert.equal(gone.status, 404);
    assert.deepEqual(gone.body, { errors: [] });
    const rotateMissing = await call(vault, 'POST', 'transit/keys/made/rotate', { token: root });
    assert.deepEqual(errorsOf(rotateMissing), ['key not found']);
  });

  it('loses data when a key is deleted by the test (decrypt: encryption key not found)', async () => {
    vault.createKey('doomed');
    const ciphertext = await encrypt('x', 'doomed');
    vault.deleteKey('doomed');
    const reply = await decrypt(ciphertext, 'doomed');
    assert.equal(reply.status, 400);
    assert.deepEqual(errorsOf(reply), ['encryption key not found']);
  });

  it('answers an unknown route with 404 no handler', async () => {
    const reply = await call(vault, 'GET', 'secret/data/x', { token: root });
    assert.equal(reply.status, 404);
    assert.deepEqual(errorsOf(reply), ["no handler for route 'secret/data/x'"]);
  });
});

describe('vault emulator: newer Vault behaviour switches', () => {
  let vault: VaultEmulator;
  before(async () => {
    vault = await startVaultEmulator({
      batchPartialFailureStatus: 400,
      returnKeyVersion: true,
      rotateStatus: 200,
    });
    vault.createKey('k8s');
  });
  after(() => vault.close());

  it('adds key_version, answers rotate with the key, and a partial batch failure with 400 and the same body', async () => {
    const token = vault.rootToken;
    const enc = await call(vault, 'POST', 'transit/encrypt/k8s', { token, body: { plaintext: b64('x') } });
    assert.equal(data(enc).key_version, 1);
    const rotate = await call(vault, 'POST', 'transit/keys/k8s/rotate', { token });
    assert.equal(rotate.status, 200);
    assert.equal(data(rotate).latest_version, 2);
    const batch = await call(vault, 'POST', 'transit/decrypt/k8s', {
      token,
      body: { batch_input: [{ ciphertext: data(enc).ciphertext }, { ciphertext: 'junk' }] },
    });
    assert.equal(batch.status, 400);
    assert.deepEqual(data(batch).batch_results, [
      { plaintext: b64('x') },
      { error: 'invalid ciphertext: no prefix' },
    ]);
    const allGood = await call(vault, 'POST', 'transit/decrypt/k8s', {
      token,
      body: { batch_input: [{ ciphertext: data(enc).ciphertext }] },
    });
    assert.equal(allGood.status, 200);
  });
});

describe('vault emulator: driven by node-vault', () => {
  let vault: VaultEmulator;
  before(async () => {
    vault = await startVaultEmulator();
    vault.createKey('k8s');
  });
  after(() => vault.close());

  it('serves the real client: write/read, 204 rotate, errors as ApiResponseError', async () => {
    const client = vaultClient({ endpoint: vault.url, token: vault.rootToken });
    const enc = (await client.write('transit/encrypt/k8s', { plaintext: b64('dek') })) as {
      data: { ciphertext: string };
    };
    const dec = (await client.write('transit/decrypt/k8s', { ciphertext: enc.data.ciphertext })) as {
      data: { plaintext: string };
    };
    assert.equal(dec.data.plaintext, b64('dek'));
    await client.write('transit/keys/k8s/rotate', {});
    const key = (await client.read('transit/keys/k8s')) as { data: { latest_version: number } };
    assert.equal(key.data.latest_version, 2);
    await assert.rejects(
      client.write('transit/decrypt/k8s', { ciphertext: 'vault:v1:AAAA' }),
      (error: unknown) => {
        const response = (error as { response?: { statusCode: number; body: { errors: string[] } } })
          .response;
        assert.equal(response?.statusCode, 400);
        assert.deepEqual(response?.body.errors, ['invalid ciphertext length']);
        return true;
      },
    );
    const lookup = (await client.tokenLookupSelf()) as { data: { policies: string[] } };
    assert.deepEqual(lookup.data.policies, ['root']);
  });
});
