// Vault's HTTP API over the emulator state: routing, the seal, token checks, ACLs, and the transit,
// token, AppRole, Kubernetes and sys endpoints, answering with Vault 1.4.3's status codes, error strings
// and field names (see ../../../../shared/fixtures/vault-1.4.3/).
import { randomUUID } from 'node:crypto';
import { parseDurationMs } from './duration.js';
import type { VaultCapability } from './policy.js';
import {
  normalizeNamespace,
  type AppRoleConfig,
  type KubernetesMount,
  type NamespaceState,
  type VaultState,
} from './state.js';
import type { TokenEntry } from './tokens.js';
import { decodeContext, TransitKey, TransitUserError } from './transit.js';

interface VaultBehaviour {
  readonly batchPartialFailureStatus: 200 | 400;
  readonly returnKeyVersion: boolean;
  readonly rotateStatus: 204 | 200;
  readonly kubernetesLoginFailureStatus: 500 | 403;
}

interface VaultRequest {
  readonly method: string;
  /** URL path, e.g. `/v1/transit/encrypt/k8s`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly namespace: string;
  readonly token: string | undefined;
  readonly body: Record<string, unknown>;
}

export interface VaultResponse {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

const PERMISSION_DENIED = 'permission denied';
/** What Vault answers when a valid token lacks the capability (a multierror, as recorded). */
const ACL_DENIED = '1 error occurred:\n\t* permission denied\n\n';

const errors = (status: number, ...messages: string[]): VaultResponse => ({
  status,
  body: { errors: messages },
});

function envelope(parts: { data?: unknown; auth?: unknown; warnings?: string[] }): Record<string, unknown> {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: parts.data ?? null,
    wrap_info: null,
    warnings: parts.warnings && parts.warnings.length > 0 ? parts.warnings : null,
    auth: parts.auth ?? null,
  };
}

const ok = (parts: { data?: unknown; auth?: unknown; warnings?: string[] }): VaultResponse => ({
  status: 200,
  body: envelope(parts),
});

const noContent: VaultResponse = { status: 204 };

function sortKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function isWrite(method: string): boolean {
  return method === 'POST' || method === 'PUT';
}

function toInt(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

function toBool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  return undefined;
}

function toStringList(value: unknown): string[] | undefined {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === 'string') {
    return value
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v.length > 0);
  }
  return undefined;
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

export class VaultHandler {
  constructor(
    private readonly state: VaultState,
    private readonly behaviour: VaultBehaviour,
  ) {}

