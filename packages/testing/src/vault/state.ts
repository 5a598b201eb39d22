// Everything a Vault server holds, per namespace: transit mounts and keys, policies, auth roles; plus the
// token store and the seal. Tests drive it directly; the HTTP layer reads and changes it.
import { createHmac, randomBytes, randomUUID, type KeyObject, type X509Certificate } from 'node:crypto';
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
  /** The legacy token's Secret; `''` for a projected token. */
  readonly secretName: string;
  /** A projected token's `exp` (epoch ms): the cluster's TokenReview refuses it after that. */
  readonly expiresAt: number | undefined;
}

export interface KubernetesMount {
  readonly roles: Map<string, KubernetesRoleConfig>;
  /** JWTs the emulator's "cluster" vouches for in a TokenReview, with their service accounts. */
  readonly issued: Map<string, ServiceAccount>;
  /** `auth/<mount>/config issuer`; Vault 1.4's plugin refuses a JWT whose `iss` differs. */
  issuer: string | undefined;
  /** False while Vault cannot reach the Kubernetes API for a TokenReview. */
  tokenReviewReachable: boolean;
}

export interface JwtRoleConfig {
  readonly role: string;
  readonly boundAudiences: readonly string[];
  readonly boundSubject: string;
  readonly userClaim: string;
  readonly policies: string[];
  readonly tokenTtlSeconds: number;
  readonly tokenMaxTtlSeconds: number;
}

export interface JwtMount {
  readonly roles: Map<string, JwtRoleConfig>;
  /** `jwt_validation_pubkeys`: the keys a JWT's signature is checked with. */
  validationKeys: readonly KeyObject[];
  /** `bound_issuer`; `''` checks no issuer. */
  boundIssuer: string;
}

export interface CertRoleConfig {
  readonly name: string;
  /** The PEM the role trusts (`certificate`): CA certificates a client certificate must chain to. */
  readonly certificates: readonly X509Certificate[];
  readonly policies: string[];
  readonly tokenTtlSeconds: number;
  readonly tokenMaxTtlSeconds: number;
}

export interface CertMount {
  readonly roles: Map<string, CertRoleConfig>;
}

export class NamespaceState {
  /** Transit mounts (mount path -> key name -> key). `transit` always exists. */
  readonly transit = new Map<string, Map<string, TransitKey>>([['transit', new Map()]]);
  readonly policies = new Map<string, ReadonlyArray<VaultPolicyRule>>();
  readonly approle = new Map<string, Map<string, AppRoleConfig>>();
  readonly kubernetes = new Map<string, KubernetesMount>();
  readonly jwt = new Map<string, JwtMount>();
  readonly cert = new Map<string, CertMount>();

  /** The auth method enabled at `mount`, if any (a path holds one method). */
  authMethodAt(mount: string): 'approle' | 'kubernetes' | 'jwt' | 'cert' | undefined {
    if (this.approle.has(mount)) return 'approle';
    if (this.kubernetes.has(mount)) return 'kubernetes';
    if (this.jwt.has(mount)) return 'jwt';
    if (this.cert.has(mount)) return 'cert';
    return undefined;
  }

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

/** A service account to issue a token for, and the token's shape. */
export interface ServiceAccountSpec {
  readonly name: string;
  readonly namespace: string;
  /** Random when absent. */
  readonly uid?: string;
  /** A legacy token's Secret name; random when absent. */
  readonly secretName?: string;
  /** A projected (bound) token instead of a legacy Secret token. */
  readonly projected?: {
    /** Default `https://kubernetes.default.svc.cluster.local` (the apiserver's `--service-account-issuer`). */
    readonly issuer?: string;
    /** Default the issuer URL, as a pod's default projected token has. */
    readonly audience?: string;
    /** Default 3600. */
    readonly expirationSeconds?: number;
    readonly podName?: string;
  };
}

export class VaultState {
  readonly namespaces = new Map<string, NamespaceState>();
  readonly tokens: TokenStore;
  readonly rootToken: TokenEntry;
  readonly unsealKey = randomBytes(32).toString('base64');
  readonly clusterName = `vault-cluster-${randomBytes(4).toString('hex')}`;
  readonly clusterId = randomUUID();
  readonly #jwtSecret = randomBytes(32);
  readonly #entities = new Map<string, string>();
  /** The "cluster's" service accounts: one uid per namespace and name. */
  readonly #serviceAccountUids = new Map<string, string>();
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

  /**
   * The entity an auth method's alias belongs to: the same alias (a service account's uid, a JWT's user
   * claim, a certificate's common name) logging in again gets the same `entity_id`, as in Vault.
   */
  entityId(namespace: string, mount: string, alias: string): string {
    const key = JSON.stringify([normalizeNamespace(namespace), mount, alias]);
    let id = this.#entities.get(key);
    if (id === undefined) {
      id = randomUUID();
      this.#entities.set(key, id);
    }
    return id;
  }

  /**
   * Signs a service-account token the way a cluster would (HMAC here: the emulator's TokenReview only
   * checks that it issued the token). Legacy tokens carry the `kubernetes.io/serviceaccount/*` claims of
   * a token Secret; projected ones (`projected` set) the `kubernetes.io` object, an audience, an issuer and
   * an expiry, after which the TokenReview refuses them.
   */
  issueServiceAccountJwt(mount: KubernetesMount, account: ServiceAccountSpec): string {
    const key = `${account.namespace}/${account.name}`;
    const uid = account.uid ?? this.#serviceAccountUids.get(key) ?? randomUUID();
    this.#serviceAccountUids.set(key, uid);
    const now = this.nowSeconds();
    const header = { alg: 'HS256', kid: 'trousseau-emulator', typ: 'JWT' };
    const sub = `system:serviceaccount:${account.namespace}:${account.name}`;
    let payload: Record<string, unknown>;
    let secretName = '';
    let expiresAt: number | undefined;
    const projected = account.projected;
    if (projected === undefined) {
      secretName =
        account.secretName ?? `${account.name}-token-${randomBytes(3).toString('hex').slice(0, 5)}`;
      payload = {
        iss: 'kubernetes/serviceaccount',
        'kubernetes.io/serviceaccount/namespace': account.namespace,
        'kubernetes.io/serviceaccount/secret.name': secretName,
        'kubernetes.io/serviceaccount/service-account.name': account.name,
        'kubernetes.io/serviceaccount/service-account.uid': uid,
        sub,
      };
    } else {
      const exp = now + (projected.expirationSeconds ?? 3600);
      expiresAt = exp * 1000;
      payload = {
        aud: [projected.audience ?? 'https://kubernetes.default.svc.cluster.local'],
        exp,
        iat: now,
        iss: projected.issuer ?? 'https://kubernetes.default.svc.cluster.local',
        'kubernetes.io': {
          namespace: account.namespace,
          pod: { name: projected.podName ?? `${account.name}-0`, uid: randomUUID() },
          serviceaccount: { name: account.name, uid },
        },
        nbf: now,
        sub,
      };
    }
    const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${encode(header)}.${encode({ ...payload, jti: randomUUID() })}`;
    const signature = createHmac('sha256', this.#jwtSecret).update(unsigned).digest('base64url');
    const jwt = `${unsigned}.${signature}`;
    mount.issued.set(jwt, { name: account.name, namespace: account.namespace, uid, secretName, expiresAt });
    return jwt;
  }
}
