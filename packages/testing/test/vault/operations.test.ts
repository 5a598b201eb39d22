// sys/health and the seal, fault injection (latency, 5xx/429, dropped and refused connections), the
// request log, and TLS with a test CA and a required client certificate.
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { createTestCertificates, type TestCertificates } from '../../src/certificates.js';
import { startVaultEmulator, type VaultEmulator } from '../../src/vault/index.js';
import { b64, call, data, errorsOf } from './support.js';

describe('vault emulator: sys/health and the seal', () => {
  let vault: VaultEmulator;
  before(async () => {
    vault = await startVaultEmulator();
    vault.createKey('k8s');
  });
  after(() => vault.close());

  it('answers health unauthenticated: 200 active, 429 standby, 503 sealed, 501 uninitialised', async () => {
    const active = await call(vault, 'GET', 'sys/health');
    assert.equal(active.status, 200);
    assert.equal(active.body?.sealed, false);
    assert.equal(typeof active.body?.cluster_name, 'string');
    vault.setStandby(true);
    assert.equal((await call(vault, 'GET', 'sys/health')).status, 429);
    assert.equal((await call(vault, 'GET', 'sys/health?standbyok=true')).status, 200);
    vault.setStandby(false);
    vault.seal();
    const sealed = await call(vault, 'GET', 'sys/health');
    assert.equal(sealed.status, 503);
    assert.equal(sealed.body?.sealed, true);
    assert.equal(sealed.body?.cluster_name, undefined);
    assert.equal((await call(vault, 'GET', 'sys/health?sealedcode=200')).status, 200);
    assert.equal((await fetch(`${vault.url}/v1/sys/health`, { method: 'HEAD' })).status, 503);
    vault.unseal();
    vault.setInitialized(false);
    assert.equal((await call(vault, 'GET', 'sys/health')).status, 501);
    assert.equal((await call(vault, 'GET', 'transit/keys/k8s', { token: vault.rootToken })).status, 503);
    vault.setInitialized(true);
  });

  it('answers 503 Vault is sealed while sealed, and seals/unseals over HTTP', async () => {
    const token = vault.rootToken;
    vault.writePolicy('kms', [{ path: 'transit/encrypt/k8s', capabilities: ['update'] }]);
    const user = vault.createToken({ policies: ['kms'] });
    const userSeal = await call(vault, 'PUT', 'sys/seal', { token: user });
    assert.equal(userSeal.status, 403);
    assert.equal((await call(vault, 'PUT', 'sys/seal', { token })).status, 204);
    const enc = await call(vault, 'POST', 'transit/encrypt/k8s', {
      token: user,
      body: { plaintext: b64('x') },
    });
    assert.equal(enc.status, 503);
    assert.deepEqual(errorsOf(enc), ['error performing token check: Vault is sealed']);
    const login = await call(vault, 'POST', 'auth/approle/login', { body: { role_id: 'x', secret_id: 'y' } });
    assert.deepEqual(errorsOf(login), ['Vault is sealed']);
    const wrong = await call(vault, 'PUT', 'sys/unseal', { body: { key: b64('wrong') } });
    assert.equal(wrong.status, 400);
    assert.equal((await call(vault, 'GET', 'sys/seal-status')).body?.sealed, true);
    const unseal = await call(vault, 'PUT', 'sys/unseal', { body: { key: vault.unsealKey } });
    assert.equal(unseal.status, 200);
    assert.equal(unseal.body?.sealed, false);
    const again = await call(vault, 'POST', 'transit/encrypt/k8s', {
      token: user,
      body: { plaintext: b64('x') },
    });
    assert.equal(again.status, 200, 'tokens survive a seal, as in Vault');
  });
});

