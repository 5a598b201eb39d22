// Token lifecycle on the injected clock, renew-self, AppRole and Kubernetes logins, policies, namespaces.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startVaultEmulator, type VaultEmulator } from '../../src/vault/index.js';
import { auth, b64, call, data, errorsOf, ManualClock } from './support.js';

const ACL_DENIED = ['1 error occurred:\n\t* permission denied\n\n'];

describe('vault emulator: tokens', () => {
  const clock = new ManualClock();
  let vault: VaultEmulator;
  before(async () => {
    vault = await startVaultEmulator({ clock });
    vault.createKey('k8s');
    vault.writePolicy('kms', [
      { path: 'transit/encrypt/k8s', capabilities: ['update'] },
      { path: 'transit/decrypt/k8s', capabilities: ['update'] },
    ]);
  });
  after(() => vault.close());

  it('expires a token on the injected clock and then answers 403 permission denied', async () => {
    const token = vault.createToken({ policies: ['kms'], ttlSeconds: 10 });
    const lookup = await call(vault, 'GET', 'auth/token/lookup-self', { token });
    assert.equal(lookup.status, 200);
    assert.equal(data(lookup).ttl, 10);
    assert.deepEqual(data(lookup).policies, ['default', 'kms']);
    clock.advance(4);
    assert.equal(data(await call(vault, 'GET', 'auth/token/lookup-self', { token })).ttl, 6);
    clock.advance(6);
    const expired = await call(vault, 'POST', 'transit/encrypt/k8s', {
      token,
      body: { plaintext: b64('x') },
    });
    assert.equal(expired.status, 403);
    assert.deepEqual(errorsOf(expired), ['permission denied']);
    // Expired means revoked: a later clock change does not bring it back.
    clock.advance(-100);
    assert.equal((await call(vault, 'GET', 'auth/token/lookup-self', { token })).status, 403);
    clock.advance(100);
  });

  it("renews a renewable token, capping at its max TTL with Vault's warning", async () => {
    const token = vault.createToken({ policies: ['kms'], ttlSeconds: 30, maxTtlSeconds: 50 });
    clock.advance(20);
    const renewed = await call(vault, 'POST', 'auth/token/renew-self', { token, body: { increment: '25s' } });
    assert.equal(renewed.status, 200);
    assert.equal(auth(renewed).lease_duration, 25);
    assert.equal(auth(renewed).client_token, token);
    assert.equal((renewed.body as { warnings: unknown }).warnings, null);
    const lookup = data(await call(vault, 'GET', 'auth/token/lookup-self', { token }));
    assert.equal(lookup.ttl, 25);
    assert.equal(typeof lookup.last_renewal_time, 'number');
    clock.advance(20);
    const capped = await call(vault, 'POST', 'auth/token/renew-self', { token, body: { increment: 60 } });
    assert.equal(capped.status, 200);
    assert.equal(auth(capped).lease_duration, 10);
    assert.deepEqual((capped.body as { warnings: unknown }).warnings, [
      'TTL of "1m0s" exceeded the effective max_ttl of "10s"; TTL value is capped accordingly',
    ]);
    clock.advance(10);
    const gone = await call(vault, 'POST', 'auth/token/renew-self', { token, body: {} });
    assert.equal(gone.status, 403);
    assert.deepEqual(errorsOf(gone), ['permission denied']);
  });

  it('renews without increment to the original TTL', async () => {
    const token = vault.createToken({ policies: ['kms'], ttlSeconds: 40 });
    clock.advance(30);
    const renewed = await call(vault, 'PUT', 'auth/token/renew-self', { token });
    assert.equal(renewed.status, 200);
    assert.equal(auth(renewed).lease_duration, 40);
  });

  it('refuses to renew a non-renewable token and the root token as Vault does', async () => {
    const token = vault.createToken({ policies: ['kms'], ttlSeconds: 30, renewable: false });
    const refused = await call(vault, 'POST', 'auth/token/renew-self', { token, body: { increment: '30s' } });
    assert.equal(refused.status, 400);
    assert.deepEqual(errorsOf(refused), ['lease is not renewable']);
    assert.equal(data(await call(vault, 'GET', 'auth/token/lookup-self', { token })).renewable, false);
    const root = await call(vault, 'POST', 'auth/token/renew-self', { token: vault.rootToken });
    assert.equal(root.status, 400);
    assert.deepEqual(errorsOf(root), ['lease not found']);
    const rootLookup = data(await call(vault, 'GET', 'auth/token/lookup-self', { token: vault.rootToken }));
    assert.equal(rootLookup.expire_time, null);
    assert.deepEqual(rootLookup.policies, ['root']);
    assert.equal(rootLookup.ttl, 0);
  });

  it('revokes: by the test, and by revoke-self', async () => {
    const a = vault.createToken({ policies: ['kms'] });
    vault.revokeToken(a);
    assert.equal((await call(vault, 'GET', 'auth/token/lookup-self', { token: a })).status, 403);
    const b = vault.createToken({ policies: ['kms'] });
    assert.equal((await call(vault, 'POST', 'auth/token/revoke-self', { token: b })).status, 204);
    const after = await call(vault, 'POST', 'transit/encrypt/k8s', {
      token: b,
      body: { plaintext: b64('x') },
    });
    assert.equal(after.status, 403);
    assert.deepEqual(errorsOf(after), ['permission denied']);
  });

  it('counts uses and revokes after the last one', async () => {
    const token = vault.createToken({ policies: ['kms'], numUses: 2 });
    const body = { plaintext: b64('x') };
    assert.equal((await call(vault, 'POST', 'transit/encrypt/k8s', { token, body })).status, 200);
    assert.equal((await call(vault, 'POST', 'transit/encrypt/k8s', { token, body })).status, 200);
    assert.equal((await call(vault, 'POST', 'transit/encrypt/k8s', { token, body })).status, 403);
  });

  it('answers a missing token with 400 missing client token, also via an empty header', async () => {
    const none = await call(vault, 'GET', 'transit/keys/k8s');
    assert.equal(none.status, 400);
    assert.deepEqual(errorsOf(none), ['missing client token']);
    const empty = await call(vault, 'GET', 'transit/keys/k8s', { token: '' });
    assert.deepEqual(errorsOf(empty), ['missing client token']);
  });

  it('creates child tokens over HTTP within the parent policies', async () => {
    const created = await call(vault, 'POST', 'auth/token/create', {
      token: vault.rootToken,
      body: { policies: ['kms'], ttl: '1h', renewable: true },
    });
    assert.equal(created.status, 200);
    assert.equal(auth(created).lease_duration, 3600);
    assert.deepEqual(auth(created).policies, ['default', 'kms']);
    const child = auth(created).client_token as string;
    vault.writePolicy('minter', [{ path: 'auth/token/create', capabilities: ['update'] }]);
    const parent = vault.createToken({ policies: ['minter'] });
    const escalation = await call(vault, 'POST', 'auth/token/create', {
      token: parent,
      body: { policies: ['kms'] },
    });
    assert.equal(escalation.status, 400);
    assert.deepEqual(errorsOf(escalation), ['child policies must be subset of parent']);
    assert.equal(
      (await call(vault, 'POST', 'transit/encrypt/k8s', { token: child, body: { plaintext: b64('x') } }))
        .status,
      200,
    );
  });
});

