import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTestCertificates, type TestCertificates } from '../../src/certificates.js';
import {
  challengeHeader,
  JSON_CONTENT_TYPE,
  startAzureKeyVaultEmulator,
  type AzureKeyVaultEmulator,
} from '../../src/azure/index.js';
import { rawRequest, type RawResponse } from './raw-client.js';

const API = 'api-version=7.5';

describe('Azure Key Vault emulator', () => {
  let certificates: TestCertificates;
  let emulator: AzureKeyVaultEmulator;
  let token: string;

  const call = (
    method: string,
    path: string,
    body?: unknown,
    auth: string | null = `Bearer ${token}`,
  ): Promise<RawResponse> =>
    rawRequest(`${emulator.url}${path}${path.includes('?') ? '&' : '?'}${API}`, {
      method,
      ca: certificates.ca,
      headers: auth === null ? {} : { authorization: auth },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  const json = (response: RawResponse): Record<string, unknown> =>
    JSON.parse(response.text) as Record<string, unknown>;

  before(async () => {
    certificates = await createTestCertificates();
    emulator = await startAzureKeyVaultEmulator({
      tls: { key: certificates.serverKey, cert: certificates.serverCert },
      tenantId: 'tenant-a',
    });
    token = emulator.issueToken();
  });
  after(() => emulator.close());

  it('challenges a request without a token before reading its body', async () => {
    const response = await call('POST', '/keys/challenged/create', '{ not json', null);
    assert.equal(response.status, 401);
    assert.equal(response.headers['content-type'], JSON_CONTENT_TYPE);
    assert.equal(
      response.headers['www-authenticate'],
      'Bearer authorization="https://login.windows.net/tenant-a", resource="https://vault.azure.net"',
    );
    assert.equal(response.headers['www-authenticate'], challengeHeader('tenant-a'));
    assert.deepEqual(json(response), {
      error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' },
    });
    assert.equal((await call('GET', '/keys/challenged/')).status, 404, 'nothing was created');
  });

  it('refuses a token it did not issue, and revoked tokens, with 401 and the challenge', async () => {
    const forged = await call('GET', '/keys/any/', undefined, 'Bearer eyJ0eXAiOiJKV1QifQ.e30.c2ln');
    assert.equal(forged.status, 401);
    assert.equal(forged.headers['www-authenticate'], challengeHeader('tenant-a'));
    assert.equal((json(forged).error as { code: string }).code, 'Unauthorized');

    const doomed = emulator.issueToken();
    emulator.revokeTokens();
    const revoked = await call('GET', '/keys/any/', undefined, `Bearer ${doomed}`);
    assert.equal(revoked.status, 401);
    token = emulator.issueToken();
    assert.equal((await call('GET', '/keys/any/')).status, 404, 'a new token works');
  });

  it('creates RSA keys of each size with a kid of 32 lowercase hex and a public JWK only', async () => {
    for (const size of [2048, 3072, 4096]) {
      const response = await call('POST', `/keys/sized-${size}/create`, { kty: 'RSA', key_size: size });
      assert.equal(response.status, 200, response.text);
      const bundle = json(response) as {
        key: Record<string, unknown> & { kid: string; n: string };
        attributes: Record<string, unknown>;
      };
      assert.match(bundle.key.kid, new RegExp(`^${emulator.url}/keys/sized-${size}/[0-9a-f]{32}$`));
      assert.deepEqual(Object.keys(bundle.key), ['kid', 'kty', 'key_ops', 'n', 'e']);
      assert.equal(Buffer.from(bundle.key.n, 'base64url').length, size / 8);
      assert.doesNotMatch(bundle.key.n, /=/);
      assert.deepEqual(Object.keys(bundle.attributes), [
        'enabled',
        'created',
        'updated',
        'recoveryLevel',
        'recoverableDays',
      ]);
      assert.equal(typeof bundle.attributes.created, 'number');
    }
    const bad = await call('POST', '/keys/odd/create', { kty: 'RSA', key_size: 1024 });
    assert.equal(bad.status, 400);
    assert.equal((json(bad).error as { code: string }).code, 'BadParameter');
  });

  it('wraps and unwraps with RSA-OAEP and RSA-OAEP-256 in base64url, latest and by version', async () => {
    const { kid, version } = await emulator.createKey('wrapper', { size: 3072 });
    const plaintext = randomBytes(32);
    for (const alg of ['RSA-OAEP', 'RSA-OAEP-256']) {
      const wrapped = await call('POST', `/keys/wrapper/${version}/wrapkey`, {
        alg,
        value: plaintext.toString('base64url'),
      });
      assert.equal(wrapped.status, 200, wrapped.text);
      const answer = json(wrapped) as { kid: string; value: string };
      assert.deepEqual(Object.keys(answer), ['kid', 'value']);
      assert.equal(answer.kid, kid);
      assert.match(answer.value, /^[A-Za-z0-9_-]+$/);
      assert.equal(Buffer.from(answer.value, 'base64url').length, 384);
      const opened = await call('POST', `/keys/wrapper/${version}/unwrapkey`, { alg, value: answer.value });
      assert.equal(opened.status, 200, opened.text);
      assert.equal((json(opened) as { value: string }).value, plaintext.toString('base64url'));
    }
    const latest = await call('POST', '/keys/wrapper//wrapkey', { alg: 'RSA-OAEP-256', value: 'AAAA' });
    assert.equal((json(latest) as { kid: string }).kid, kid);
  });

  it('answers a tampered ciphertext and a non-base64url value with 400 BadParameter', async () => {
    const { version } = await emulator.createKey('tamper');
    const wrapped = json(
      await call('POST', `/keys/tamper/${version}/wrapkey`, { alg: 'RSA-OAEP-256', value: 'AQID' }),
    ) as { value: string };
    const bytes = Buffer.from(wrapped.value, 'base64url');
    bytes[10] = (bytes[10] ?? 0) ^ 1;
    const tampered = await call('POST', `/keys/tamper/${version}/unwrapkey`, {
      alg: 'RSA-OAEP-256',
      value: bytes.toString('base64url'),
    });
    assert.equal(tampered.status, 400);
    assert.deepEqual(json(tampered), {
      error: { code: 'BadParameter', message: 'Error occurred while decoding OAEP padding.' },
    });
    const notBase64 = await call('POST', `/keys/tamper/${version}/unwrapkey`, {
      alg: 'RSA-OAEP-256',
      value: 'a+b/',
    });
    assert.equal(notBase64.status, 400);
    assert.equal((json(notBase64).error as { code: string }).code, 'BadParameter');
  });

  it('keeps a disabled version readable but refuses to wrap or unwrap with it (403 KeyDisabled)', async () => {
    const first = await emulator.createKey('switch');
    const wrapped = json(
      await call('POST', `/keys/switch/${first.version}/wrapkey`, { alg: 'RSA-OAEP-256', value: 'AQID' }),
    ) as { value: string };
    const patched = await call('PATCH', `/keys/switch/${first.version}`, { attributes: { enabled: false } });
    assert.equal(patched.status, 200);
    assert.equal((json(patched).attributes as { enabled: boolean }).enabled, false);
    const read = await call('GET', `/keys/switch/${first.version}`);
    assert.equal(read.status, 200);
    assert.equal((json(read).attributes as { enabled: boolean }).enabled, false);
    for (const [operation, value] of [
      ['wrapkey', 'AQID'],
      ['unwrapkey', wrapped.value],
    ] as const) {
      const refused = await call('POST', `/keys/switch/${first.version}/${operation}`, {
        alg: 'RSA-OAEP-256',
        value,
      });
      assert.equal(refused.status, 403);
      assert.deepEqual(json(refused), {
        error: {
          code: 'Forbidden',
          message: `Operation ${operation === 'wrapkey' ? 'wrapKey' : 'unwrapKey'} is not allowed on a disabled key.`,
          innererror: { code: 'KeyDisabled' },
        },
      });
    }
    emulator.setEnabled('switch', first.version, true);
    const reopened = await call('POST', `/keys/switch/${first.version}/unwrapkey`, {
      alg: 'RSA-OAEP-256',
      value: wrapped.value,
    });
    assert.equal((json(reopened) as { value: string }).value, 'AQID');
  });

  it('rotates to a new version that becomes latest while the old one still unwraps', async () => {
    const first = await emulator.createKey('turning');
    const wrapped = json(
      await call('POST', `/keys/turning/${first.version}/wrapkey`, { alg: 'RSA-OAEP', value: 'AQID' }),
    ) as { value: string };
    const rotated = await call('POST', '/keys/turning/rotate');
    assert.equal(rotated.status, 200);
    const newKid = (json(rotated).key as { kid: string }).kid;
    assert.notEqual(newKid, first.kid);
    assert.equal((json(await call('GET', '/keys/turning/')).key as { kid: string }).kid, newKid);
    const opened = await call('POST', `/keys/turning/${first.version}/unwrapkey`, {
      alg: 'RSA-OAEP',
      value: wrapped.value,
    });
    assert.equal((json(opened) as { value: string }).value, 'AQID');
    assert.equal((await call('POST', '/keys/nothing-here/rotate')).status, 404);
  });

  it('injects throttling with Retry-After, server errors, forbidden callers and dropped connections', async () => {
    emulator.faults.failNext(1, 429, 2);
    const throttled = await call('GET', '/keys/turning/');
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers['retry-after'], '2');
    assert.equal((json(throttled).error as { code: string }).code, 'Throttled');
    emulator.faults.failNext(2, 503);
    assert.equal((await call('GET', '/keys/turning/')).status, 503);
    assert.equal((await call('GET', '/keys/turning/')).status, 503);
    assert.equal((await call('GET', '/keys/turning/')).status, 200);

    emulator.faults.forbidden = true;
    const forbidden = await call('POST', '/keys/turning//wrapkey', { alg: 'RSA-OAEP', value: 'AQID' });
    assert.equal(forbidden.status, 403);
    assert.equal(
      (json(forbidden).error as { innererror: { code: string } }).innererror.code,
      'ForbiddenByRbac',
    );
    emulator.faults.forbidden = false;

    emulator.faults.dropConnections = true;
    await assert.rejects(call('GET', '/keys/turning/'), /socket hang up|ECONNRESET/);
    emulator.faults.reset();
    emulator.faults.latencyMs = 20;
    assert.equal((await call('GET', '/keys/turning/')).status, 200);
    emulator.faults.reset();
  });

  it('serves an Entra ID token endpoint for the service principal and workload identity', async () => {
    const metadata = await rawRequest(
      `${emulator.authorityHost}/tenant-a/v2.0/.well-known/openid-configuration`,
      {
        method: 'GET',
        ca: certificates.ca,
      },
    );
    assert.equal(metadata.status, 200);
    assert.equal(json(metadata).token_endpoint, `${emulator.authorityHost}/tenant-a/oauth2/v2.0/token`);
    const ask = (fields: Record<string, string>): Promise<RawResponse> =>
      rawRequest(`${emulator.authorityHost}/tenant-a/oauth2/v2.0/token`, {
        method: 'POST',
        ca: certificates.ca,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      });
    const base = {
      grant_type: 'client_credentials',
      client_id: emulator.clientId,
      scope: 'https://vault.azure.net/.default',
    };
    const wrongSecret = await ask({ ...base, client_secret: 'wrong' });
    assert.equal(wrongSecret.status, 401);
    assert.equal(json(wrongSecret).error, 'invalid_client');
    assert.ok(!wrongSecret.text.includes('wrong'), 'the presented secret is not echoed');
    const good = await ask({ ...base, client_secret: emulator.clientSecret });
    assert.equal(good.status, 200);
    const issued = json(good) as { token_type: string; access_token: string; expires_in: number };
    assert.equal(issued.token_type, 'Bearer');
    assert.equal(
      (await call('GET', '/keys/turning/', undefined, `Bearer ${issued.access_token}`)).status,
      200,
    );

    emulator.clientAssertion = 'federated-token';
    const assertion = {
      ...base,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    };
    assert.equal((await ask({ ...assertion, client_assertion: 'federated-token' })).status, 200);
    assert.equal((await ask({ ...assertion, client_assertion: 'other' })).status, 401);
    emulator.clientAssertion = undefined;

    emulator.faults.tokenEndpointDown = true;
    assert.equal((await ask({ ...base, client_secret: emulator.clientSecret })).status, 503);
    emulator.faults.reset();
  });

  it('logs requests without bodies or tokens, and clears the log', async () => {
    emulator.clearRequests();
    await call('GET', '/keys/turning/');
    assert.equal(emulator.requests.length, 1);
    const [entry] = emulator.requests;
    assert.deepEqual(entry, {
      method: 'GET',
      path: '/keys/turning/',
      apiVersion: '7.5',
      kind: 'keyvault',
      status: 200,
      hadToken: true,
      hadBody: false,
    });
    assert.ok(!JSON.stringify(emulator.requests).includes(token));
    emulator.clearRequests();
    assert.equal(emulator.requests.length, 0);
  });
});