  handle(request: VaultRequest): VaultResponse {
    if (!request.path.startsWith('/v1/')) return errors(404);
    const rel = request.path.slice('/v1/'.length).replace(/\/+$/, '');
    const method =
      request.method === 'GET' && toBool(request.query.get('list')) === true ? 'LIST' : request.method;

    // Unauthenticated sys endpoints answer whatever the seal.
    if (rel === 'sys/health') return this.#health(request);
    if (rel === 'sys/seal-status' && method === 'GET') return { status: 200, body: this.#sealStatus() };
    if (rel === 'sys/unseal' && isWrite(method)) return this.#unseal(request);

    if (this.state.sealed || !this.state.initialized) {
      return errors(
        503,
        request.token && !rel.startsWith('auth/')
          ? 'error performing token check: Vault is sealed'
          : 'Vault is sealed',
      );
    }

    const ns = this.state.namespace(request.namespace);
    const login = /^auth\/(.+)\/login$/.exec(rel);
    if (login && isWrite(method)) {
      const mount = login[1] as string;
      if (ns.approle.has(mount)) return this.#approleLogin(request, ns, mount);
      const kube = ns.kubernetes.get(mount);
      if (kube) return this.#kubernetesLogin(request, mount, kube);
    }

    if (!request.token) return errors(400, 'missing client token');
    const token = this.state.tokens.lookup(request.token);
    if (!token) return errors(403, PERMISSION_DENIED);
    const requestNs = normalizeNamespace(request.namespace);
    if (!token.root) {
      if (
        token.namespace !== requestNs &&
        !requestNs.startsWith(`${token.namespace}/`) &&
        token.namespace !== ''
      ) {
        return errors(403, PERMISSION_DENIED);
      }
    }
    // Policies of the token's namespace see paths of child namespaces with the child's relative prefix.
    const nsPrefix = token.root
      ? ''
      : requestNs === token.namespace
        ? ''
        : `${requestNs.slice(token.namespace === '' ? 0 : token.namespace.length + 1)}/`;
    const authorize = (capability: VaultCapability, sudo = false): VaultResponse | undefined => {
      if (this.state.acl(token).allows(`${nsPrefix}${rel}`, capability, sudo)) {
        this.state.tokens.use(token);
        return undefined;
      }
      return errors(403, ACL_DENIED);
    };
    const methodCapability = (): VaultCapability | undefined => {
      switch (method) {
        case 'GET':
        case 'HEAD':
          return 'read';
        case 'LIST':
          return 'list';
        case 'POST':
        case 'PUT':
          return 'update';
        case 'DELETE':
          return 'delete';
        default:
          return undefined;
      }
    };
    const unsupported = (): VaultResponse => errors(405, '1 error occurred:\n\t* unsupported operation\n\n');
    const noHandler = (): VaultResponse => {
      const capability = methodCapability();
      if (capability) {
        const denied = authorize(capability);
        if (denied) return denied;
      }
      return errors(404, `no handler for route '${rel}'`);
    };

    if (rel.startsWith('auth/token/')) {
      const action = rel.slice('auth/token/'.length);
      switch (action) {
        case 'lookup-self':
          if (method !== 'GET' && !isWrite(method)) return unsupported();
          return authorize(method === 'GET' ? 'read' : 'update') ?? ok({ data: this.#lookupData(token) });
        case 'renew-self':
          if (!isWrite(method)) return unsupported();
          return authorize('update') ?? this.#renewSelf(token, request.body);
        case 'revoke-self': {
          if (!isWrite(method)) return unsupported();
          const denied = authorize('update');
          if (denied) return denied;
          this.state.tokens.revoke(token.id);
          return noContent;
        }
        case 'create':
          if (!isWrite(method)) return unsupported();
          return authorize('update') ?? this.#createToken(token, requestNs, request.body);
        default:
          return noHandler();
      }
    }

    if (rel === 'sys/seal') {
      if (!isWrite(method)) return unsupported();
      const denied = authorize('update', true);
      if (denied) return denied;
      this.state.sealed = true;
      return noContent;
    }

    // Transit: the longest mount that prefixes the path.
    let mount: string | undefined;
    for (const candidate of ns.transit.keys()) {
      if (rel.startsWith(`${candidate}/`) && (!mount || candidate.length > mount.length)) mount = candidate;
    }
    if (mount === undefined) return noHandler();
    const keys = ns.transit.get(mount) as Map<string, TransitKey>;
    const sub = rel.slice(mount.length + 1);
    const parts = sub.split('/');
    const [area, name, extra] = parts;
    if (parts.length > 3 || !area) return noHandler();

    if ((area === 'encrypt' || area === 'decrypt') && name && !extra) {
      if (!isWrite(method)) return unsupported();
      if (area === 'encrypt') {
        const denied = authorize(keys.has(name) ? 'update' : 'create');
        return denied ?? this.#encrypt(keys, name, request.body);
      }
      return authorize('update') ?? this.#decrypt(keys, name, request.body);
    }
    if (area === 'keys' && !name) {
      if (method !== 'LIST') return noHandler();
      const denied = authorize('list');
      if (denied) return denied;
      if (keys.size === 0) return errors(404);
      return ok({ data: { keys: [...keys.keys()].sort() } });
    }
    if (area === 'keys' && name && !extra) {
      switch (method) {
        case 'GET': {
          const denied = authorize('read');
          if (denied) return denied;
          const key = keys.get(name);
          return key ? ok({ data: key.describe(key.staleReadVersion) }) : errors(404);
        }
        case 'POST':
        case 'PUT':
          return authorize('update') ?? this.#createKey(keys, name, request.body);
        case 'DELETE': {
          const denied = authorize('delete');
          if (denied) return denied;
          const key = keys.get(name);
          if (!key) return errors(400, 'could not delete key; not found');
          if (!key.deletionAllowed) return errors(400, 'deletion is not allowed for this key');
          keys.delete(name);
          return noContent;
        }
        default:
          return unsupported();
      }
    }
    if (area === 'keys' && name && extra === 'rotate') {
      if (!isWrite(method)) return unsupported();
      const denied = authorize('update');
      if (denied) return denied;
      const key = keys.get(name);
      if (!key) return errors(400, 'key not found');
      key.rotate(this.state.nowSeconds());
      return this.behaviour.rotateStatus === 200 ? ok({ data: key.describe() }) : noContent;
    }
    if (area === 'keys' && name && extra === 'config') {
      if (!isWrite(method)) return unsupported();
      return authorize('update') ?? this.#configKey(keys, name, request.body);
    }
    return noHandler();
  }

  #health(request: VaultRequest): VaultResponse {
    const q = request.query;
    const code = (param: string, fallback: number): number => {
      const value = toInt(q.get(param));
      return value === undefined ? fallback : value;
    };
    const state = this.state;
    let status: number;
    if (!state.initialized) status = code('uninitcode', 501);
    else if (state.sealed) status = code('sealedcode', 503);
    else if (state.standby)
      status = toBool(q.get('standbyok')) ? code('activecode', 200) : code('standbycode', 429);
    else status = code('activecode', 200);
    const body: Record<string, unknown> = {
      initialized: state.initialized,
      sealed: state.sealed || !state.initialized,
      standby: state.standby || state.sealed || !state.initialized,
      performance_standby: false,
      replication_performance_mode: state.sealed || !state.initialized ? 'unknown' : 'disabled',
      replication_dr_mode: state.sealed || !state.initialized ? 'unknown' : 'disabled',
      server_time_utc: state.nowSeconds(),
      version: '1.4.3',
    };
    if (!state.sealed && state.initialized) {
      body.cluster_name = state.clusterName;
      body.cluster_id = state.clusterId;
    }
    if (request.method === 'HEAD') return { status };
    return { status, body };
  }

  #sealStatus(): Record<string, unknown> {
    const state = this.state;
    const body: Record<string, unknown> = {
      type: 'shamir',
      initialized: state.initialized,
      sealed: state.sealed || !state.initialized,
      t: 1,
      n: 1,
      progress: 0,
      nonce: '',
      version: '1.4.3',
      migration: false,
    };
    if (!state.sealed) {
      body.cluster_name = state.clusterName;
      body.cluster_id = state.clusterId;
    }
    body.recovery_seal = false;
    body.storage_type = 'inmem';
    return body;
  }

  #unseal(request: VaultRequest): VaultResponse {
    const key = request.body.key;
    const reset = toBool(request.body.reset) ?? false;
    if (!reset && (typeof key !== 'string' || key === '')) {
      return errors(400, "'key' must be specified in request body as JSON, or 'reset' set to true");
    }
    if (this.state.sealed && !reset) {
      if (key !== this.state.unsealKey) return errors(400, 'cipher: message authentication failed');
      this.state.sealed = false;
    }
    return { status: 200, body: this.#sealStatus() };
  }

  // ---- auth ----

  #loginAuth(token: TokenEntry, metadata: Record<string, string>): Record<string, unknown> {
    return {
      client_token: token.id,
      accessor: token.accessor,
      policies: token.policies,
      token_policies: token.policies,
      metadata,
      lease_duration: token.creationTtl,
      renewable: token.renewable,
      entity_id: token.entityId,
      token_type: 'service',
      orphan: token.orphan,
    };
  }

