// auth/<mount>/login of the Kubernetes method, as the vault-plugin-auth-kubernetes plugin Vault 1.4.3
// ships answers it (auth-kubernetes.json): the role and the JWT's shape are checked first (400), then
// the JWT's claims (500 with the plugin's message: malformed, `iss` other than the configured issuer,
// service account name or namespace not bound), then a TokenReview with the cluster (403 `permission
// denied` when it refuses the token or cannot be reached; the cause is only in Vault's log). The
// emulator stands in for the cluster: the JWTs it issued for the mount are the ones its TokenReview
// vouches for. `failureStatus: 403` is newer Vault: claim refusals answer 403 too, and `iss` is not checked
// (newer plugins no longer validate it by default).
import { normalizeNamespace, type KubernetesMount, type VaultState } from '../state.js';
import { errors, ok, PERMISSION_DENIED, type VaultRequest, type VaultResponse } from '../wire.js';
import { decodeJwtClaims } from '../jws.js';
import { loginAuth } from './token.js';

/** The issuer Vault 1.4's plugin expects when `auth/<mount>/config` sets none: legacy Secret tokens. */
const LEGACY_ISSUER = 'kubernetes/serviceaccount';

/** The service account a JWT names, in either token shape. */
function serviceAccountOf(claims: Record<string, unknown>): { name: unknown; namespace: unknown } {
  const projected = claims['kubernetes.io'];
  if (typeof projected === 'object' && projected !== null) {
    const info = projected as { namespace?: unknown; serviceaccount?: { name?: unknown } };
    return { name: info.serviceaccount?.name, namespace: info.namespace };
  }
  return {
    name: claims['kubernetes.io/serviceaccount/service-account.name'],
    namespace: claims['kubernetes.io/serviceaccount/namespace'],
  };
}

export class KubernetesBackend {
  constructor(
    private readonly state: VaultState,
    private readonly failureStatus: 500 | 403,
  ) {}

  login(request: VaultRequest, mount: string, kube: KubernetesMount): VaultResponse {
    const roleName = request.body.role;
    if (typeof roleName !== 'string' || roleName === '') return errors(400, 'missing role');
    const jwt = request.body.jwt;
    if (typeof jwt !== 'string' || jwt === '') return errors(400, 'missing jwt');
    const role = kube.roles.get(roleName);
    if (!role) return errors(400, `invalid role name "${roleName}"`);
    // Vault 1.4's plugin returns plain errors (500 with its message); newer plugins answer 403, naming
    // the unbound name or namespace.
    const refuse = (message: string): VaultResponse =>
      this.failureStatus === 403 ? errors(403, message) : errors(500, message);
    const claims = decodeJwtClaims(jwt);
    if (!claims) return refuse('not a compact JWS');
    if (this.failureStatus === 500 && claims.iss !== (kube.issuer ?? LEGACY_ISSUER))
      return refuse('claim "iss" is invalid');
    const { name, namespace } = serviceAccountOf(claims);
    const allowed = (list: string[], value: unknown): boolean =>
      typeof value === 'string' && (list.includes('*') || list.includes(value));
    if (!allowed(role.boundServiceAccountNames, name)) return refuse('service account name not authorized');
    if (!allowed(role.boundNamespaces, namespace)) return refuse('namespace not authorized');
    // The TokenReview: unreachable, or the cluster does not vouch for the token (deleted service
    // account, expired projected token). Vault logs why and answers a bare 403.
    const account = kube.tokenReviewReachable ? kube.issued.get(jwt) : undefined;
    if (!account || (account.expiresAt !== undefined && account.expiresAt <= this.state.now())) {
      return errors(403, PERMISSION_DENIED);
    }
    const metadata = {
      role: roleName,
      service_account_name: account.name,
      service_account_namespace: account.namespace,
      service_account_secret_name: account.secretName,
      service_account_uid: account.uid,
    };
    const namespacePath = normalizeNamespace(request.namespace);
    const token = this.state.tokens.create({
      namespace: namespacePath,
      policies: role.policies,
      ttlSeconds: role.tokenTtlSeconds,
      renewable: true,
      path: `auth/${mount}/login`,
      displayName: `${mount.replaceAll('/', '-')}-${account.namespace}-${account.name}`,
      meta: metadata,
      orphan: true,
      entityId: this.state.entityId(namespacePath, mount, account.uid),
      login: {
        method: 'kubernetes',
        mount,
        namespace: namespacePath,
        rolePolicies: role.policies,
        internal: {},
      },
    });
    return ok({ auth: loginAuth(token, metadata) });
  }
}
