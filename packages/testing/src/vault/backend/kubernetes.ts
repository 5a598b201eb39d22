// auth/<mount>/login of the Kubernetes method (the vault-plugin-auth-kubernetes plugin Vault 1.4 ships).
// The emulator stands in for the cluster's TokenReview: the JWTs it issued for the mount are the valid ones.
import { normalizeNamespace, type KubernetesMount, type VaultState } from '../state.js';
import { errors, ok, PERMISSION_DENIED, type VaultRequest, type VaultResponse } from '../wire.js';
import { loginAuth } from './token.js';

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
    // the unbound name or namespace but only `permission denied` when the token review fails.
    const refuse = (message: string, named = false): VaultResponse =>
      this.failureStatus === 403 ? errors(403, named ? message : PERMISSION_DENIED) : errors(500, message);
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
    return ok({ auth: loginAuth(token, metadata) });
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
