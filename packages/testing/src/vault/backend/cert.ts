// auth/<mount>/login of the TLS certificate method (Vault's builtin/credential/cert), as Vault 1.4.3
// answers it (auth-cert.json). The client certificate comes from the TLS connection, which the listener
// asks for without checking it; the method checks it against the CA certificates of its roles (all of
// them, or the one `name` picks). A renewal of its token checks the connection's certificate again:
// it must still chain to a role and be the same client (same subject or authority key id).
import type { X509Certificate } from 'node:crypto';
import { normalizeNamespace, type CertMount, type CertRoleConfig, type VaultState } from '../state.js';
import type { TokenEntry } from '../tokens.js';
import { errors, ok, type VaultConnection, type VaultRequest, type VaultResponse } from '../wire.js';
import { authorityKeyId, commonName, serialDecimal, subjectKeyId } from '../x509-ids.js';
import { loginAuth } from './token.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

/** Go's time.RFC3339 in UTC, as x509 errors print times. */
function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/** The role a verified client certificate matched, and the certificate. */
interface Match {
  readonly role: CertRoleConfig;
  readonly leaf: X509Certificate;
}

export class CertBackend {
  constructor(private readonly state: VaultState) {}

  login(request: VaultRequest, mount: string, config: CertMount): VaultResponse {
    const name = typeof request.body.name === 'string' ? request.body.name : '';
    const verified = this.#verify(request.connection, config, name);
    if (!('role' in verified)) return verified;
    const { role, leaf } = verified;
    const skid = subjectKeyId(leaf);
    const akid = authorityKeyId(leaf);
    const metadata = {
      authority_key_id: akid,
      cert_name: role.name,
      common_name: commonName(leaf),
      serial_number: serialDecimal(leaf),
      subject_key_id: skid,
    };
    const namespace = normalizeNamespace(request.namespace);
    const token = this.state.tokens.create({
      namespace,
      policies: role.policies,
      ttlSeconds: role.tokenTtlSeconds,
      backendMaxTtlSeconds: role.tokenMaxTtlSeconds,
      renewable: true,
      path: `auth/${mount}/login`,
      displayName: `${mount.replaceAll('/', '-')}-${role.name}`,
      meta: metadata,
      orphan: true,
      entityId: this.state.entityId(namespace, mount, commonName(leaf)),
      login: {
        method: 'cert',
        mount,
        namespace,
        rolePolicies: role.policies,
        internal: { subject_key_id: skid, authority_key_id: akid },
      },
    });
    return ok({ auth: loginAuth(token, metadata) });
  }

  /** Undefined when a renewal of `token` (from a cert login) may go on, else Vault's refusal. */
  checkRenewal(token: TokenEntry, connection: VaultConnection): VaultResponse | undefined {
    const login = token.login;
    if (login === undefined) return undefined;
    const config = this.state.namespace(login.namespace).cert.get(login.mount);
    if (config === undefined) return errors(400, 'invalid certificate or no client certificate supplied');
    const verified = this.#verify(connection, config, '');
    if (!('role' in verified)) return verified;
    if (
      login.internal.subject_key_id !== subjectKeyId(verified.leaf) &&
      login.internal.authority_key_id !== authorityKeyId(verified.leaf)
    ) {
      return errors(400, 'client identity during renewal not matching client identity used during login');
    }
    const role = config.roles.get(token.meta?.cert_name ?? '');
    const same = (a: readonly string[], b: readonly string[]): boolean =>
      a.length === b.length && [...a].sort().every((policy, i) => policy === [...b].sort()[i]);
    if (role === undefined || !same(role.policies, login.rolePolicies)) {
      return errors(400, 'policies have changed, not renewing');
    }
    return undefined;
  }

  /**
   * Vault's `verifyCredentials`: TLS and a certificate first (400), its validity and key usage (500, as
   * x509 verification errors other than an unknown authority are), then a role whose CA it chains to,
   * directly or through an intermediate it sent (400 when none).
   */
  #verify(connection: VaultConnection, config: CertMount, name: string): Match | VaultResponse {
    if (!connection.tls) return errors(400, 'tls connection required');
    const [leaf, ...intermediates] = connection.peerCertificates;
    if (leaf === undefined) return errors(400, 'client certificate must be supplied');
    // Go's x509 verification reads the machine's clock, not Vault's token clock.
    const now = Date.now();
    const notBefore = Date.parse(leaf.validFrom);
    const notAfter = Date.parse(leaf.validTo);
    if (now < notBefore || now > notAfter) {
      const detail =
        now > notAfter
          ? `current time ${rfc3339(now)} is after ${rfc3339(notAfter)}`
          : `current time ${rfc3339(now)} is before ${rfc3339(notBefore)}`;
      return errors(
        500,
        `failed to verify client's certificate: x509: certificate has expired or is not yet valid: ${detail}`,
      );
    }
    const roles =
      name === ''
        ? [...config.roles.values()]
        : [config.roles.get(name)].filter((role): role is CertRoleConfig => role !== undefined);
    const chainsTo = (root: X509Certificate): boolean =>
      issuedBy(leaf, root) ||
      intermediates.some((intermediate) => issuedBy(leaf, intermediate) && issuedBy(intermediate, root));
    const role = roles.find((candidate) => candidate.certificates.some(chainsTo));
    if (role === undefined) return errors(400, 'invalid certificate or no client certificate supplied');
    const usages = leaf.keyUsage;
    if (usages !== undefined && !usages.includes(CLIENT_AUTH) && !usages.includes(ANY_EXTENDED_KEY_USAGE)) {
      return errors(
        500,
        "failed to verify client's certificate: x509: certificate specifies an incompatible key usage",
      );
    }
    return { role, leaf };
  }
}