describe('vault emulator: policies', () => {
  let vault: VaultEmulator;
  before(async () => {
    vault = await startVaultEmulator();
    vault.createKey('k8s');
    vault.createKey('other');
  });
  after(() => vault.close());

  it('allows encrypt/decrypt but denies rotate and key config with the multierror text', async () => {
    vault.writePolicy('kms', [
      { path: 'transit/encrypt/k8s', capabilities: ['update'] },
      { path: 'transit/decrypt/k8s', capabilities: ['update'] },
      { path: 'transit/keys/k8s', capabilities: ['read'] },
    ]);
    const token = vault.createToken({ policies: ['kms'] });
    const enc = await call(vault, 'POST', 'transit/encrypt/k8s', {
      token,
      body: { plaintext: b64('secret') },
    });
    assert.equal(enc.status, 200);
    const dec = await call(vault, 'POST', 'transit/decrypt/k8s', {
      token,
      body: { ciphertext: data(enc).ciphertext },
    });
    assert.equal(data(dec).plaintext, b64('secret'));
    assert.equal((await call(vault, 'GET', 'transit/keys/k8s', { token })).status, 200);
    for (const path of ['transit/keys/k8s/rotate', 'transit/keys/k8s/config']) {
      const denied = await call(vault, 'POST', path, { token, body: {} });
      assert.equal(denied.status, 403, path);
      assert.deepEqual(errorsOf(denied), ACL_DENIED);
    }
    const otherKey = await call(vault, 'POST', 'transit/encrypt/other', {
      token,
      body: { plaintext: b64('x') },
    });
    assert.equal(otherKey.status, 403);
  });

  it('uses the most specific rule: exact over glob, deny over allow, and needs create to upsert a key', async () => {
    vault.writePolicy('wide', [
      { path: 'transit/*', capabilities: ['create', 'read', 'update'] },
      { path: 'transit/keys/other', capabilities: ['deny'] },
    ]);
    vault.writePolicy('narrow', [{ path: 'transit/encrypt/+', capabilities: ['update'] }]);
    const wide = vault.createToken({ policies: ['wide'] });
    assert.equal((await call(vault, 'GET', 'transit/keys/k8s', { token: wide })).status, 200);
    assert.equal((await call(vault, 'GET', 'transit/keys/other', { token: wide })).status, 403);
    const created = await call(vault, 'POST', 'transit/encrypt/fresh', {
      token: wide,
      body: { plaintext: b64('x') },
    });
    assert.equal(created.status, 200, 'create capability upserts the key as Vault does');
    assert.match(data(created).ciphertext as string, /^vault:v1:/);
    const narrow = vault.createToken({ policies: ['narrow'] });
    assert.equal(
      (await call(vault, 'POST', 'transit/encrypt/k8s', { token: narrow, body: { plaintext: b64('x') } }))
        .status,
      200,
    );
    const noCreate = await call(vault, 'POST', 'transit/encrypt/brand-new', {
      token: narrow,
      body: { plaintext: b64('x') },
    });
    assert.equal(noCreate.status, 403, 'update alone cannot create a key');
    assert.equal(vault.readKey('brand-new'), undefined);
  });

  it('grants token self-service through the built-in default policy, which can be overridden', async () => {
    const token = vault.createToken({ policies: [] });
    assert.equal((await call(vault, 'GET', 'auth/token/lookup-self', { token })).status, 200);
    vault.writePolicy('default', []);
    assert.equal((await call(vault, 'GET', 'auth/token/lookup-self', { token })).status, 403);
  });
});

