// auth/<mount>/login of the AppRole method (Vault's builtin/credential/approle).
import { normalizeNamespace, type AppRoleConfig, type VaultState } from '../state.js';
import { errors, ok, type VaultRequest, type VaultResponse } from '../wire.js';
import { loginAuth } from './token.js';

export class AppRoleBackend {
  constructor(private readonly state: VaultState) {}

  login(request: VaultRequest, roles: ReadonlyMap<string, AppRoleConfig>, mount: string): VaultResponse {
    const roleId = request.body.role_id;
    if (typeof roleId !== 'string' || roleId === '') return errors(400, 'missing role_id');
    const role = [...roles.values()].find((r) => r.roleId === roleId);
    if (!role) return errors(400, 'invalid role ID');
    const secretId = request.body.secret_id;
    if (typeof secretId !== 'string' || secretId === '') return errors(400, 'missing secret_id');
    if (secretId !== role.secretId) return errors(400, 'invalid secret id');
    const metadata = { role_name: role.roleName };
    const namespace = normalizeNamespace(request.namespace);
    const token = this.state.tokens.create({
      namespace,
      policies: role.policies,
      ttlSeconds: role.tokenTtlSeconds,
      backendMaxTtlSeconds: role.tokenMaxTtlSeconds,
      renewable: role.renewable,
      path: `auth/${mount}/login`,
      displayName: mount.replaceAll('/', '-'),
      meta: metadata,
      orphan: true,
      entityId: this.state.entityId(namespace, mount, role.roleId),
      login: { method: 'approle', mount, namespace, rolePolicies: role.policies, internal: {} },
    });
    return ok({ auth: loginAuth(token, metadata) });
  }
}
