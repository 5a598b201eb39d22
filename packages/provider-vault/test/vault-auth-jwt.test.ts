// JWT login (auth/jwt): the JWT file is read anew at every login, the token is renewed and replaced by a
// fresh login on expiry or a 403, and Status says why Vault refused a login, in Vault's words.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProviderStatus, RequestContext } from '@trousseau/core';
import { testRequestContext } from '@trousseau/testing';
import { createJwtSigner, type JwtSigner } from '@trousseau/testing/vault';
import { startBackend, usingRealVault } from './backend.js';
import { createFixture, roundTrip, TestClock, useVaultBackend, type Fixture } from './helpers.js';

const emulatorOnly = usingRealVault ? 'needs the emulator (JWT auth with its own signing key)' : false;

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const SUBJECT = 'system:serviceaccount:kube-system:trousseau';

/** A projected service-account token's claims, valid for `seconds` from now on `clock`. */
function claims(
  clock: TestClock,
  seconds = 3600,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const now = Math.floor(clock.now() / 1000);
  return { iss: ISSUER, sub: SUBJECT, aud: ['vault'], iat: now, nbf: now, exp: now + seconds, ...overrides };
}

function assertUnhealthy(status: ProviderStatus, reason: RegExp): void {
  assert.ok(!status.healthy && reason.test(status.reason), `${JSON.stringify(status)} !~ ${reason}`);
  assert.equal(status.code, 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', 'a refused login is not the key gone');
}

function logins(fixture: Fixture, outcome = 'OK'): number {
  return fixture.metrics.count('vault_logins_total', { provider: 'vault-test', method: 'jwt', outcome });
}

describe('vault auth: JWT', { skip: emulatorOnly }, () => {
  const vault = useVaultBackend();
  const ctx = (): RequestContext => testRequestContext(3_000, undefined, vault.clock);
  let signer: JwtSigner | undefined;

  /** Enables JWT auth at `mount` with a role for the fixture's policy; returns the issuer's signer. */
  async function jwtMount(mount: string, ttlSeconds = 60): Promise<JwtSigner> {
    signer ??= await createJwtSigner();
    const emulator = vault.backend.emulator;
    assert.ok(emulator !== undefined);
    emulator.configureJwtAuth({
      mount,
      jwtValidationPubkeys: [signer.publicKeyPem],
      boundIssuer: ISSUER,
      role: 'trousseau',
      boundAudiences: ['vault'],
      boundSubject: SUBJECT,
      policies: [vault.fixture.policy],
      tokenTtlSeconds: ttlSeconds,
    });
    return signer;
  }

  it('logs in with the JWT file, read anew at every login; no JWT reaches a log line', async () => {
    const issuer = await jwtMount('jwt-k8s');
    const first = issuer.sign(claims(vault.clock, 90));
    const tokenFile = await vault.fixture.writeFile('jwt-first', first);
    const before = logins(vault.fixture);
    const provider = await vault.fixture.open({
      auth: { method: 'jwt', role: 'trousseau', mount: 'jwt-k8s', tokenFile },
    });
    try {
      await roundTrip(provider);
      assert.ok((await provider.status(ctx())).healthy);
      assert.equal(logins(vault.fixture), before + 1);
      // The kubelet writes a fresh token before the old one expires; the Vault token expires too.
      const second = issuer.sign(claims(vault.clock, 3600));
      await vault.fixture.writeFile(tokenFile, second);
      vault.clock.advance(120_000);
      await roundTrip(provider);
      assert.equal(
        logins(vault.fixture),
        before + 2,
        'logged in again, with the new JWT (the old one expired)',
      );
      for (const jwt of [first, second]) {
        assert.ok(!vault.fixture.logger.lines.some((line) => line.includes(jwt)), 'a JWT was logged');
      }
    } finally {
      await provider.close();
    }
  });

  it('renews its token, and logs in again when renewal is refused', async () => {
    const issuer = await jwtMount('jwt-renew');
    const tokenFile = await vault.fixture.writeFile('jwt-renew', issuer.sign(claims(vault.clock)));
    const renewed = (outcome: string): number =>
      vault.fixture.metrics.count('vault_token_renewals_total', { provider: 'vault-test', outcome });
    const before = { logins: logins(vault.fixture), renewed: renewed('OK'), failed: renewed('UNAVAILABLE') };
    const provider = await vault.fixture.open({
      auth: { method: 'jwt', role: 'trousseau', mount: 'jwt-renew', tokenFile },
      keyRefreshIntervalSeconds: 60,
    });
    try {
      vault.clock.advance(41_000);
      assert.ok((await provider.status(ctx())).healthy);
      assert.equal(renewed('OK'), before.renewed + 1);
      assert.equal(logins(vault.fixture), before.logins + 1, 'renewed, not replaced');
      vault.clock.advance(41_000);
      vault.backend.emulator?.faults.failNext(3, 500, { path: 'auth/token/renew-self' });
      assert.ok((await provider.status(ctx())).healthy);
      assert.equal(renewed('UNAVAILABLE'), before.failed + 1);
      assert.equal(logins(vault.fixture), before.logins + 2, 'a failed renewal leads to a new login');
      await roundTrip(provider);
    } finally {
      await provider.close();
    }
  });

  it("reports a refused login with Vault's reason, and heals when a good JWT is written", async () => {
    const issuer = await jwtMount('jwt-refused');
    const tokenFile = await vault.fixture.writeFile(
      'jwt-refused',
      issuer.sign(claims(vault.clock, 3600, { aud: ['not-vault'] })),
    );
    const provider = await vault.fixture.open({
      auth: { method: 'jwt', role: 'trousseau', mount: 'jwt-refused', tokenFile },
    });
    try {
      assertUnhealthy(
        await provider.status(ctx()),
        /vault login failed: error validating claims: aud claim does not match any bound audience/,
      );
      await vault.fixture.writeFile(tokenFile, issuer.sign(claims(vault.clock, -3600)));
      assertUnhealthy(await provider.status(ctx()), /token is expired \(exp\)/);
      const stranger = await createJwtSigner();
      await vault.fixture.writeFile(tokenFile, stranger.sign(claims(vault.clock)));
      assertUnhealthy(
        await provider.status(ctx()),
        /no known key successfully validated the token signature/,
      );
      await vault.fixture.writeFile(tokenFile, '');
      assertUnhealthy(await provider.status(ctx()), /JWT file \S+jwt-refused is empty/);
      await vault.fixture.writeFile(tokenFile, issuer.sign(claims(vault.clock)));
      assert.ok((await provider.status(ctx())).healthy, 'no restart needed');
      await roundTrip(provider);
    } finally {
      await provider.close();
    }
  });

  it('logs in again when Vault answers 403 to a token it let expire (clocks disagree)', async () => {
    const vaultClock = new TestClock();
    const skewed = await startBackend({ clock: vaultClock });
    const fixture = await createFixture(skewed);
    const issuer = await createJwtSigner();
    try {
      skewed.emulator?.configureJwtAuth({
        jwtValidationPubkeys: [issuer.publicKeyPem],
        role: 'trousseau',
        boundAudiences: ['vault'],
        policies: [fixture.policy],
        tokenTtlSeconds: 60,
      });
      const tokenFile = await fixture.writeFile('jwt', issuer.sign(claims(vaultClock)));
      const provider = await fixture.open({ auth: { method: 'jwt', role: 'trousseau', tokenFile } });
      try {
        await roundTrip(provider);
        vaultClock.advance(61_000);
        await roundTrip(provider);
        assert.equal(logins(fixture), 2);
      } finally {
        await provider.close();
      }
    } finally {
      await skewed.close();
      await fixture.cleanup();
    }
  });
});