describe('vault emulator: AppRole and Kubernetes logins', () => {
  const clock = new ManualClock();
  let vault: VaultEmulator;
  before(async () => {
    vault = await startVaultEmulator({ clock });
    vault.createKey('k8s');
    vault.writePolicy('kms', [{ path: 'transit/encrypt/k8s', capabilities: ['update'] }]);
  });
  after(() => vault.close());

  it('logs in with AppRole on a custom mount and issues a token with the role TTLs', async () => {
    vault.configureAppRole({
      mount: 'approle-kms',
      roleName: 'kms',
      roleId: 'role-1',
      secretId: 'secret-1',
      policies: ['kms'],
      tokenTtlSeconds: 60,
      tokenMaxTtlSeconds: 90,
    });
    const login = await call(vault, 'POST', 'auth/approle-kms/login', {
      body: { role_id: 'role-1', secret_id: 'secret-1' },
    });
    assert.equal(login.status, 200);
    assert.deepEqual(auth(login).policies, ['default', 'kms']);
    assert.deepEqual(auth(login).metadata, { role_name: 'kms' });
    assert.equal(auth(login).lease_duration, 60);
    assert.equal(auth(login).renewable, true);
    const token = auth(login).client_token as string;
    assert.match(token, /^s\.[A-Za-z0-9]{24}$/);
    const lookup = data(await call(vault, 'GET', 'auth/token/lookup-self', { token }));
    assert.equal(lookup.path, 'auth/approle-kms/login');
    clock.advance(50);
    const renewed = await call(vault, 'POST', 'auth/token/renew-self', { token, body: { increment: '60s' } });
    assert.equal(auth(renewed).lease_duration, 40, 'capped by the role max TTL');
    assert.deepEqual(auth(renewed).policies, ['kms']);
    assert.deepEqual(auth(renewed).token_policies, ['default', 'kms']);

    const wrongSecret = await call(vault, 'POST', 'auth/approle-kms/login', {
      body: { role_id: 'role-1', secret_id: 'x' },
    });
    assert.equal(wrongSecret.status, 400);
    assert.deepEqual(errorsOf(wrongSecret), ['invalid secret id']);
    const wrongRole = await call(vault, 'POST', 'auth/approle-kms/login', {
      body: { role_id: 'nope', secret_id: 'x' },
    });
    assert.deepEqual(errorsOf(wrongRole), ['invalid role ID']);
    const missing = await call(vault, 'POST', 'auth/approle-kms/login', { body: {} });
    assert.deepEqual(errorsOf(missing), ['missing role_id']);
    const notMounted = await call(vault, 'POST', 'auth/approle/login', {
      body: { role_id: 'role-1', secret_id: 'secret-1' },
    });
    assert.equal(notMounted.status, 400);
    assert.deepEqual(errorsOf(notMounted), ['missing client token']);
  });

  it('logs in with Kubernetes when the service-account token is issued and bound, refusing others as Vault 1.4 does', async () => {
    const cluster = vault.configureKubernetesAuth({
      mount: 'k8s-auth',
      role: 'trousseau',
      boundServiceAccountNames: ['trousseau'],
      boundNamespaces: ['kube-system'],
      policies: ['kms'],
      tokenTtlSeconds: 120,
    });
    const jwt = cluster.issueServiceAccountToken({ name: 'trousseau', namespace: 'kube-system' });
    assert.equal(jwt.split('.').length, 3);
    const login = await call(vault, 'POST', 'auth/k8s-auth/login', { body: { role: 'trousseau', jwt } });
    assert.equal(login.status, 200);
    assert.equal(auth(login).lease_duration, 120);
    assert.equal((auth(login).metadata as Record<string, string>).service_account_name, 'trousseau');
    const token = auth(login).client_token as string;
    assert.equal(
      (await call(vault, 'POST', 'transit/encrypt/k8s', { token, body: { plaintext: b64('x') } })).status,
      200,
    );
    const rotated = cluster.issueServiceAccountToken({ name: 'trousseau', namespace: 'kube-system' });
    assert.notEqual(rotated, jwt);
    const again = await call(vault, 'POST', 'auth/k8s-auth/login', {
      body: { role: 'trousseau', jwt: rotated },
    });
    assert.equal(again.status, 200);
    assert.equal(auth(again).entity_id, auth(login).entity_id, 'another login of the same account');

    // The claims are the plugin's to refuse, with 500 and its message (auth-kubernetes.json).
    const refusals: Array<[string, string]> = [
      [
        cluster.issueServiceAccountToken({ name: 'intruder', namespace: 'kube-system' }),
        'service account name not authorized',
      ],
      [
        cluster.issueServiceAccountToken({ name: 'trousseau', namespace: 'default' }),
        'namespace not authorized',
      ],
      ['not.a-jwt', 'not a compact JWS'],
      [
        cluster.issueServiceAccountToken({ name: 'trousseau', namespace: 'kube-system', projected: {} }),
        'claim "iss" is invalid',
      ],
    ];
    for (const [candidate, message] of refusals) {
      const refused = await call(vault, 'POST', 'auth/k8s-auth/login', {
        body: { role: 'trousseau', jwt: candidate },
      });
      assert.equal(refused.status, 500, message);
      assert.deepEqual(errorsOf(refused), [message]);
    }
    // The TokenReview's refusal is a bare 403: a forged token, a deleted account, an unreachable API.
    const reviewRefusals = [`${jwt.slice(0, jwt.lastIndexOf('.'))}.forged`, rotated];
    cluster.revokeServiceAccountToken(rotated);
    for (const candidate of reviewRefusals) {
      const refused = await call(vault, 'POST', 'auth/k8s-auth/login', {
        body: { role: 'trousseau', jwt: candidate },
      });
      assert.equal(refused.status, 403);
      assert.deepEqual(errorsOf(refused), ['permission denied']);
    }
    cluster.tokenReviewReachable = false;
    const unreachable = await call(vault, 'POST', 'auth/k8s-auth/login', {
      body: { role: 'trousseau', jwt },
    });
    assert.equal(unreachable.status, 403);
    cluster.tokenReviewReachable = true;
    assert.equal(
      (await call(vault, 'POST', 'auth/k8s-auth/login', { body: { role: 'trousseau', jwt } })).status,
      200,
    );
    const badRole = await call(vault, 'POST', 'auth/k8s-auth/login', { body: { role: 'other', jwt } });
    assert.equal(badRole.status, 400);
    assert.deepEqual(errorsOf(badRole), ['invalid role name "other"']);
    const noJwt = await call(vault, 'POST', 'auth/k8s-auth/login', { body: { role: 'trousseau' } });
    assert.deepEqual(errorsOf(noJwt), ['missing jwt']);
  });

  it('logs in with a projected token once the issuer is configured, until the token expires', async () => {
    const cluster = vault.configureKubernetesAuth({
      mount: 'k8s-projected',
      issuer: 'https://kubernetes.default.svc.cluster.local',
      role: 'trousseau',
      boundServiceAccountNames: ['trousseau'],
      boundNamespaces: ['kube-system'],
      policies: ['kms'],
      tokenTtlSeconds: 60,
    });
    const projected = cluster.issueServiceAccountToken({
      name: 'trousseau',
      namespace: 'kube-system',
      projected: { audience: 'vault', expirationSeconds: 600 },
    });
    const login = await call(vault, 'POST', 'auth/k8s-projected/login', {
      body: { role: 'trousseau', jwt: projected },
    });
    assert.equal(login.status, 200);
    assert.equal((auth(login).metadata as Record<string, string>).service_account_secret_name, '');
    // With the issuer set, a legacy Secret token's `iss` no longer matches.
    const legacy = cluster.issueServiceAccountToken({ name: 'trousseau', namespace: 'kube-system' });
    const refused = await call(vault, 'POST', 'auth/k8s-projected/login', {
      body: { role: 'trousseau', jwt: legacy },
    });
    assert.equal(refused.status, 500);
    assert.deepEqual(errorsOf(refused), ['claim "iss" is invalid']);
    // The kubelet would have replaced it by now: the cluster refuses an expired projected token.
    clock.advance(601);
    const expired = await call(vault, 'POST', 'auth/k8s-projected/login', {
      body: { role: 'trousseau', jwt: projected },
    });
    assert.equal(expired.status, 403);
  });

  it('answers refused Kubernetes logins with 403 when asked to behave like newer Vault', async () => {
    const newer = await startVaultEmulator({ kubernetesLoginFailureStatus: 403 });
    try {
      const cluster = newer.configureKubernetesAuth({
        role: 'r',
        boundServiceAccountNames: ['a'],
        boundNamespaces: ['*'],
        policies: [],
        tokenTtlSeconds: 60,
      });
      const jwt = cluster.issueServiceAccountToken({ name: 'b', namespace: 'x' });
      const refused = await call(newer, 'POST', 'auth/kubernetes/login', { body: { role: 'r', jwt } });
      assert.equal(refused.status, 403);
      assert.deepEqual(errorsOf(refused), ['service account name not authorized']);
      const unknown = cluster.issueServiceAccountToken({ name: 'a', namespace: 'x' });
      cluster.revokeServiceAccountToken(unknown);
      const gone = await call(newer, 'POST', 'auth/kubernetes/login', { body: { role: 'r', jwt: unknown } });
      assert.equal(gone.status, 403);
      assert.deepEqual(errorsOf(gone), ['permission denied']);
      const ok = cluster.issueServiceAccountToken({ name: 'a', namespace: 'anything' });
      assert.equal(
        (await call(newer, 'POST', 'auth/kubernetes/login', { body: { role: 'r', jwt: ok } })).status,
        200,
      );
    } finally {
      await newer.close();
    }
  });
});

