// JWT and TLS certificate logins beyond what the recordings show: ES256 keys, not-before, a renewal
// with a rotated client certificate, renewal refused to another client; and the Vault Agent stand-in.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createTestCertificates,
  issueClientCertificate,
  type TestCertificates,
} from '../../src/certificates.js';
import {
  createJwtSigner,
  startVaultAgent,
  startVaultEmulator,
  type JwtSigner,
  type VaultEmulator,
} from '../../src/vault/index.js';
import { auth, b64, call, errorsOf, ManualClock } from './support.js';

describe('vault emulator: JWT login', () => {
  const clock = new ManualClock();
  let vault: VaultEmulator;
  let signer: JwtSigner;
  before(async () => {
    vault = await startVaultEmulator({ clock });
    signer = await createJwtSigner();
  });
  after(() => vault.close());

  const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => {
    const now = clock.now() / 1000;
    return {
      iss: 'https://issuer.test',
      sub: 'workload',
      aud: 'vault',
      iat: now,
      nbf: now,
      exp: now + 300,
      ...overrides,
    };
  };

  it('checks the signature with ES256 and RS256 keys, and the times with a minute of leeway', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    vault.configureJwtAuth({
      mount: 'jwt-mixed',
      jwtValidationPubkeys: [
        signer.publicKeyPem,
        ec.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      ],
      boundIssuer: 'https://issuer.test',
      role: 'r',
      boundAudiences: ['vault'],
      policies: [],
      tokenTtlSeconds: 60,
    });
    const login = (jwt: string): ReturnType<typeof call> =>
      call(vault, 'POST', 'auth/jwt-mixed/login', { body: { role: 'r', jwt } });
    assert.equal((await login(signer.sign(claims()))).status, 200);
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify(claims())).toString('base64url');
    const signature = sign('sha256', Buffer.from(`${header}.${payload}`), {
      key: ec.privateKey,
      dsaEncoding: 'ieee-p1363',
    }).toString('base64url');
    const ecLogin = await login(`${header}.${payload}.${signature}`);
    assert.equal(ecLogin.status, 200);
    assert.equal(auth(ecLogin).metadata && (auth(ecLogin).metadata as Record<string, string>).role, 'r');
    // An ES256 header over an RSA signature does not verify.
    const mislabelled = signer.sign(claims(), { alg: 'ES256' });
    assert.deepEqual(errorsOf(await login(mislabelled)), [
      'no known key successfully validated the token signature',
    ]);
    const now = clock.now() / 1000;
    assert.equal((await login(signer.sign(claims({ nbf: now + 30 })))).status, 200, 'within the leeway');
    assert.deepEqual(errorsOf(await login(signer.sign(claims({ nbf: now + 90 })))), [
      'error validating claims: square/go-jose/jwt: validation failed, token not valid yet (nbf)',
    ]);
    assert.equal((await login(signer.sign(claims({ exp: now - 30 })))).status, 200, 'within the leeway');
    assert.deepEqual(errorsOf(await login(signer.sign(claims({ aud: undefined })))), [
      'error validating claims: aud claim does not match any bound audience',
    ]);
    assert.deepEqual(errorsOf(await login(signer.sign(claims({ sub: undefined })))), [
      'claim "sub" not found in token',
    ]);
  });

  it('gives the same entity to the same subject and renews its token like any login', async () => {
    vault.configureJwtAuth({
      mount: 'jwt',
      jwtValidationPubkeys: [signer.publicKeyPem],
      role: 'r',
      boundAudiences: ['vault'],
      policies: ['kms'],
      tokenTtlSeconds: 60,
    });
    const first = await call(vault, 'POST', 'auth/jwt/login', {
      body: { role: 'r', jwt: signer.sign(claims()) },
    });
    const second = await call(vault, 'POST', 'auth/jwt/login', {
      body: { role: 'r', jwt: signer.sign(claims()) },
    });
    assert.equal(auth(first).entity_id, auth(second).entity_id);
    const other = await call(vault, 'POST', 'auth/jwt/login', {
      body: { role: 'r', jwt: signer.sign(claims({ sub: 'another' })) },
    });
    assert.notEqual(auth(other).entity_id, auth(first).entity_id);
    const renewed = await call(vault, 'POST', 'auth/token/renew-self', {
      token: auth(first).client_token as string,
      body: { increment: '60s' },
    });
    assert.equal(renewed.status, 200);
    assert.deepEqual(auth(renewed).policies, ['kms'], 'the role policies as configured');
  });
});