  #approleLogin(request: VaultRequest, ns: NamespaceState, mount: string): VaultResponse {
    const roleId = request.body.role_id;
    if (typeof roleId !== 'string' || roleId === '') return errors(400, 'missing role_id');
    const roles = ns.approle.get(mount) as Map<string, AppRoleConfig>;
    const role = [...roles.values()].find((r) => r.roleId === roleId);
    if (!role) return errors(400, 'invalid role ID');
    const secretId = request.body.secret_id;
    if (typeof secretId !== 'string' || secretId === '') return errors(400, 'missing secret_id');
    if (secretId !== role.secretId) return errors(400, 'invalid secret id');
    const metadata = { role_name: role.roleName };
    const token = this.state.tokens.create({
      namespace: normalizeNamespace(request.namespace),
      policies: role.policies,
      ttlSeconds: role.tokenTtlSeconds,
      backendMaxTtlSeconds: role.tokenMaxTtlSeconds,
      renewable: role.renewable,
      path: `auth/${mount}/login`,
      displayName: mount.replaceAll('/', '-'),
      meta: metadata,
      orphan: true,
      fromLogin: true,
    });
    return ok({ auth: this.#loginAuth(token, metadata) });
  }

  #kubernetesLogin(request: VaultRequest, mount: string, kube: KubernetesMount): VaultResponse {
    const roleName = request.body.role;
    if (typeof roleName !== 'string' || roleName === '') return errors(400, 'missing role');
    const jwt = request.body.jwt;
    if (typeof jwt !== 'string' || jwt === '') return errors(400, 'missing jwt');
    const role = kube.roles.get(roleName);
    if (!role) return errors(400, `invalid role name "${roleName}"`);
    // Vault 1.4's plugin returns plain errors (500 with its message); newer plugins answer 403, naming
    // the unbound name or namespace but only `permission denied` when the token review fails.
    const refuse = (message: string, named = false): VaultResponse =>
      this.behaviour.kubernetesLoginFailureStatus === 403
        ? errors(403, named ? message : PERMISSION_DENIED)
        : errors(500, message);
    const claims = decodeJwtClaims(jwt);
    if (!claims) return refuse('not a compact JWS');
    const name = claims['kubernetes.io/serviceaccount/service-account.name'];
    const namespace = claims['kubernetes.io/serviceaccount/namespace'];
    const allowed = (list: string[], value: unknown): boolean =>
      typeof value === 'string' && (list.includes('*') || list.includes(value));
    if (!allowed(role.boundServiceAccountNames, name))
      return refuse('service account name not authorized', true);
    if (!allowed(role.boundNamespaces, namespace)) return refuse('namespace not authorized', true);
    const account = kube.issued.get(jwt);
    if (!account) {
      return refuse(
        'lookup failed: service account unauthorized; this could mean it has been deleted or recreated with a new token',
      );
    }
    const metadata = {
      role: roleName,
      service_account_name: account.name,
      service_account_namespace: account.namespace,
      service_account_secret_name: account.secretName,
      service_account_uid: account.uid,
    };
    const token = this.state.tokens.create({
      namespace: normalizeNamespace(request.namespace),
      policies: role.policies,
      ttlSeconds: role.tokenTtlSeconds,
      renewable: true,
      path: `auth/${mount}/login`,
      displayName: `${mount.replaceAll('/', '-')}-${account.namespace}-${account.name}`,
      meta: metadata,
      orphan: true,
      fromLogin: true,
    });
    return ok({ auth: this.#loginAuth(token, metadata) });
  }

  #lookupData(token: TokenEntry): Record<string, unknown> {
    const data: Record<string, unknown> = {
      accessor: token.accessor,
      creation_time: Math.floor(token.issueTime / 1000),
      creation_ttl: token.creationTtl,
      display_name: token.displayName,
      entity_id: token.entityId,
      expire_time: token.expireTime === undefined ? null : isoTime(token.expireTime),
      explicit_max_ttl: token.explicitMaxTtl,
      id: token.id,
      meta: token.meta,
      num_uses: token.numUses,
      orphan: token.orphan,
      path: token.path,
      policies: token.policies,
      ttl: this.state.tokens.remainingTtlSeconds(token),
      type: 'service',
    };
    if (token.expireTime !== undefined) {
      data.issue_time = isoTime(token.issueTime);
      data.renewable = token.renewable;
      if (token.lastRenewalTime !== undefined) {
        data.last_renewal_time = Math.floor(token.lastRenewalTime / 1000);
        data.last_renewal = isoTime(token.lastRenewalTime);
      }
    }
    if (token.namespace !== '') data.namespace_path = `${token.namespace}/`;
    return sortKeys(data);
  }

  #renewSelf(token: TokenEntry, body: Record<string, unknown>): VaultResponse {
    const incrementMs = parseDurationMs(body.increment);
    if (incrementMs === undefined) return errors(400, `invalid increment: ${String(body.increment)}`);
    const result = this.state.tokens.renew(token, Math.floor(incrementMs / 1000));
    if (!result.ok) {
      return result.status === 500
        ? errors(500, `1 error occurred:\n\t* ${result.message}\n\n`)
        : errors(result.status, result.message);
    }
    const auth = this.#loginAuth(token, token.meta ?? {});
    auth.lease_duration = result.ttlSeconds;
    // Recorded 1.4.3 quirk: after a login, `policies` lists the role's policies without `default`.
    if (token.fromLogin) auth.policies = token.policies.filter((p) => p !== 'default');
    if (!token.fromLogin && token.meta === null) auth.metadata = null;
    return ok({ auth, warnings: result.warnings });
  }