describe('vault emulator: namespaces', () => {
  let vault: VaultEmulator;
  before(async () => {
    vault = await startVaultEmulator();
    vault.createKey('k8s', { namespace: 'team-a' });
    vault.createKey('k8s', { namespace: 'team-b', mount: 'kms/transit' });
    vault.writePolicy('kms', [{ path: 'transit/encrypt/k8s', capabilities: ['update'] }], {
      namespace: 'team-a',
    });
  });
  after(() => vault.close());

  it('scopes keys per namespace and mount', async () => {
    const root = vault.rootToken;
    const body = { plaintext: b64('x') };
    const a = await call(vault, 'POST', 'transit/encrypt/k8s', { token: root, namespace: 'team-a/', body });
    assert.equal(a.status, 200);
    const inB = await call(vault, 'POST', 'transit/decrypt/k8s', {
      token: root,
      namespace: 'team-b',
      body: { ciphertext: data(a).ciphertext },
    });
    assert.equal(inB.status, 400);
    assert.deepEqual(errorsOf(inB), ['encryption key not found']);
    const mounted = await call(vault, 'GET', 'kms/transit/keys/k8s', { token: root, namespace: 'team-b' });
    assert.equal(mounted.status, 200);
    assert.equal((await call(vault, 'GET', 'transit/keys/k8s', { token: root })).status, 404);
  });

  it('refuses a token of namespace A in namespace B and in the root namespace', async () => {
    const token = vault.createToken({ policies: ['kms'], namespace: 'team-a' });
    assert.match(token, /^s\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{5}$/);
    const body = { plaintext: b64('x') };
    assert.equal(
      (await call(vault, 'POST', 'transit/encrypt/k8s', { token, namespace: 'team-a', body })).status,
      200,
    );
    for (const namespace of ['team-b', undefined]) {
      const refused = await call(vault, 'POST', 'transit/encrypt/k8s', {
        token,
        ...(namespace ? { namespace } : {}),
        body,
      });
      assert.equal(refused.status, 403, String(namespace));
      assert.deepEqual(errorsOf(refused), ['permission denied']);
    }
    const lookup = data(await call(vault, 'GET', 'auth/token/lookup-self', { token, namespace: 'team-a' }));
    assert.equal(lookup.namespace_path, 'team-a/');
  });

  it('logs in per namespace: an AppRole of namespace A issues tokens of namespace A', async () => {
    vault.configureAppRole({
      namespace: 'team-a',
      roleName: 'kms',
      roleId: 'ra',
      secretId: 'sa',
      policies: ['kms'],
      tokenTtlSeconds: 60,
    });
    const login = await call(vault, 'POST', 'auth/approle/login', {
      namespace: 'team-a',
      body: { role_id: 'ra', secret_id: 'sa' },
    });
    assert.equal(login.status, 200);
    const token = auth(login).client_token as string;
    const body = { plaintext: b64('x') };
    assert.equal(
      (await call(vault, 'POST', 'transit/encrypt/k8s', { token, namespace: 'team-a', body })).status,
      200,
    );
    assert.equal((await call(vault, 'POST', 'transit/encrypt/k8s', { token, body })).status, 403);
    assert.deepEqual(
      vault.requests
        .filter((r) => r.namespace === 'team-a')
        .map((r) => r.path)
        .slice(-2),
      ['/v1/auth/approle/login', '/v1/transit/encrypt/k8s'],
    );
  });
});
