// Everything a Vault server holds, per namespace: transit mounts and keys, policies, auth roles; plus the
// token store and the seal. Tests drive it directly; the HTTP layer reads and changes it.
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Acl, DEFAULT_POLICY_RULES, type VaultPolicyRule } from './policy.js';
import { TokenStore, type TokenEntry } from './tokens.js';
import { type TransitKey } from './transit.js';

export interface AppRoleConfig {
  readonly roleName: string;
  readonly roleId: string;
  readonly secretId: string;
  readonly policies: string[];
  readonly tokenTtlSeconds: number;
  readonly tokenMaxTtlSeconds: number;
  readonly renewable: boolean;
}

export interface KubernetesRoleConfig {
  readonly role: string;
  readonly boundServiceAccountNames: string[];
  readonly boundNamespaces: string[];
  readonly policies: string[];
  readonly tokenTtlSeconds: number;
}

export interface ServiceAccount {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly secretName: string;
}

export interface KubernetesMount {
  readonly roles: Map<string, KubernetesRoleConfig>;
  /** JWTs issued by this emulator's "cluster" for this mount, still valid. */
  readonly issued: Map<string, ServiceAccount>;
}

export class NamespaceState {
  /** Transit mounts (mount path -> key name -> key). `transit` always exists. */
  readonly transit = new Map<string, Map<string, TransitKey>>([['transit', new Map()]]);
  readonly policies = new Map<string, ReadonlyArray<VaultPolicyRule>>();
  readonly approle = new Map<string, Map<string, AppRoleConfig>>();
  readonly kubernetes = new Map<string, KubernetesMount>();

  mount(path: string): Map<string, TransitKey> {
    let keys = this.transit.get(path);
    if (!keys) {
      keys = new Map();
      this.transit.set(path, keys);
    }
    return keys;
  }
}

/** Normalises `X-Vault-Namespace` values: `ns1/`, `/ns1` and `ns1` are the same namespace; root is ''. */
export function normalizeNamespace(value: string | undefined): string {
  if (!value) return '';
  return value
    .split('/')
    .filter((part) => part.length > 0)
    .join('/');
}

export function normalizeMount(value: string | undefined, fallback: string): string {
  const mount = normalizeNamespace(value);
  return mount === '' ? fallback : mount;
}

export class VaultState {
  readonly namespaces = new Map<string, NamespaceState>();
  readonly tokens: TokenStore;
  readonly rootToken: TokenEntry;
  readonly unsealKey = randomBytes(32).toString('base64');
  readonly clusterName = `vault-cluster-${randomBytes(4).toString('hex')}`;
  readonly clusterId = randomUUID();
  readonly #jwtSecret = randomBytes(32);
  sealed = false;
  standby = false;
  initialized = true;

  constructor(
    readonly now: () => number,
    rootToken: string,
  ) {
    this.tokens = new TokenStore(now);
    this.rootToken = this.tokens.createRoot(rootToken);
  }

  namespace(name: string): NamespaceState {
    const key = normalizeNamespace(name);
    let state = this.namespaces.get(key);
    if (!state) {
      state = new NamespaceState();
      this.namespaces.set(key, state);
    }
    return state;
  }

  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  /** The ACL of a token: its policies as written in its namespace (`default` is built in, overridable). */
  acl(token: TokenEntry): Acl {
    if (token.root) return new Acl([], true);
    const ns = this.namespace(token.namespace);
    const rules = token.policies.map(
      (name) => ns.policies.get(name) ?? (name === 'default' ? DEFAULT_POLICY_RULES : []),
    );
    return new Acl(rules);
  }

  findKey(name: string, options: { namespace?: string; mount?: string } = {}): TransitKey {
    const keys = this.namespace(options.namespace ?? '').transit.get(
      normalizeMount(options.mount, 'transit'),
    );
    const key = keys?.get(name);
    if (!key) throw new Error(`vault emulator: no transit key named ${name}`);
    return key;
  }

  /** Signs a service-account token the way a cluster would (HMAC here: only this emulator verifies it). */
  issueServiceAccountJwt(mount: KubernetesMount, account: { name: string; namespace: string }): string {
    const uid = randomUUID();
    const secretName = `${account.name}-token-${randomBytes(3).toString('hex').slice(0, 5)}`;
    const header = { alg: 'HS256', kid: 'trousseau-emulator', typ: 'JWT' };
    const payload = {
      iss: 'kubernetes/serviceaccount',
      'kubernetes.io/serviceaccount/namespace': account.namespace,
      'kubernetes.io/serviceaccount/secret.name': secretName,
      'kubernetes.io/serviceaccount/service-account.name': account.name,
      'kubernetes.io/serviceaccount/service-account.uid': uid,
      sub: `system:serviceaccount:${account.namespace}:${account.name}`,
      iat: this.nowSeconds(),
      jti: randomUUID(),
    };
    const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${encode(header)}.${encode(payload)}`;
    const signature = createHmac('sha256', this.#jwtSecret).update(unsigned).digest('base64url');
    const jwt = `${unsigned}.${signature}`;
    mount.issued.set(jwt, { name: account.name, namespace: account.namespace, uid, secretName });
    return jwt;
  }
}
