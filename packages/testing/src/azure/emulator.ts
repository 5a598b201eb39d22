import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  KeyStore,
  maxWrapBytes,
  RSA_KEY_SIZES,
  unwrap,
  WRAP_ALGORITHMS,
  wrap,
  nowSeconds,
  type KeyVersion,
  type RsaKeySize,
  type WrapAlgorithm,
} from './key-store.js';
import { EntraId } from './entra-id.js';
import { TokenIssuer } from './token-issuer.js';
import {
  challengeHeader,
  deletedKeyBundle,
  errorBody,
  fromBase64Url,
  JSON_CONTENT_TYPE,
  keyBundle,
  keyNotFoundMessage,
  kidOf,
  MISSING_TOKEN_MESSAGE,
  toBase64Url,
} from './wire.js';
import { readBody } from '../read-body.js';
import { RequestHold } from '../request-hold.js';

export interface AzureKeyVaultEmulatorOptions {
  /** Serve HTTPS with this key and certificate (PEM). Without it the emulator serves plain HTTP. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /** The directory (tenant) id named in the bearer challenge and served by the token endpoint. */
  readonly tenantId?: string;
  /** The service principal the token endpoint accepts (client credentials). Random when omitted. */
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** Lifetime of issued access tokens, seconds (default 3600). */
  readonly tokenLifetimeSeconds?: number;
  /** Initial `faults.latencyMs`: delay before answering each Key Vault request (benchmarks). */
  readonly latencyMs?: number;
}

/** One request the emulator served (never its body or token). */
export interface AzureRequestRecord {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly apiVersion: string | undefined;
  /** `keyvault` for Key Vault calls, `token` and `metadata` for the emulated Entra ID endpoints. */
  readonly kind: 'keyvault' | 'token' | 'metadata';
  readonly status: number;
  /** Whether the request carried a bearer token (valid or not). */
  readonly hadToken: boolean;
  readonly hadBody: boolean;
}

/** Failures the emulator injects into Key Vault calls (the token endpoint has its own switch). */
export interface AzureFaults {
  /** Delay before answering each Key Vault request, milliseconds. */
  latencyMs: number;
  /** Destroy the connection of every request instead of answering (Key Vault and token endpoint). */
  dropConnections: boolean;
  /** The token endpoint answers 503 (Entra ID unreachable: token acquisition fails). */
  tokenEndpointDown: boolean;
  /** Every authenticated Key Vault request gets 403 `Forbidden` / `ForbiddenByRbac` (role removed). */
  forbidden: boolean;
  /**
   * While true, requests (Key Vault and token endpoint) arrive and are counted but get no answer, as on a
   * hung server; turning it off lets them go on, through whatever faults are set by then.
   */
  holdRequests: boolean;
  /** The next `count` Key Vault requests answer `status` (429 with `Retry-After`, or 500/503). */
  failNext(count: number, status: 429 | 500 | 503, retryAfterSeconds?: number): void;
  /** Clears every fault. */
  reset(): void;
}

export interface AzureKeyVaultEmulator {
  /** The vault URL, `https://127.0.0.1:<port>` (no trailing slash). */
  readonly url: string;
  /** Base URL of the emulated Entra ID (same server): pass as the credential's `authorityHost`. */
  readonly authorityHost: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /**
   * When set, a client assertion (workload identity's federated token) must equal it; when undefined,
   * any non-empty assertion is accepted.
   */
  clientAssertion: string | undefined;
  readonly faults: AzureFaults;
  /** Requests answered so far (recorded when answered, so a held request is not in it yet). */
  readonly requests: readonly AzureRequestRecord[];
  /** Requests received so far, counted on arrival (held and dropped ones included); never reset. */
  readonly received: number;
  clearRequests(): void;
  /** Issues a valid access token directly (for a test's own TokenCredential or raw requests). */
  issueToken(): string;
  /** Every token issued so far is refused from now on. */
  revokeTokens(): void;
  /** Creates a key, or a new version of an existing one (as Key Vault's create does). */
  createKey(name: string, options?: { size?: RsaKeySize; enabled?: boolean }): Promise<KeyInfo>;
  /** Adds a new version to an existing key (Key Vault's rotate). */
  rotateKey(name: string): Promise<KeyInfo>;
  /** Enables or disables one version (`''` = latest). */
  setEnabled(name: string, version: string, enabled: boolean): void;
  /** Stops the server and drops open connections. */
  close(): Promise<void>;
}

