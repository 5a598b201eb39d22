// Replays every exchange recorded from a real Vault 1.4.3 (shared/fixtures/vault-1.4.3) against the
// emulator over real HTTP, in the order they were recorded (later files depend on the state earlier ones
// left: the key `k8s` and its versions), and expects the same status, error strings, headers and field
// names, and the same values wherever the value is not random (ids, ciphertexts, cluster names).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import forge from 'node-forge';
import { createTestCertificates, type TestCertificates } from '../../src/certificates.js';
import {
  createJwtSigner,
  startVaultEmulator,
  type JwtSigner,
  type KubernetesIssuer,
  type VaultEmulator,
} from '../../src/vault/index.js';
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
  /** What the request carried that its body does not show (auth recordings only; see the README). */
  recordedWith?: RecordedWith;
}

interface RecordedWith {
  connection?: string;
  jwt?: {
    header?: Record<string, unknown>;
    claims?: Record<string, unknown>;
    signedBy?: string;
    case?: string;
  };
  tokenReview?: string;
  config?: string;
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
  'last_renewal',
  'id',
  'cluster_name',
  'cluster_id',
]);

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * Asserts the same shape (field names at every level, types) and the same non-volatile values. A token's
 * `ttl` may be a second short: Vault counts it at the moment of the lookup, some time after the login.
 */