  #createToken(parent: TokenEntry, namespace: string, body: Record<string, unknown>): VaultResponse {
    const requested = toStringList(body.policies);
    const noDefault = toBool(body.no_default_policy) ?? false;
    let policies = requested ?? parent.policies.filter((p) => p !== 'default' || !noDefault);
    if (!parent.root) {
      const allowed = new Set(parent.policies);
      if (policies.some((p) => p !== 'default' && !allowed.has(p))) {
        return errors(400, 'child policies must be subset of parent');
      }
    }
    if (noDefault) policies = policies.filter((p) => p !== 'default');
    const ttlMs = parseDurationMs(body.ttl);
    const maxMs = parseDurationMs(body.explicit_max_ttl);
    if (ttlMs === undefined) return errors(400, 'invalid ttl');
    if (maxMs === undefined) return errors(400, 'invalid explicit_max_ttl');
    const numUses = toInt(body.num_uses) ?? 0;
    if (numUses < 0) return errors(400, 'number of uses cannot be negative');
    const meta = body.meta && typeof body.meta === 'object' ? (body.meta as Record<string, string>) : null;
    const token = this.state.tokens.create({
      namespace,
      policies,
      ...(ttlMs > 0 ? { ttlSeconds: Math.floor(ttlMs / 1000) } : {}),
      explicitMaxTtlSeconds: Math.floor(maxMs / 1000),
      renewable: toBool(body.renewable) ?? true,
      numUses,
      noDefaultPolicy: noDefault,
      path: 'auth/token/create',
      displayName: typeof body.display_name === 'string' ? `token-${body.display_name}` : 'token',
      meta,
      orphan: false,
    });
    return ok({ auth: this.#loginAuth(token, meta ?? {}) });
  }

  // ---- transit ----

  #batchInput(body: Record<string, unknown>): Record<string, unknown>[] | VaultResponse | undefined {
    const raw = body.batch_input;
    if (raw === undefined || raw === null) return undefined;
    if (
      !Array.isArray(raw) ||
      raw.some((item) => item === null || typeof item !== 'object' || Array.isArray(item))
    ) {
      return errors(400, 'failed to parse batch input: invalid batch_input');
    }
    if (raw.length === 0) return errors(400, 'missing batch input to process');
    return raw as Record<string, unknown>[];
  }

