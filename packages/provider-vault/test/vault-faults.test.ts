import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { isTrousseauError, type ProviderStatus } from '@trousseau/core';
import { testRequestContext } from '@trousseau/testing';
import type { VaultEmulator, VaultRequestRecord } from '@trousseau/testing/vault';
import type { VaultKeyProvider } from '../src/index.js';
import { usingRealVault } from './backend.js';
import { eventually, rejectsWith, tokenAuth, useVaultBackend } from './helpers.js';

const ctx = (timeoutMs = 2_000): ReturnType<typeof testRequestContext> => testRequestContext(timeoutMs);

/**
 * How late after its deadline a call may settle: room for a loaded machine's event-loop lag, and still
 * well short of what a call that ignored its deadline would take (the slow answer, 2 s later).
 */
const SETTLE_GRACE_MS = 1_000;

function assertUnhealthy(status: ProviderStatus, reason: RegExp, keyGone = false): void {
  assert.equal(status.healthy, false, `expected unhealthy, got ${JSON.stringify(status)}`);
  if (status.healthy) return;
  assert.match(status.reason, reason);
  assert.equal(
    status.code === 'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
    keyGone,
    `key gone (code ${String(status.code)}): ${JSON.stringify(status)}`,
  );
  assert.ok(status.keyId !== undefined, 'keeps reporting the last good key id');
}

async function recovers(provider: VaultKeyProvider): Promise<void> {
  const status = await provider.status(ctx());
  assert.ok(status.healthy, `expected recovery, got ${JSON.stringify(status)}`);
  const plaintext = randomBytes(32);
  const sealed = await provider.encrypt(plaintext, ctx());
  assert.deepEqual(
    Buffer.from(await provider.decrypt({ ciphertext: sealed.ciphertext, keyRef: '' }, ctx())),
    plaintext,
  );
}