export interface KeyInfo {
  readonly kid: string;
  readonly version: string;
}

const MAX_BODY_BYTES = 1 << 20;

/**
 * Starts an Azure Key Vault emulator on 127.0.0.1 with an ephemeral port: the keys API of DESIGN.md
 * (create, get, rotate, update, wrapkey/unwrapkey, delete/purge) and the bearer challenge, with a small
 * Entra ID beside it on the same server ({@link EntraId}) so the real credentials of `@azure/identity`
 * can authenticate against it.
 */
export async function startAzureKeyVaultEmulator(
  options: AzureKeyVaultEmulatorOptions = {},
): Promise<AzureKeyVaultEmulator> {
  const tenantId = options.tenantId ?? randomUUID();
  const clientId = options.clientId ?? randomUUID();
  const clientSecret = options.clientSecret ?? randomUUID();
  const tokens = new TokenIssuer(tenantId, options.tokenLifetimeSeconds ?? 3600);
  const store = new KeyStore();
  const records: AzureRequestRecord[] = [];
  let pendingFailures: { count: number; status: 429 | 500 | 503; retryAfterSeconds: number } | undefined;
  const hold = new RequestHold();

  const faults: AzureFaults = {
    latencyMs: options.latencyMs ?? 0,
    dropConnections: false,
    tokenEndpointDown: false,
    forbidden: false,
    get holdRequests() {
      return hold.held;
    },
    set holdRequests(value: boolean) {
      hold.held = value;
    },
    failNext(count, status, retryAfterSeconds = 0) {
      pendingFailures = count > 0 ? { count, status, retryAfterSeconds } : undefined;
    },
    reset() {
      this.latencyMs = 0;
      this.dropConnections = false;
      this.tokenEndpointDown = false;
      this.forbidden = false;
      hold.held = false;
      pendingFailures = undefined;
    },
  };

  const entraId = new EntraId({
    tenantId,
    clientId,
    clientSecret,
    tokens,
    down: () => faults.tokenEndpointDown,
  });

  let baseUrl = '';

  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    void handle(request, response).catch(() => {
      if (!response.headersSent) send(response, 500, errorBody('InternalServerError', 'emulator failure'));
      else response.destroy();
    });
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    hold.arrive();
    const url = new URL(request.url ?? '/', 'http://emulator');
    const body = await readBody(request, MAX_BODY_BYTES, () => new Error('request body too large'));
    const path = url.pathname;
    const method = request.method ?? 'GET';
    const authorization = request.headers.authorization;
    const record = (kind: AzureRequestRecord['kind'], status: number): void => {
      records.push({
        method,
        path,
        apiVersion: url.searchParams.get('api-version') ?? undefined,
        kind,
        status,
        hadToken: authorization !== undefined,
        hadBody: body.length > 0,
      });
    };

    if (hold.held) await hold.pass();
    if (faults.dropConnections) {
      request.socket.destroy();
      return;
    }

    // Emulated Entra ID.
    const entra = entraId.handle(method, path, body, baseUrl);
    if (entra !== undefined) {
      record(entra.kind, entra.status);
      send(response, entra.status, entra.body);
      return;
    }

    // Key Vault.
    if (faults.latencyMs > 0) await delay(faults.latencyMs);
    // Authentication comes before anything else, the body included (the SDK's first request has none).
    if (authorization === undefined || !/^Bearer\s+\S+/i.test(authorization)) {
      record('keyvault', 401);
      send(response, 401, errorBody('Unauthorized', MISSING_TOKEN_MESSAGE), {
        'www-authenticate': challengeHeader(tenantId),
      });
      return;
    }
    const check = tokens.check(authorization.replace(/^Bearer\s+/i, '').trim());
    if (!check.ok) {
      record('keyvault', 401);
      const message =
        check.reason === 'expired'
          ? "[TokenExpired] Error validating token: 'S2S12086'."
          : 'AKV10032: Invalid issuer or token. The token was not issued for this vault or was revoked.';
      send(response, 401, errorBody('Unauthorized', message), {
        'www-authenticate': challengeHeader(tenantId),
      });
      return;
    }
    if (pendingFailures !== undefined && pendingFailures.count > 0) {
      const failure = pendingFailures;
      failure.count -= 1;
      if (failure.count === 0) pendingFailures = undefined;
      record('keyvault', failure.status);
      const headers: Record<string, string> =
        failure.status === 429 || failure.status === 503
          ? { 'retry-after': String(failure.retryAfterSeconds) }
          : {};
      send(response, failure.status, faultBody(failure.status), headers);
      return;
    }
    if (faults.forbidden) {
      record('keyvault', 403);
      send(
        response,
        403,
        errorBody(
          'Forbidden',
          `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=${clientId};iss=https://sts.windows.net/${tenantId}/\r\nAction: '${rbacAction(method, path)}'\r\nResource: '${path}'\r\nAssignment: (not found)\r\nVault: emulator;location=local\r\n`,
          'ForbiddenByRbac',
        ),
      );
      return;
    }
    if (url.searchParams.get('api-version') === null) {
      record('keyvault', 400);
      send(response, 400, errorBody('BadParameter', 'The api-version query parameter is missing.'));
      return;
    }
    const [status, answer] = await keyVaultRequest(method, path, body);
    record('keyvault', status);
    send(response, status, answer);
  }

  async function keyVaultRequest(method: string, path: string, body: Buffer): Promise<[number, unknown]> {
    let match: RegExpExecArray | null;
    if ((match = /^\/keys\/([^/]+)\/create$/.exec(path)) !== null && method === 'POST') {
      return createKeyRequest(decodeURIComponent(match[1] ?? ''), body);
    }
    if ((match = /^\/keys\/([^/]+)\/rotate$/.exec(path)) !== null && method === 'POST') {
      const name = decodeURIComponent(match[1] ?? '');
      const entry = await store.rotate(name);
      if (entry === undefined) return notFound(name);
      return [200, keyBundle(baseUrl, entry)];
    }
    if ((match = /^\/keys\/([^/]+)\/rotationpolicy$/.exec(path)) !== null && method === 'GET') {
      const name = decodeURIComponent(match[1] ?? '');
      if (!store.has(name)) return notFound(name);
      return [
        200,
        {
          id: `${baseUrl}/keys/${name}/rotationpolicy`,
          lifetimeActions: [{ trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } }],
          attributes: { expiryTime: null, created: null, updated: null },
        },
      ];
    }
    if (
      (match = /^\/keys\/([^/]+)\/([^/]*)\/(wrapkey|unwrapkey|encrypt|decrypt)$/.exec(path)) !== null &&
      method === 'POST'
    ) {
      const [, name = '', version = '', operation = ''] = match;
      return cryptoRequest(decodeURIComponent(name), version, operation, body);
    }
    if ((match = /^\/keys\/([^/]+)\/?$/.exec(path)) !== null) {
      const name = decodeURIComponent(match[1] ?? '');
      if (method === 'GET') {
        const entry = store.latest(name);
        return entry === undefined ? notFound(name) : [200, keyBundle(baseUrl, entry)];
      }
      if (method === 'DELETE' && !path.endsWith('/')) {
        const deleted = store.delete(name);
        return deleted === undefined ? notFound(name) : [200, deletedKeyBundle(baseUrl, deleted)];
      }
    }
    if ((match = /^\/keys\/([^/]+)\/([^/]+)$/.exec(path)) !== null) {
      const name = decodeURIComponent(match[1] ?? '');
      const version = match[2] ?? '';
      const entry = store.get(name, version);
      if (entry === undefined) return notFound(`${name}/${version}`);
      if (method === 'GET') return [200, keyBundle(baseUrl, entry)];
      if (method === 'PATCH') return updateKeyRequest(entry, body);
    }
    if ((match = /^\/deletedkeys\/([^/]+)$/.exec(path)) !== null) {
      const name = decodeURIComponent(match[1] ?? '');
      const deleted = store.getDeleted(name);
      if (deleted === undefined) {
        return [404, errorBody('KeyNotFound', `Deleted Key not found: ${name}`)];
      }
      if (method === 'GET') return [200, deletedKeyBundle(baseUrl, deleted)];
      if (method === 'DELETE') {
        store.purge(name);
        return [204, undefined];
      }
    }
    return [404, errorBody('NotFound', `The requested resource ${method} ${path} does not exist.`)];
  }

  async function createKeyRequest(name: string, body: Buffer): Promise<[number, unknown]> {
    const json = parseJson(body);
    if (json === undefined || typeof json !== 'object' || json === null) {
      return [400, errorBody('BadParameter', 'Property kty is required.')];
    }
    const input = json as {
      kty?: unknown;
      key_size?: unknown;
      key_ops?: unknown;
      attributes?: { enabled?: unknown; exp?: unknown; nbf?: unknown };
    };
    if (input.kty !== 'RSA' && input.kty !== 'RSA-HSM') {
      return [
        400,
        errorBody(
          'BadParameter',
          `The emulator creates RSA keys only; kty ${String(input.kty)} is not supported.`,
        ),
      ];
    }
    const size = input.key_size ?? 2048;
    if (!RSA_KEY_SIZES.includes(size as RsaKeySize)) {
      return [
        400,
        errorBody('BadParameter', `The key size ${JSON.stringify(size)} is not supported for RSA keys.`),
      ];
    }
    if (!/^[0-9a-zA-Z-]{1,127}$/.test(name)) {
      return [
        400,
        errorBody(
          'BadParameter',
          'The request URI contains an invalid name: Key names may only contain alphanumeric characters and dashes (-), and must be between 1 and 127 characters.',
        ),
      ];
    }
    const attributes = input.attributes ?? {};
    const entry = await store.create(name, {
      size: size as RsaKeySize,
      kty: input.kty,
      ...(Array.isArray(input.key_ops) ? { keyOps: input.key_ops.map(String) } : {}),
      enabled: attributes.enabled !== false,
      ...(typeof attributes.exp === 'number' ? { exp: attributes.exp } : {}),
      ...(typeof attributes.nbf === 'number' ? { nbf: attributes.nbf } : {}),
    });
    return [200, keyBundle(baseUrl, entry)];
  }

  function updateKeyRequest(entry: KeyVersion, body: Buffer): [number, unknown] {
    const json = parseJson(body) as
      { attributes?: { enabled?: unknown; exp?: unknown; nbf?: unknown }; key_ops?: unknown } | undefined;
    if (json === undefined || typeof json !== 'object') {
      return [400, errorBody('BadParameter', 'The request body is not valid JSON.')];
    }
    const attributes = json.attributes ?? {};
    if (typeof attributes.enabled === 'boolean') entry.enabled = attributes.enabled;
    if (typeof attributes.exp === 'number') entry.exp = attributes.exp;
    if (typeof attributes.nbf === 'number') entry.nbf = attributes.nbf;
    if (Array.isArray(json.key_ops)) entry.keyOps = json.key_ops.map(String);
    return [200, keyBundle(baseUrl, entry)];
  }

  function cryptoRequest(name: string, version: string, operation: string, body: Buffer): [number, unknown] {
    const entry = store.get(name, version);
    if (entry === undefined) return notFound(version === '' ? name : `${name}/${version}`);
    const keyOp = { wrapkey: 'wrapKey', unwrapkey: 'unwrapKey', encrypt: 'encrypt', decrypt: 'decrypt' }[
      operation as 'wrapkey'
    ];
    if (!entry.enabled) {
      return [
        403,
        errorBody('Forbidden', `Operation ${keyOp} is not allowed on a disabled key.`, 'KeyDisabled'),
      ];
    }
    const now = nowSeconds();
    if ((entry.nbf !== undefined && now < entry.nbf) || (entry.exp !== undefined && now >= entry.exp)) {
      return [
        403,
        errorBody(
          'Forbidden',
          `Operation ${keyOp} is not allowed on a key outside its validity period.`,
          'KeyNotYetValidOrExpired',
        ),
      ];
    }
    if (!entry.keyOps.includes(keyOp)) {
      return [403, errorBody('Forbidden', `Operation ${keyOp} is not permitted on this key.`)];
    }
    const json = parseJson(body) as { alg?: unknown; value?: unknown } | undefined;
    const value = fromBase64Url(json?.value);
    if (json === undefined || value === undefined) {
      return [
        400,
        errorBody(
          'BadParameter',
          "Content of 'value' is not base64url.\r\nProperty 'value' is required.\r\n",
        ),
      ];
    }
    if (!WRAP_ALGORITHMS.includes(json.alg as WrapAlgorithm)) {
      return [
        400,
        errorBody('BadParameter', `Invalid algorithm: ${String(json.alg)} is not supported by the emulator.`),
      ];
    }
    const algorithm = json.alg as WrapAlgorithm;
    const kid = kidOf(baseUrl, entry);
    if (operation === 'wrapkey' || operation === 'encrypt') {
      if (value.length > maxWrapBytes(entry.size, algorithm)) {
        return [400, errorBody('BadParameter', 'The value is too long for the key and algorithm.')];
      }
      return [200, { kid, value: toBase64Url(wrap(entry, algorithm, value)) }];
    }
    try {
      return [200, { kid, value: toBase64Url(unwrap(entry, algorithm, value)) }];
    } catch {
      return [400, errorBody('BadParameter', 'Error occurred while decoding OAEP padding.')];
    }
  }

  function notFound(nameOrId: string): [number, unknown] {
    return [404, errorBody('KeyNotFound', keyNotFoundMessage(nameOrId))];
  }

  const server =
    options.tls === undefined
      ? createHttpServer(handler)
      : createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;

  let closed = false;
  return {
    url: baseUrl,
    authorityHost: baseUrl,
    tenantId,
    clientId,
    clientSecret,
    get clientAssertion() {
      return entraId.clientAssertion;
    },
    set clientAssertion(value: string | undefined) {
      entraId.clientAssertion = value;
    },
    faults,
    requests: records,
    get received() {
      return hold.received;
    },
    clearRequests() {
      records.length = 0;
    },
    issueToken: () => tokens.issue(clientId).token,
    revokeTokens: () => tokens.revokeAll(),
    async createKey(name, keyOptions = {}) {
      const entry = await store.create(name, {
        size: keyOptions.size ?? 2048,
        enabled: keyOptions.enabled ?? true,
      });
      return { kid: kidOf(baseUrl, entry), version: entry.version };
    },
    async rotateKey(name) {
      const entry = await store.rotate(name);
      if (entry === undefined) throw new Error(`no key named ${name}`);
      return { kid: kidOf(baseUrl, entry), version: entry.version };
    },
    setEnabled(name, version, enabled) {
      const entry = store.get(name, version);
      if (entry === undefined) throw new Error(`no key ${name}/${version}`);
      entry.enabled = enabled;
      entry.updated = nowSeconds();
    },
    async close() {
      if (closed) return;
      closed = true;
      hold.held = false;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function send(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const common = {
    'cache-control': 'no-cache',
    pragma: 'no-cache',
    expires: '-1',
    'x-content-type-options': 'nosniff',
    'x-ms-request-id': randomUUID(),
    'x-ms-keyvault-service-version': '1.9.2164.1',
    'x-ms-keyvault-region': 'emulator',
  };
  if (body === undefined) {
    response.writeHead(status, { ...common, ...headers });
    response.end();
    return;
  }
  const text = JSON.stringify(body);
  response.writeHead(status, {
    ...common,
    ...headers,
    'content-type': JSON_CONTENT_TYPE,
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function faultBody(status: 429 | 500 | 503): unknown {
  switch (status) {
    case 429:
      return errorBody(
        'Throttled',
        'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached',
      );
    case 500:
      return errorBody('InternalServerError', 'An unexpected error occurred.');
    case 503:
      return errorBody('ServiceUnavailable', 'The service is temporarily unavailable.');
  }
}

function rbacAction(method: string, path: string): string {
  if (path.endsWith('/wrapkey')) return 'Microsoft.KeyVault/vaults/keys/wrap/action';
  if (path.endsWith('/unwrapkey')) return 'Microsoft.KeyVault/vaults/keys/unwrap/action';
  if (method === 'GET') return 'Microsoft.KeyVault/vaults/keys/read';
  return 'Microsoft.KeyVault/vaults/keys/write';
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
