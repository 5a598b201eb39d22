// auth/token/: lookup-self, renew-self, revoke-self, create; and the `auth` block every login answers
// with. Vault keeps these in vault/token_store.go.
import { parseDurationMs } from '../duration.js';
import type { VaultState } from '../state.js';
import type { TokenEntry } from '../tokens.js';
import {
  errors,
  isoTime,
  isWrite,
  noContent,
  ok,
  sortKeys,
  toBool,
  toInt,
  toStringList,
  unsupported,
  type AuthorizedRequest,
  type VaultConnection,
  type VaultResponse,
} from '../wire.js';

/** The `auth` block of a login (or renewal) answer for `token`. */
export function loginAuth(token: TokenEntry, metadata: Record<string, string>): Record<string, unknown> {
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

/** An auth method's say on renewing one of its tokens: undefined to go on, else its refusal. */
type RenewalCheck = (token: TokenEntry, connection: VaultConnection) => VaultResponse | undefined;

export class TokenBackend {
  constructor(
    private readonly state: VaultState,
    private readonly checkRenewal: RenewalCheck,
  ) {}

  /** `auth/token/<action>`; undefined for paths outside auth/token/. */
  handle(request: AuthorizedRequest): VaultResponse | undefined {
    if (!request.rel.startsWith('auth/token/')) return undefined;
    const { method, token, authorize } = request;
    const action = request.rel.slice('auth/token/'.length);
    switch (action) {
      case 'lookup-self':
        if (method !== 'GET' && !isWrite(method)) return unsupported();
        return authorize(method === 'GET' ? 'read' : 'update') ?? ok({ data: this.#lookupData(token) });
      case 'renew-self':
        if (!isWrite(method)) return unsupported();
        return (
          authorize('update') ??
          this.checkRenewal(token, request.connection) ??
          this.#renewSelf(token, request.body)
        );
      case 'revoke-self': {
        if (!isWrite(method)) return unsupported();
        const denied = authorize('update');
        if (denied) return denied;
        this.state.tokens.revoke(token.id);
        return noContent;
      }
      case 'create':
        if (!isWrite(method)) return unsupported();
        return authorize('update') ?? this.#createToken(token, request.namespace, request.body);
      default:
        return request.noHandler();
    }
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
    const auth = loginAuth(token, token.meta ?? {});
    auth.lease_duration = result.ttlSeconds;
    // Recorded 1.4.3 quirk: a login token's renewal lists the role's policies as configured (no
    // `default` added), while `token_policies` keeps the token's.
    if (token.login !== undefined) auth.policies = [...token.login.rolePolicies];
    else if (token.meta === null) auth.metadata = null;
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
    return ok({ auth: loginAuth(token, meta ?? {}) });
  }
}