  #batchResponse(results: Record<string, unknown>[]): VaultResponse {
    const anyError = results.some((r) => typeof r.error === 'string');
    const status = anyError ? this.behaviour.batchPartialFailureStatus : 200;
    return { status, body: envelope({ data: { batch_results: results } }) };
  }

  #encrypt(keys: Map<string, TransitKey>, name: string, body: Record<string, unknown>): VaultResponse {
    const batch = this.#batchInput(body);
    if (batch && !Array.isArray(batch)) return batch;
    let items: Record<string, unknown>[];
    if (batch) items = batch;
    else {
      if (!('plaintext' in body) || body.plaintext === null)
        return errors(400, 'missing plaintext to encrypt');
      items = [body];
    }
    const hasContext = (item: Record<string, unknown>): boolean =>
      typeof item.context === 'string' && item.context.length > 0;
    const contextSet = hasContext(items[0] as Record<string, unknown>);
    if (items.some((item) => hasContext(item) !== contextSet)) {
      return errors(400, 'context should be set either in all the request blocks or in none');
    }
    const keyVersion = toInt(body.key_version) ?? 0;
    let key = keys.get(name);
    if (!key) {
      // Upsert: Vault creates the key on encrypt when the token may `create` (checked by the caller).
      const type = typeof body.type === 'string' && body.type !== '' ? body.type : 'aes256-gcm96';
      if (type !== 'aes256-gcm96') return errors(400, `unknown key type ${type}`);
      key = new TransitKey(name, this.state.nowSeconds(), contextSet || toBool(body.derived) === true);
      keys.set(name, key);
    }
    const results = items.map((item): Record<string, unknown> => {
      try {
        const plaintext = typeof item.plaintext === 'string' ? item.plaintext : '';
        const context = decodeContext(item.context);
        const { ciphertext, version } = key.encrypt(plaintext, context, keyVersion);
        return this.behaviour.returnKeyVersion ? { ciphertext, key_version: version } : { ciphertext };
      } catch (error) {
        if (error instanceof TransitUserError) return { error: error.message };
        throw error;
      }
    });
    return this.#itemsResponse(results, batch !== undefined);
  }

  /** A batch answers with every item's result; a single item answers with its data, or its error as a 400. */
  #itemsResponse(results: Record<string, unknown>[], batch: boolean): VaultResponse {
    if (batch) return this.#batchResponse(results);
    const first = results[0] as Record<string, unknown>;
    if (typeof first.error === 'string') return errors(400, first.error);
    return ok({ data: first });
  }

  #decrypt(keys: Map<string, TransitKey>, name: string, body: Record<string, unknown>): VaultResponse {
    const batch = this.#batchInput(body);
    if (batch && !Array.isArray(batch)) return batch;
    let items: Record<string, unknown>[];
    if (batch) items = batch;
    else {
      if (typeof body.ciphertext !== 'string' || body.ciphertext === '') {
        return errors(400, 'missing ciphertext to decrypt');
      }
      items = [body];
    }
    const key = keys.get(name);
    if (!key) return errors(400, 'encryption key not found');
    const results = items.map((item): Record<string, unknown> => {
      try {
        const ciphertext = typeof item.ciphertext === 'string' ? item.ciphertext : '';
        return { plaintext: key.decrypt(ciphertext, decodeContext(item.context)) };
      } catch (error) {
        if (error instanceof TransitUserError) return { error: error.message };
        throw error;
      }
    });
    return this.#itemsResponse(results, batch !== undefined);
  }

  #createKey(keys: Map<string, TransitKey>, name: string, body: Record<string, unknown>): VaultResponse {
    const type = typeof body.type === 'string' && body.type !== '' ? body.type : 'aes256-gcm96';
    if (type !== 'aes256-gcm96') return errors(400, `unknown key type ${type}`);
    if (keys.has(name)) return noContent;
    const key = new TransitKey(name, this.state.nowSeconds(), toBool(body.derived) ?? false);
    key.exportable = toBool(body.exportable) ?? false;
    key.allowPlaintextBackup = toBool(body.allow_plaintext_backup) ?? false;
    keys.set(name, key);
    return noContent;
  }

  #configKey(keys: Map<string, TransitKey>, name: string, body: Record<string, unknown>): VaultResponse {
    const key = keys.get(name);
    if (!key) return errors(400, `no existing key named ${name} could be found`);
    const warnings: string[] = [];
    let minDecryption = key.minDecryptionVersion;
    let minEncryption = key.minEncryptionVersion;
    if (body.min_decryption_version !== undefined) {
      const value = toInt(body.min_decryption_version);
      if (value === undefined) return errors(400, 'invalid min_decryption_version');
      let next = value;
      if (next < 0) return errors(400, 'min decryption version cannot be negative');
      if (next === 0) {
        next = 1;
        warnings.push('since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1');
      }
      if (next !== key.minDecryptionVersion) {
        if (next > key.latestVersion) {
          return errors(
            400,
            `cannot set min decryption version of ${next}, latest key version is ${key.latestVersion}`,
          );
        }
        minDecryption = next;
      }
    }
    if (body.min_encryption_version !== undefined) {
      const value = toInt(body.min_encryption_version);
      if (value === undefined) return errors(400, 'invalid min_encryption_version');
      if (value < 0) return errors(400, 'min encryption version cannot be negative');
      if (value !== key.minEncryptionVersion) {
        if (value > key.latestVersion) {
          return errors(
            400,
            `cannot set min encryption version of ${value}, latest key version is ${key.latestVersion}`,
          );
        }
        minEncryption = value;
      }
    }
    if (minEncryption > 0 && minEncryption < minDecryption) {
      return errors(
        400,
        `cannot set min encryption/decryption values; min encryption version of ${minEncryption} must be greater than or equal to min decryption version of ${minDecryption}`,
      );
    }
    key.minDecryptionVersion = minDecryption;
    key.minEncryptionVersion = minEncryption;
    const deletionAllowed = toBool(body.deletion_allowed);
    if (deletionAllowed !== undefined) key.deletionAllowed = deletionAllowed;
    const exportable = toBool(body.exportable);
    if (exportable === true) key.exportable = true;
    if (exportable === false && key.exportable)
      return errors(400, 'export cannot be disabled on a key that already has it enabled');
    const backup = toBool(body.allow_plaintext_backup);
    if (backup === true) key.allowPlaintextBackup = true;
    if (warnings.length > 0) return ok({ warnings });
    return noContent;
  }
}

function decodeJwtClaims(jwt: string): Record<string, unknown> | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8'));
    return claims && typeof claims === 'object' ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