/** A request to the emulator over TLS with the given client certificate (or none). */
function tlsCall(
  vault: VaultEmulator,
  ca: string,
  client: { cert: string; key: string } | undefined,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = request(`${vault.url}/v1/${path}`, {
      method,
      ca,
      ...(client ?? {}),
      agent: false,
      headers: {
        ...(options.token === undefined ? {} : { 'X-Vault-Token': options.token }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
        }),
      );
    });
    req.end(body);
  });
}

describe('vault emulator: TLS certificate login', () => {
  let pki: TestCertificates;
  let stranger: TestCertificates;
  let vault: VaultEmulator;
  before(async () => {
    pki = await createTestCertificates();
    stranger = await createTestCertificates();
    vault = await startVaultEmulator({ tls: { key: pki.serverKey, cert: pki.serverCert } });
    vault.configureCertAuth({ name: 'kms', certificate: pki.ca, policies: ['kms'], tokenTtlSeconds: 60 });
    vault.configureCertAuth({ name: 'other', certificate: stranger.ca, policies: [], tokenTtlSeconds: 60 });
  });
  after(() => vault.close());

  const client = (set: TestCertificates): { cert: string; key: string } => ({
    cert: set.clientCert,
    key: set.clientKey,
  });

  it('picks the role whose CA signed the certificate, or the one named', async () => {
    const login = await tlsCall(vault, pki.ca, client(pki), 'POST', 'auth/cert/login', { body: {} });
    assert.equal(login.status, 200);
    const metadata = (login.body.auth as { metadata: Record<string, string> }).metadata;
    assert.equal(metadata.cert_name, 'kms');
    assert.equal(metadata.common_name, 'trousseau-test-client');
    const named = await tlsCall(vault, pki.ca, client(stranger), 'POST', 'auth/cert/login', {
      body: { name: 'other' },
    });
    assert.equal(named.status, 200);
    const wrongName = await tlsCall(vault, pki.ca, client(pki), 'POST', 'auth/cert/login', {
      body: { name: 'other' },
    });
    assert.equal(wrongName.status, 400);
    assert.deepEqual(wrongName.body.errors, ['invalid certificate or no client certificate supplied']);
  });

  it('renews with a new certificate of the same CA (cert-manager rotated it) but not with another client', async () => {
    const login = await tlsCall(vault, pki.ca, client(pki), 'POST', 'auth/cert/login', {
      body: { name: 'kms' },
    });
    const token = (login.body.auth as { client_token: string }).client_token;
    // Another key and certificate under the same CA: another subject key id, the same authority key id.
    const rotated = await issueClientCertificate(pki);
    const again = await tlsCall(vault, pki.ca, rotated, 'POST', 'auth/token/renew-self', {
      token,
      body: { increment: '60s' },
    });
    assert.equal(again.status, 200);
    const foreign = await tlsCall(vault, pki.ca, client(stranger), 'POST', 'auth/token/renew-self', {
      token,
      body: { increment: '60s' },
    });
    assert.equal(foreign.status, 400);
    assert.deepEqual(foreign.body.errors, [
      'client identity during renewal not matching client identity used during login',
    ]);
    const none = await tlsCall(vault, pki.ca, undefined, 'POST', 'auth/token/renew-self', {
      token,
      body: { increment: '60s' },
    });
    assert.deepEqual(none.body.errors, ['client certificate must be supplied']);
  });

  it('refuses an expired client certificate as Go does (500), before looking for a role', async () => {
    const expired = await issueClientCertificate(pki, { notAfter: new Date(Date.now() - 60_000) });
    const refused = await tlsCall(vault, pki.ca, expired, 'POST', 'auth/cert/login', { body: {} });
    assert.equal(refused.status, 500);
    assert.match(
      String((refused.body.errors as string[])[0]),
      /^failed to verify client's certificate: x509: certificate has expired or is not yet valid: current time \S+Z is after \S+Z$/,
    );
  });

  it('refuses a server certificate presented as a client one (no clientAuth usage)', async () => {
    const refused = await tlsCall(
      vault,
      pki.ca,
      { cert: pki.serverCert, key: pki.serverKey },
      'POST',
      'auth/cert/login',
      { body: {} },
    );
    assert.equal(refused.status, 500);
    assert.deepEqual(refused.body.errors, [
      "failed to verify client's certificate: x509: certificate specifies an incompatible key usage",
    ]);
  });
});