describe('vault emulator: fault injection and the request log', () => {
  let vault: VaultEmulator;
  before(async () => {
    vault = await startVaultEmulator();
    vault.createKey('k8s');
  });
  after(() => vault.close());

  const encrypt = () =>
    call(vault, 'POST', 'transit/encrypt/k8s', {
      token: vault.rootToken,
      body: { plaintext: b64('top secret') },
    });

  it('waits latencyMs before answering', async () => {
    vault.faults.latencyMs = 60;
    const started = performance.now();
    assert.equal((await encrypt()).status, 200);
    assert.ok(performance.now() - started >= 55, 'answered after the injected latency');
    vault.faults.latencyMs = 0;
  });

  it('fails the next requests with Vault-like 5xx and 429 bodies, then recovers', async () => {
    vault.faults.failNext(2, 500);
    const first = await encrypt();
    assert.equal(first.status, 500);
    assert.deepEqual(errorsOf(first), ['internal error']);
    assert.equal((await encrypt()).status, 500);
    assert.equal((await encrypt()).status, 200);
    vault.faults.failNext(1, 429);
    const limited = await encrypt();
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '1');
    assert.deepEqual(errorsOf(limited), ['request path "transit/encrypt/k8s": rate limit quota exceeded']);
    vault.faults.failNext(1, 503);
    assert.equal((await encrypt()).status, 503);
    vault.faults.failNext(1, 502);
    assert.equal((await encrypt()).status, 502);
  });

  it('limits failures to matching paths when asked', async () => {
    vault.faults.failNext(1, 500, { path: 'transit/decrypt/' });
    assert.equal((await call(vault, 'GET', 'sys/health')).status, 200);
    const enc = await encrypt();
    assert.equal(enc.status, 200);
    const dec = await call(vault, 'POST', 'transit/decrypt/k8s', {
      token: vault.rootToken,
      body: { ciphertext: data(enc).ciphertext },
    });
    assert.equal(dec.status, 500);
  });

  it('drops connections without answering', async () => {
    vault.faults.dropConnections = true;
    await assert.rejects(encrypt(), TypeError);
    vault.faults.dropConnections = false;
    assert.equal((await encrypt()).status, 200);
  });

  it('refuses connections and comes back on the same port', async () => {
    const url = vault.url;
    vault.faults.refuseConnections = true;
    try {
      // A kept-alive connection is cut (a socket error); a new one is refused.
      await assert.rejects(encrypt(), TypeError);
      await assert.rejects(encrypt(), (error: unknown) => {
        assert.equal(((error as Error).cause as { code?: string }).code, 'ECONNREFUSED');
        return true;
      });
    } finally {
      vault.faults.refuseConnections = false;
    }
    assert.equal(vault.url, url);
    assert.equal((await encrypt()).status, 200);
  });

  it('logs method, path, namespace and batch size, never tokens or plaintext', async () => {
    vault.clearRequests();
    const token = vault.createToken({ policies: [] });
    await call(vault, 'POST', 'transit/encrypt/k8s', {
      token,
      namespace: 'ns1',
      body: { batch_input: [{ plaintext: b64('top secret') }, { plaintext: b64('top secret') }] },
    });
    assert.equal(vault.requests.length, 1);
    const [entry] = vault.requests;
    assert.equal(entry?.method, 'POST');
    assert.equal(entry?.path, '/v1/transit/encrypt/k8s');
    assert.equal(entry?.namespace, 'ns1');
    assert.equal(entry?.batchSize, 2);
    assert.equal(typeof entry?.at, 'number');
    const logged = JSON.stringify(vault.requests);
    assert.ok(
      !logged.includes(token) && !logged.includes(b64('top secret')) && !logged.includes(vault.rootToken),
    );
    vault.clearRequests();
    assert.equal(vault.requests.length, 0);
  });
});

function httpsGet(
  url: string,
  tls: { ca: string; cert?: string; key?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/v1/sys/health`, { ...tls, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('vault emulator: TLS', () => {
  let certs: TestCertificates;
  let other: TestCertificates;
  before(async () => {
    [certs, other] = await Promise.all([createTestCertificates(), createTestCertificates()]);
  });

  it('serves HTTPS with a certificate for 127.0.0.1 and localhost signed by the test CA', async () => {
    const vault = await startVaultEmulator({ tls: { key: certs.serverKey, cert: certs.serverCert } });
    try {
      assert.match(vault.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await httpsGet(vault.url, { ca: certs.ca })).status, 200);
      assert.equal(
        (await httpsGet(vault.url.replace('127.0.0.1', 'localhost'), { ca: certs.ca })).status,
        200,
      );
      await assert.rejects(
        httpsGet(vault.url, { ca: other.ca }),
        /self.signed|unable to verify|certificate/i,
      );
    } finally {
      await vault.close();
    }
  });

  it('requires a client certificate signed by the CA when asked', async () => {
    const vault = await startVaultEmulator({
      tls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestClientCert: true },
    });
    try {
      const ok = await httpsGet(vault.url, { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
      assert.equal(ok.status, 200);
      assert.equal((JSON.parse(ok.body) as { sealed: boolean }).sealed, false);
      await assert.rejects(httpsGet(vault.url, { ca: certs.ca }));
      await assert.rejects(
        httpsGet(vault.url, { ca: certs.ca, cert: other.clientCert, key: other.clientKey }),
      );
    } finally {
      await vault.close();
    }
  });
});
