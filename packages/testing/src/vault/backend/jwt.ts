// auth/<mount>/login of the JWT method with static keys (`jwt_validation_pubkeys`), as the
// vault-plugin-auth-jwt plugin of Vault 1.4.3 answers it (auth-jwt.json): every refusal is a 400 with the
// plugin's message. Order: role, token present, parse, signature, then the claims (issuer, subject,
// not-before and expiry with go-jose's default minute of leeway, then the audience), then the user claim.
import { normalizeNamespace, type JwtMount, type VaultState } from '../state.js';
import { parseCompactJws, verifyJws } from '../jws.js';
import { errors, ok, type VaultRequest, type VaultResponse } from '../wire.js';
import { loginAuth } from './token.js';

/** go-jose's `jwt.DefaultLeeway`, which the plugin of Vault 1.4 validates times with. */
const LEEWAY_SECONDS = 60;

const claimsError = (message: string): VaultResponse => errors(400, `error validating claims: ${message}`);

function audiencesOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

export class JwtBackend {
  constructor(private readonly state: VaultState) {}

  login(request: VaultRequest, mount: string, config: JwtMount): VaultResponse {
    const roleName = request.body.role;
    if (typeof roleName !== 'string' || roleName === '') return errors(400, 'missing role');
    const role = config.roles.get(roleName);
    if (!role) return errors(400, `role "${roleName}" could not be found`);
    const jwt = request.body.jwt;
    if (typeof jwt !== 'string' || jwt === '') return errors(400, 'missing token');
    const jws = parseCompactJws(jwt);
    if ('error' in jws) return errors(400, `error parsing token: ${jws.error}`);
    if (!config.validationKeys.some((key) => verifyJws(jws, key))) {
      return errors(400, 'no known key successfully validated the token signature');
    }
    const claims = jws.claims;
    if (config.boundIssuer !== '' && claims.iss !== config.boundIssuer) {
      return claimsError('square/go-jose/jwt: validation failed, invalid issuer claim (iss)');
    }
    if (role.boundSubject !== '' && claims.sub !== role.boundSubject) {
      return claimsError('square/go-jose/jwt: validation failed, invalid subject claim (sub)');
    }
    const now = this.state.nowSeconds();
    if (typeof claims.nbf === 'number' && now + LEEWAY_SECONDS < claims.nbf) {
      return claimsError('square/go-jose/jwt: validation failed, token not valid yet (nbf)');
    }
    if (typeof claims.exp === 'number' && now - LEEWAY_SECONDS > claims.exp) {
      return claimsError('square/go-jose/jwt: validation failed, token is expired (exp)');
    }
    const audiences = audiencesOf(claims.aud);
    if (role.boundAudiences.length > 0) {
      if (!audiences.some((audience) => role.boundAudiences.includes(audience))) {
        return claimsError('aud claim does not match any bound audience');
      }
    } else if (audiences.length > 0) {
      return claimsError('audience claim found in JWT but no audiences bound to the role');
    }
    const user = claims[role.userClaim];
    if (typeof user !== 'string' || user === '') {
      return errors(400, `claim "${role.userClaim}" not found in token`);
    }
    const metadata = { role: roleName };
    const namespace = normalizeNamespace(request.namespace);
    const token = this.state.tokens.create({
      namespace,
      policies: role.policies,
      ttlSeconds: role.tokenTtlSeconds,
      backendMaxTtlSeconds: role.tokenMaxTtlSeconds,
      renewable: true,
      path: `auth/${mount}/login`,
      displayName: `${mount.replaceAll('/', '-')}-${user}`,
      meta: metadata,
      orphan: true,
      entityId: this.state.entityId(namespace, mount, user),
      login: { method: 'jwt', mount, namespace, rolePolicies: role.policies, internal: {} },
    });
    return ok({ auth: loginAuth(token, metadata) });
  }
}