/** A request to the agent's unix socket listener. */
function agentCall(
  socketPath: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      socketPath,
      path: `/v1/${path}`,
      method,
      headers: {
        ...(options.token === undefined ? {} : { 'X-Vault-Token': options.token }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
        });
      });
    });
    req.end(body);
  });
}

describe('Vault Agent stand-in: auto-auth, token added to requests, file sink', () => {
  const clock = new ManualClock(Date.now());
  let vault: VaultEmulator;
  let dir: string;
  before(async () => {
    vault = await startVaultEmulator({ clock });
    vault.createKey('k8s');
    vault.writePolicy('kms', [{ path: 'transit/encrypt/k8s', capabilities: ['update'] }]);
    vault.configureAppRole({
      roleName: 'agent',
      roleId: 'role-1',
      secretId: 'secret-1',
      policies: ['kms'],
      tokenTtlSeconds: 60,
      tokenMaxTtlSeconds: 100,
    });
    dir = await mkdtemp(join(tmpdir(), 'vault-agent-'));
  });
  after(async () => {
    await vault.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('adds its token to requests without one, keeps it alive, logs in again at the max TTL', async () => {
    const socketPath = join(dir, 'agent.sock');
    const sinkFile = join(dir, 'token');
    const agent = await startVaultAgent({
      vault: vault.url,
      autoAuth: { mount: 'approle', credentials: () => ({ role_id: 'role-1', secret_id: 'secret-1' }) },
      socketPath,
      sinkFile,
      clock,
    });
    try {
      assert.equal(agent.url, `unix://${socketPath}`);
      const first = await readFile(sinkFile, 'utf8');
      const encrypt = await agentCall(socketPath, 'POST', 'transit/encrypt/k8s', {
        body: { plaintext: b64('x') },
      });
      assert.equal(encrypt.status, 200);
      // A client's own token wins (use_auto_auth_token = true).
      const own = await agentCall(socketPath, 'POST', 'transit/encrypt/k8s', {
        token: 's.NotAValidTokenAtAll000000',
        body: { plaintext: b64('x') },
      });
      assert.equal(own.status, 403);
      assert.deepEqual(
        agent.requests.map((request) => request.clientToken),
        [false, true],
      );
      // Renewed at two thirds of the TTL: the same token.
      clock.advance(41);
      assert.equal((await agentCall(socketPath, 'GET', 'auth/token/lookup-self')).status, 200);
      assert.equal(agent.logins, 1);
      assert.equal(await readFile(sinkFile, 'utf8'), first);
      // Renewed again, capped by the max TTL (100 s): 18 s left.
      clock.advance(41);
      assert.equal((await agentCall(socketPath, 'GET', 'auth/token/lookup-self')).status, 200);
      assert.equal(agent.logins, 1);
      // Past the max TTL the token is gone: the agent logs in again and writes the new token.
      clock.advance(19);
      assert.equal((await agentCall(socketPath, 'GET', 'auth/token/lookup-self')).status, 200);
      assert.equal(agent.logins, 2);
      assert.notEqual(await readFile(sinkFile, 'utf8'), first);
    } finally {
      await agent.close();
    }
  });

  it('drops the client token with force, and answers 500 when Vault cannot be reached', async () => {
    const down = await startVaultEmulator({ clock });
    down.configureAppRole({ roleName: 'a', roleId: 'r', secretId: 's', policies: [], tokenTtlSeconds: 60 });
    const socketPath = join(dir, 'force.sock');
    const agent = await startVaultAgent({
      vault: down.url,
      autoAuth: { mount: 'approle', credentials: () => ({ role_id: 'r', secret_id: 's' }) },
      useAutoAuthToken: 'force',
      socketPath,
      clock,
    });
    try {
      const lookup = await agentCall(socketPath, 'GET', 'auth/token/lookup-self', {
        token: 's.NotAValidTokenAtAll000000',
      });
      assert.equal(lookup.status, 200, 'the agent used its own token');
      await down.close();
      const refused = await agentCall(socketPath, 'GET', 'auth/token/lookup-self');
      assert.equal(refused.status, 500);
      assert.match(
        String((refused.body.errors as string[])[0]),
        /^failed to get the response: GET "http:\/\/127\.0\.0\.1:\d+\/v1\/auth\/token\/lookup-self": dial tcp 127\.0\.0\.1:\d+: connect: connection refused$/,
      );
    } finally {
      await agent.close();
    }
  });
});
