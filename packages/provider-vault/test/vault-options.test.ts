import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadConfigFile, validateProviderOptions, type ProviderDefinition } from '@trousseau/core';
import vaultProvider, { DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE, vaultOptionsSchema } from '../src/index.js';

const examples = fileURLToPath(new URL('../../../../examples/configs/', import.meta.url));

const base = { address: 'https://vault.example.com:8200/', keyName: 'k8s' };

function issues(value: unknown): string[] {
  const result = vaultOptionsSchema.safeParse(value);
  return result.success
    ? []
    : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('vault provider options', () => {
  it('applies the documented defaults', () => {
    const options = vaultOptionsSchema.parse({
      ...base,
      auth: { method: 'kubernetes', role: 'trousseau' },
    });
    assert.equal(options.address, 'https://vault.example.com:8200');
    assert.equal(options.transitMount, 'transit');
    assert.equal(options.keyRefreshIntervalSeconds, 30);
    assert.deepEqual(options.batching, { enabled: true, maxBatchSize: 64 });
    assert.deepEqual(options.timeouts, { requestSeconds: 10, authSeconds: 10 });
    assert.deepEqual(options.auth, {
      method: 'kubernetes',
      role: 'trousseau',
      tokenFile: DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE,
      mount: 'kubernetes',
    });
    const approle = vaultOptionsSchema.parse({
      ...base,
      auth: { method: 'approle', roleId: { file: 'r' }, secretId: { env: 'SECRET_ID' } },
    });
    assert.equal(approle.auth.method === 'approle' ? approle.auth.mount : '', 'approle');
  });

  it('rejects unknown keys, inline secrets, a long refresh interval and loose TLS settings', () => {
    assert.ok(issues({ ...base, auth: { method: 'token', token: { file: 't' } }, typo: 1 }).length > 0);
    assert.ok(
      issues({ ...base, auth: { method: 'token', token: 's.inline-token' } }).some((i) =>
        i.startsWith('auth.token'),
      ),
    );
    assert.ok(issues({ ...base, auth: { method: 'ldap' } }).some((i) => i.startsWith('auth')));
    assert.ok(
      issues({
        ...base,
        auth: { method: 'token', token: { file: 't' } },
        keyRefreshIntervalSeconds: 61,
      }).some((i) => i.startsWith('keyRefreshIntervalSeconds')),
    );
    assert.ok(
      issues({ ...base, auth: { method: 'token', token: { file: 't' } }, tls: { certFile: 'c.pem' } }).some(
        (i) => i.startsWith('tls'),
      ),
    );
    assert.ok(
      issues({
        ...base,
        address: 'http://vault:8200',
        auth: { method: 'token', token: { file: 't' } },
        tls: { caFile: 'ca.pem' },
      }).some((i) => i.startsWith('tls')),
    );
    assert.ok(
      issues({ ...base, address: 'ftp://vault', auth: { method: 'token', token: { file: 't' } } }).length > 0,
    );
    assert.ok(
      issues({ ...base, keyName: 'a/b', auth: { method: 'token', token: { file: 't' } } }).length > 0,
    );
    const tls = vaultOptionsSchema.parse({
      ...base,
      auth: { method: 'token', token: { file: 't' } },
      tls: {},
    }).tls;
    assert.equal(tls?.insecureSkipVerify, false, 'verification is on unless turned off explicitly');
  });

  it('takes JWT, certificate and agent logins, each with what it needs', () => {
    const jwt = vaultOptionsSchema.parse({ ...base, auth: { method: 'jwt', role: 'r', tokenFile: 'jwt' } });
    assert.deepEqual(jwt.auth, { method: 'jwt', role: 'r', tokenFile: 'jwt', mount: 'jwt' });
    assert.ok(
      issues({ ...base, auth: { method: 'jwt', role: 'r' } }).some((i) => i.startsWith('auth.tokenFile')),
      'the JWT file has no default: a pod token has no vault audience',
    );
    const cert = vaultOptionsSchema.parse({
      ...base,
      tls: { certFile: 'c.pem', keyFile: 'k.pem' },
      auth: { method: 'cert' },
    });
    assert.deepEqual(cert.auth, { method: 'cert', mount: 'cert' });
    assert.deepEqual(issues({ ...base, auth: { method: 'cert', name: 'r' } }), [
      'auth.method: the cert method logs in with the TLS client certificate: set tls.certFile and tls.keyFile',
    ]);
    const agent = vaultOptionsSchema.parse({
      ...base,
      address: 'unix:///run/vault-agent/agent.sock',
      auth: { method: 'agent' },
    });
    assert.equal(agent.address, 'unix:///run/vault-agent/agent.sock');
    for (const address of ['unix://relative.sock', 'unix:///', 'http://']) {
      assert.deepEqual(issues({ ...base, address, auth: { method: 'agent' } }), [
        'address: must be an http:// or https:// URL, or unix:///<absolute socket path>',
      ]);
    }
    assert.ok(issues({ ...base, auth: { method: 'agent', token: { file: 't' } } }).length > 0);
  });

  for (const example of [
    'vault-token.yaml',
    'vault-kubernetes.yaml',
    'vault-approle.yaml',
    'vault-jwt.yaml',
    'vault-cert.yaml',
    'vault-agent.yaml',
    'vault-hcp.yaml',
  ]) {
    it(`accepts examples/configs/${example}`, async () => {
      const loaded = await loadConfigFile(`${examples}${example}`);
      const entry = loaded.config.providers[0];
      assert.ok(entry !== undefined);
      assert.equal(entry.type, 'vault');
      // The registry holds definitions of any option type; this one's options are checked by its own schema.
      const definition = vaultProvider as unknown as ProviderDefinition;
      const options = await validateProviderOptions(definition, entry.config, loaded.file, [
        'providers',
        0,
        'config',
      ]);
      assert.ok(options !== undefined);
    });
  }
});