function assertSameShape(
  actual: unknown,
  expected: unknown,
  where: string,
  volatile: ReadonlySet<string> = VOLATILE,
): void {
  assert.equal(typeName(actual), typeName(expected), `${where}: type`);
  if (Array.isArray(expected)) {
    const list = actual as unknown[];
    assert.equal(list.length, expected.length, `${where}: length`);
    expected.forEach((item, i) => assertSameShape(list[i], item, `${where}[${i}]`, volatile));
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    const object = actual as Record<string, unknown>;
    const expectedObject = expected as Record<string, unknown>;
    assert.deepEqual(Object.keys(object).sort(), Object.keys(expectedObject).sort(), `${where}: field names`);
    for (const [key, value] of Object.entries(expectedObject)) {
      if (volatile.has(key)) {
        assert.equal(typeName(object[key]), typeName(value), `${where}.${key}: type`);
      } else if (key === 'ttl' && typeof value === 'number' && typeof object[key] === 'number') {
        const ttl = object[key];
        assert.ok(ttl === value || ttl === value + 1, `${where}.ttl: ${ttl} for ${value}`);
      } else {
        assertSameShape(object[key], value, `${where}.${key}`, volatile);
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

/** One HTTP exchange over node:http(s), with a client certificate when given. */
function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  tls: { ca: string; cert?: string; key?: string } | undefined,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(target, {
      method,
      headers:
        body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      ...(tls === undefined ? {} : tls),
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.end(body);
  });
}

/** What one recorded exchange is sent as: where, with which token, body and client certificate. */
interface Outgoing {
  readonly url: string;
  readonly body: unknown;
  readonly tls?: { ca: string; cert?: string; key?: string };
}

/**
 * Replays an auth recording: `prepare` turns each exchange into a request equivalent to the recorded
 * one (the README's `recordedWith`: the JWT it carried, the connection it came on), the login's token
 * goes on in the requests that carried one, and each answer is held to the recorded one.
 */
async function replayAuth(
  file: string,
  prepare: (exchange: Exchange, index: number) => Outgoing,
  volatile: ReadonlySet<string> = VOLATILE,
): Promise<Record<string, unknown>[]> {
  const exchanges = readFixture(file);
  assert.ok(exchanges.length > 0);
  const answers: Record<string, unknown>[] = [];
  let loginToken: string | undefined;
  for (const [index, exchange] of exchanges.entries()) {
    const where = `${file}#${index} ${exchange.method} ${exchange.path}`;
    const outgoing = prepare(exchange, index);
    const headers: Record<string, string> = {};
    if (exchange.requestHeaders['X-Vault-Token'] !== undefined) {
      assert.ok(loginToken !== undefined, `${where}: no login token to send`);
      headers['X-Vault-Token'] = loginToken;
    }
    if (outgoing.body !== null) headers['content-type'] = 'application/json';
    const response = await send(
      outgoing.url + exchange.path,
      exchange.method,
      headers,
      outgoing.body === null ? undefined : JSON.stringify(outgoing.body),
      outgoing.tls,
    );
    assert.equal(response.status, exchange.status, `${where}: status (body ${response.text})`);
    for (const [name, value] of Object.entries(exchange.responseHeaders)) {
      assert.equal(response.headers[name], value, `${where}: header ${name}`);
    }
    const actual = JSON.parse(response.text) as Record<string, unknown>;
    assertSameShape(actual, exchange.responseBody, where, volatile);
    answers.push(actual);
    const auth = actual.auth as { client_token?: string } | null | undefined;
    if (exchange.path.endsWith('/login') && auth?.client_token) loginToken = auth.client_token;
  }
  return answers;
}

/** The recording's instant, from the first `creation_time` its lookups show (seconds). */
function recordedAt(file: string): number {
  const lookup = readFixture(file).find((exchange) => exchange.path === '/v1/auth/token/lookup-self');
  const data = (lookup?.responseBody as { data?: { creation_time?: number } } | undefined)?.data;
  assert.ok(typeof data?.creation_time === 'number', `${file}: no lookup to date it by`);
  return data.creation_time * 1000;
}

/** `metadata` of a login's `auth` block. */
function metadataOf(answer: Record<string, unknown> | undefined): Record<string, string> {
  return (answer?.auth as { metadata?: Record<string, string> } | undefined)?.metadata ?? {};
}

describe('Vault 1.4.3 auth recordings (cert, jwt, kubernetes) replayed against the emulator', () => {
  it('replays auth-cert.json: the client certificate is checked at login and again at renewal', async () => {
    const trusted: TestCertificates = await createTestCertificates({ clientCommonName: 'trousseau-client' });
    const unrelated = await createTestCertificates({ clientCommonName: 'trousseau-client' });
    const vault = await startVaultEmulator({
      clock: { now: () => recordedAt('auth-cert.json') },
      tls: { key: trusted.serverKey, cert: trusted.serverCert },
      plainListener: true,
    });
    try {
      vault.configureCertAuth({
        name: 'trousseau',
        certificate: trusted.ca,
        policies: ['default'],
        tokenTtlSeconds: 60,
      });
      const connections: Record<string, Outgoing['tls'] | 'plain'> = {
        'TLS listener, client certificate signed by the CA in the role': {
          ca: trusted.ca,
          cert: trusted.clientCert,
          key: trusted.clientKey,
        },
        'TLS listener, client certificate signed by an unrelated CA': {
          ca: trusted.ca,
          cert: unrelated.clientCert,
          key: unrelated.clientKey,
        },
        'TLS listener, no client certificate': { ca: trusted.ca },
        'plain HTTP listener (no TLS)': 'plain',
      };
      // The key ids and serial are the certificate's own, so they are compared with ours below.
      const volatile = new Set([...VOLATILE, 'authority_key_id', 'subject_key_id', 'serial_number']);
      const answers = await replayAuth(
        'auth-cert.json',
        (exchange) => {
          const connection = connections[exchange.recordedWith?.connection ?? ''];
          assert.ok(connection !== undefined, `unknown connection ${exchange.recordedWith?.connection}`);
          return connection === 'plain'
            ? { url: vault.plainUrl ?? '', body: exchange.requestBody }
            : { url: vault.url, body: exchange.requestBody, tls: connection };
        },
        volatile,
      );
      // Our client certificate's identifiers, read with node-forge rather than the emulator's parser.
      const client = forge.pki.certificateFromPem(trusted.clientCert);
      const ski = client.generateSubjectKeyIdentifier().toHex();
      const colons = (hex: string): string => hex.match(/../g)?.join(':') ?? '';
      const metadata = metadataOf(answers[0]);
      assert.equal(metadata.subject_key_id, colons(ski));
      assert.equal(metadata.serial_number, BigInt(`0x${client.serialNumber}`).toString(10));
      assert.match(metadata.authority_key_id ?? '', /^[0-9a-f]{2}(:[0-9a-f]{2}){19}$/);
      assert.equal(
        metadata.authority_key_id,
        colons(forge.pki.certificateFromPem(trusted.ca).generateSubjectKeyIdentifier().toHex()),
      );
    } finally {
      await vault.close();
    }
  });

  it('replays auth-jwt.json: signature, issuer, subject, expiry and audience, each refused with its words', async () => {
    const signer: JwtSigner = await createJwtSigner();
    const stranger = await createJwtSigner();
    const vault = await startVaultEmulator({ clock: { now: () => recordedAt('auth-jwt.json') } });
    try {
      vault.configureJwtAuth({
        jwtValidationPubkeys: [signer.publicKeyPem],
        boundIssuer: 'https://kubernetes.default.svc.cluster.local',
        role: 'trousseau',
        boundAudiences: ['vault'],
        userClaim: 'sub',
        boundSubject: 'system:serviceaccount:kube-system:trousseau',
        policies: ['default'],
        tokenTtlSeconds: 60,
      });
      const exchanges = readFixture('auth-jwt.json');
      const validClaims = exchanges[0]?.recordedWith?.jwt?.claims;
      assert.ok(validClaims !== undefined);
      await replayAuth('auth-jwt.json', (exchange) => {
        const body = exchange.requestBody as Record<string, unknown> | null;
        if (body?.jwt !== '<jwt>') return { url: vault.url, body };
        const jwt = exchange.recordedWith?.jwt;
        const by = jwt?.signedBy === 'an unrelated RSA key' ? stranger : signer;
        return { url: vault.url, body: { ...body, jwt: by.sign(jwt?.claims ?? validClaims, jwt?.header) } };
      });
    } finally {
      await vault.close();
    }
  });

  it('replays auth-kubernetes.json: 500 for claims, 403 for a refused or unreachable TokenReview, issuer for projected tokens', async () => {
    const vault = await startVaultEmulator({ clock: { now: () => recordedAt('auth-kubernetes.json') } });
    try {
      const roles = [
        { role: 'trousseau', boundServiceAccountNames: ['trousseau'], boundNamespaces: ['kube-system'] },
        { role: 'other-sa', boundServiceAccountNames: ['someone-else'], boundNamespaces: ['kube-system'] },
        { role: 'other-ns', boundServiceAccountNames: ['trousseau'], boundNamespaces: ['default'] },
      ];
      const configure = (issuer?: string): KubernetesIssuer => {
        let cluster: KubernetesIssuer | undefined;
        for (const role of roles) {
          cluster = vault.configureKubernetesAuth({
            ...role,
            ...(issuer === undefined ? {} : { issuer }),
            policies: ['default'],
            tokenTtlSeconds: 60,
          });
        }
        assert.ok(cluster !== undefined);
        return cluster;
      };
      const cluster = configure();
      await replayAuth('auth-kubernetes.json', (exchange) => {
        const recorded = exchange.recordedWith;
        const review = recorded?.tokenReview ?? 'not reached';
        if (review.startsWith('kubernetes_host=https://127.0.0.1:1:')) cluster.tokenReviewReachable = false;
        if (review.startsWith('kubernetes_host=https://127.0.0.1:<port>'))
          cluster.tokenReviewReachable = true;
        const issuer = /issuer=(\S+) (now )?set/.exec(recorded?.config ?? '')?.[1];
        if (issuer !== undefined) configure(issuer);
        const body = exchange.requestBody as Record<string, unknown> | null;
        const claims = recorded?.jwt?.claims;
        if (body?.jwt !== '<jwt>' || claims === undefined) return { url: vault.url, body };
        const jwt = cluster.issueServiceAccountToken(serviceAccountOf(claims));
        // A token the TokenReview does not vouch for (as for a deleted service account).
        if (/does not vouch|authenticated=false/.test(review)) cluster.revokeServiceAccountToken(jwt);
        return { url: vault.url, body: { ...body, jwt } };
      });
    } finally {
      await vault.close();
    }
  });
});

/** The service account and token shape a recorded JWT's claims describe. */
function serviceAccountOf(
  claims: Record<string, unknown>,
): Parameters<KubernetesIssuer['issueServiceAccountToken']>[0] {
  const legacy = (name: string): string => String(claims[`kubernetes.io/serviceaccount/${name}`]);
  if (claims['kubernetes.io/serviceaccount/namespace'] !== undefined) {
    return {
      name: legacy('service-account.name'),
      namespace: legacy('namespace'),
      uid: legacy('service-account.uid'),
      secretName: legacy('secret.name'),
    };
  }
  const info = claims['kubernetes.io'] as {
    namespace: string;
    pod: { name: string };
    serviceaccount: { name: string; uid: string };
  };
  const aud = claims.aud as string[];
  return {
    name: info.serviceaccount.name,
    namespace: info.namespace,
    uid: info.serviceaccount.uid,
    projected: {
      issuer: String(claims.iss),
      ...(aud[0] === undefined ? {} : { audience: aud[0] }),
      expirationSeconds: Number(claims.exp) - Number(claims.iat),
      podName: info.pod.name,
    },
  };
}