describe('vault failures', { skip: usingRealVault ? 'needs the emulator (seal, faults)' : false }, () => {
  let emulator: VaultEmulator;
  let provider: VaultKeyProvider;
  // Registered before useVaultBackend's hooks so that the provider closes before the backend does.
  after(async () => {
    await provider.close();
  });
  const vault = useVaultBackend({ shareClock: false });
  before(async () => {
    assert.ok(vault.backend.emulator !== undefined);
    emulator = vault.backend.emulator;
    const { auth } = await tokenAuth(vault.backend, vault.fixture);
    provider = await vault.fixture.open({ auth, timeouts: { requestSeconds: 2, authSeconds: 2 } });
  });
  /** A provider on a key of its own (its own policy and token), for tests that break the key. */
  async function openOwnKey(suffix: string): Promise<{ name: string; provider: VaultKeyProvider }> {
    const name = `${vault.fixture.keyName}-${suffix}`;
    emulator.createKey(name);
    emulator.writePolicy(`${vault.fixture.policy}-${suffix}`, [
      { path: `transit/encrypt/${name}`, capabilities: ['update'] },
      { path: `transit/decrypt/${name}`, capabilities: ['update'] },
      { path: `transit/keys/${name}`, capabilities: ['read'] },
    ]);
    const token = emulator.createToken({ policies: [`${vault.fixture.policy}-${suffix}`] });
    const provider = await vault.fixture.open({
      auth: { method: 'token', token: { file: await vault.fixture.writeFile(`${suffix}-token`, token) } },
      keyName: name,
    });
    return { name, provider };
  }

  afterEach(() => {
    emulator.unseal();
    emulator.faults.latencyMs = 0;
    emulator.faults.dropConnections = false;
    emulator.faults.refuseConnections = false;
  });

  it('fails fast with UNAVAILABLE "vault sealed" while sealed, and recovers when unsealed', async () => {
    emulator.seal();
    emulator.clearRequests();
    await rejectsWith(
      provider.encrypt(randomBytes(32), ctx()),
      'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      /vault sealed/,
    );
    assert.equal(
      emulator.requests.filter((request) => request.path.includes('/transit/encrypt/')).length,
      1,
      'sealed is not retried: it will not unseal within the deadline',
    );
    assertUnhealthy(await provider.status(ctx()), /^vault sealed$/);
    emulator.unseal();
    await recovers(provider);
  });

  it('fails fast with UNAVAILABLE when Vault refuses connections, and recovers', async () => {
    emulator.faults.refuseConnections = true;
    await rejectsWith(
      provider.encrypt(randomBytes(32), ctx()),
      'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      /unreachable \(ECONNREFUSED\)/,
    );
    assertUnhealthy(await provider.status(ctx()), /unreachable/);
    emulator.faults.refuseConnections = false;
    await recovers(provider);
  });

  it('fails with UNAVAILABLE when Vault drops connections, and recovers', async () => {
    emulator.faults.dropConnections = true;
    await rejectsWith(
      provider.encrypt(randomBytes(32), ctx()),
      'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      /unreachable/,
    );
    emulator.faults.dropConnections = false;
    await recovers(provider);
  });

  it('answers DEADLINE_EXCEEDED inside the caller deadline when Vault is slow, and recovers', async () => {
    emulator.faults.latencyMs = 2_000;
    const request = ctx(150);
    await rejectsWith(provider.encrypt(randomBytes(32), request), 'TROUSSEAU_ERR_DEADLINE_EXCEEDED');
    assert.ok(Date.now() < request.deadline + SETTLE_GRACE_MS, 'the call outlived its deadline');
    assert.equal((await provider.status(ctx(150))).healthy, false);
    emulator.faults.latencyMs = 0;
    await recovers(provider);
  });

  it('sends a queued call alone in time, even after an earlier request timed out', async () => {
    const { auth } = await tokenAuth(vault.backend, vault.fixture, { file: 'straggler-token' });
    const lone = await vault.fixture.open({ auth, timeouts: { requestSeconds: 1, authSeconds: 2 } });
    const encrypts = (): VaultRequestRecord[] =>
      emulator.requests.filter((request) => request.path.includes('/transit/encrypt/'));
    /** Starts an encrypt that Vault answers only after the 1 s request timeout; later requests are fast. */
    const slowEncrypt = async (): Promise<{ call: Promise<unknown> }> => {
      const before = encrypts().length;
      emulator.faults.latencyMs = 3_000;
      const call = lone.encrypt(randomBytes(32), ctx(5_000));
      call.catch(() => undefined);
      await eventually(() => encrypts().length > before);
      emulator.faults.latencyMs = 0;
      return { call };
    };
    const timedOut = (error: unknown): boolean =>
      isTrousseauError(error) &&
      (error.code === 'TROUSSEAU_ERR_DEADLINE_EXCEEDED' ||
        error.code === 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE');
    try {
      assert.ok((await lone.status(ctx())).healthy);
      // One request that hangs until its timeout: how long it took says nothing of Vault's usual pace.
      await assert.rejects((await slowEncrypt()).call, timedOut);
      // Another hangs; a call queued behind it, with a deadline well inside that hang, must not wait
      // for it (nor for a multiple of the first one's duration): it goes out alone and is answered.
      const stuck = await slowEncrypt();
      const plaintext = randomBytes(32);
      const queued = await lone.encrypt(plaintext, ctx(500));
      assert.deepEqual(
        Buffer.from(await lone.decrypt({ ciphertext: queued.ciphertext, keyRef: '' }, ctx())),
        plaintext,
      );
      assert.equal(encrypts().at(-1)?.batchSize, undefined, 'sent alone, not batched');
      await assert.rejects(stuck.call, timedOut);
    } finally {
      await lone.close();
    }
  });

  it('retries 5xx and 429 with backoff while the deadline allows', async () => {
    emulator.clearRequests();
    emulator.faults.failNext(2, 502, { path: 'transit/encrypt' });
    emulator.faults.failNext(1, 429, { path: 'transit/encrypt' });
    const result = await provider.encrypt(randomBytes(32), ctx());
    assert.ok(result.ciphertext.length > 0);
    assert.equal(emulator.requests.filter((request) => request.path.includes('/transit/encrypt/')).length, 4);
  });

  it('stops retrying when the deadline leaves no room, with the last reason', async () => {
    const flaky = await openOwnKey('flaky');
    try {
      const sealed = await flaky.provider.encrypt(randomBytes(32), ctx());
      // Only this key's decrypt path fails, for good.
      emulator.faults.failNext(1_000_000, 503, { path: `transit/decrypt/${flaky.name}` });
      emulator.clearRequests();
      const request = ctx(1_000);
      await assert.rejects(
        flaky.provider.decrypt({ ciphertext: sealed.ciphertext, keyRef: '' }, request),
        (error: unknown) => {
          assert.ok(isTrousseauError(error));
          assert.ok(
            error.code === 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE' ||
              error.code === 'TROUSSEAU_ERR_DEADLINE_EXCEEDED',
            error.code,
          );
          return true;
        },
      );
      assert.ok(Date.now() < request.deadline + SETTLE_GRACE_MS, 'the call outlived its deadline');
      const attempts = emulator.requests.filter((entry) =>
        entry.path.includes(`/transit/decrypt/${flaky.name}`),
      ).length;
      assert.ok(attempts >= 2, `retried (${attempts} attempts)`);
    } finally {
      await flaky.provider.close();
    }
  });

  it('reports a deleted key as gone: "key not found"', async () => {
    const doomed = await openOwnKey('doomed');
    try {
      const sealed = await doomed.provider.encrypt(randomBytes(32), ctx());
      emulator.deleteKey(doomed.name);
      assertUnhealthy(await doomed.provider.status(ctx()), /key not found: transit\/keys\//, true);
      await rejectsWith(
        doomed.provider.decrypt({ ciphertext: sealed.ciphertext, keyRef: '' }, ctx()),
        'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
        /key not found/,
      );
    } finally {
      await doomed.provider.close();
    }
  });

  it('reports a policy that no longer allows encrypt as the key gone: "permission denied on transit/encrypt/<key>"', async () => {
    const policy = `${vault.fixture.policy}-shrinking`;
    emulator.writePolicy(policy, [
      { path: `transit/encrypt/${vault.fixture.keyName}`, capabilities: ['update'] },
      { path: `transit/decrypt/${vault.fixture.keyName}`, capabilities: ['update'] },
      { path: `transit/keys/${vault.fixture.keyName}`, capabilities: ['read'] },
    ]);
    const token = emulator.createToken({ policies: [policy] });
    const shrinking = await vault.fixture.open({
      auth: { method: 'token', token: { file: await vault.fixture.writeFile('shrinking-token', token) } },
    });
    try {
      assert.ok((await shrinking.status(ctx())).healthy);
      emulator.writePolicy(policy, [
        { path: `transit/decrypt/${vault.fixture.keyName}`, capabilities: ['update'] },
        { path: `transit/keys/${vault.fixture.keyName}`, capabilities: ['read'] },
      ]);
      assertUnhealthy(
        await shrinking.status(ctx()),
        new RegExp(`^permission denied on transit/encrypt/${vault.fixture.keyName}$`),
        true,
      );
      await rejectsWith(shrinking.encrypt(randomBytes(32), ctx()), 'TROUSSEAU_ERR_PROVIDER_KEY_GONE');
    } finally {
      await shrinking.close();
    }
  });
});
