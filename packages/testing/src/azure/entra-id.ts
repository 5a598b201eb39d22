// The emulator's Microsoft Entra ID: the tenant's OpenID metadata and its client-credentials token
// endpoint (`/<tenant>/oauth2/v2.0/token`), so the real credentials of `@azure/identity` can get a Key
// Vault token from it, answering with Entra ID's error shapes (`AADSTS<code>: ...`). Tokens come from
// the {@link TokenIssuer}, which the Key Vault side checks them against.
import { randomUUID } from 'node:crypto';
import type { TokenIssuer } from './token-issuer.js';

interface EntraIdOptions {
  readonly tenantId: string;
  /** The service principal the token endpoint accepts. */
  readonly clientId: string;
  readonly clientSecret: string;
  readonly tokens: TokenIssuer;
  /** True while the token endpoint answers 503 (Entra ID unreachable). */
  readonly down: () => boolean;
}

/** What Entra ID answered, and which of its endpoints answered it. */
interface EntraIdAnswer {
  readonly kind: 'token' | 'metadata';
  readonly status: number;
  readonly body: unknown;
}

export class EntraId {
  readonly #options: EntraIdOptions;
  /**
   * When set, a client assertion (workload identity's federated token) must equal it; when undefined,
   * any non-empty assertion is accepted.
   */
  clientAssertion: string | undefined;

  constructor(options: EntraIdOptions) {
    this.#options = options;
  }

  /** Answers a request to one of Entra ID's endpoints; undefined for any other path. */
  handle(method: string, path: string, body: Buffer, baseUrl: string): EntraIdAnswer | undefined {
    const tenantId = this.#options.tenantId;
    const metadata = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path);
    if (metadata !== null && method === 'GET') {
      const tenant = metadata[1] ?? '';
      if (tenant !== tenantId) {
        return {
          kind: 'metadata',
          status: 400,
          body: aadError('invalid_tenant', 90002, `Tenant '${tenant}' not found.`),
        };
      }
      return { kind: 'metadata', status: 200, body: openIdConfiguration(baseUrl, tenantId) };
    }
    const tokenPath = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(path);
    if (tokenPath !== null && method === 'POST') {
      const [status, answer] = this.#token(tokenPath[1] ?? '', new URLSearchParams(body.toString('utf8')));
      return { kind: 'token', status, body: answer };
    }
    return undefined;
  }

  #token(tenant: string, form: URLSearchParams): [number, unknown] {
    const { tenantId, clientId, clientSecret, tokens } = this.#options;
    if (this.#options.down()) {
      return [
        503,
        aadError('temporarily_unavailable', 50196, 'The server is temporarily unable to handle the request.'),
      ];
    }
    if (tenant !== tenantId)
      return [400, aadError('invalid_request', 90002, `Tenant '${tenant}' not found.`)];
    if (form.get('grant_type') !== 'client_credentials') {
      return [400, aadError('unsupported_grant_type', 70003, 'The app requested an unsupported grant type.')];
    }
    if (form.get('client_id') !== clientId) {
      return [
        400,
        aadError(
          'unauthorized_client',
          700016,
          `Application with identifier '${form.get('client_id') ?? ''}' was not found in the directory.`,
        ),
      ];
    }
    const scope = form.get('scope') ?? '';
    if (scope !== 'https://vault.azure.net/.default') {
      return [400, aadError('invalid_scope', 70011, `The provided value for scope ${scope} is not valid.`)];
    }
    const secret = form.get('client_secret');
    const assertion = form.get('client_assertion');
    const secretOk = secret !== null && secret === clientSecret;
    const assertionOk =
      assertion !== null &&
      assertion !== '' &&
      form.get('client_assertion_type') === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' &&
      (this.clientAssertion === undefined || assertion === this.clientAssertion);
    if (!secretOk && !assertionOk) {
      return [
        401,
        aadError(
          'invalid_client',
          7000215,
          `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
        ),
      ];
    }
    const { token, expiresIn } = tokens.issue(clientId);
    return [
      200,
      { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: token },
    ];
  }
}

function aadError(error: string, code: number, description: string): unknown {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  return {
    error,
    error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
  };
}

function openIdConfiguration(base: string, tenantId: string): unknown {
  return {
    token_endpoint: `${base}/${tenantId}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/${tenantId}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${base}/${tenantId}/v2.0`,
    request_uri_parameter_supported: false,
    authorization_endpoint: `${base}/${tenantId}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/${tenantId}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/${tenantId}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'tid'],
    tenant_region_scope: 'EU',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
  };
}
