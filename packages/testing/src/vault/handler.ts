// Vault's HTTP API over the emulator state: the router. It answers what Vault's core does before any
// backend sees a request (the seal, the token check, namespaces, ACLs) and hands each path to its
// backend, one file per backend as Vault's source has them: ./backend/sys.ts, token.ts, approle.ts,
// kubernetes.ts, jwt.ts, cert.ts and transit.ts, answering with Vault 1.4.3's status codes, error strings and field
// names (see ../../fixtures/vault-1.4.3/).
import { AppRoleBackend } from './backend/approle.js';
import { CertBackend } from './backend/cert.js';
import { JwtBackend } from './backend/jwt.js';
import { KubernetesBackend } from './backend/kubernetes.js';
import { SysBackend } from './backend/sys.js';
import { TokenBackend } from './backend/token.js';
import { TransitBackend } from './backend/transit.js';
import type { VaultCapability } from './policy.js';
import { normalizeNamespace, type VaultState } from './state.js';
import {
  ACL_DENIED,
  errors,
  isWrite,
  PERMISSION_DENIED,
  toBool,
  type AuthorizedRequest,
  type VaultRequest,
  type VaultResponse,
} from './wire.js';

interface VaultBehaviour {
  readonly batchPartialFailureStatus: 200 | 400;
  readonly returnKeyVersion: boolean;
  readonly rotateStatus: 204 | 200;
  readonly kubernetesLoginFailureStatus: 500 | 403;
}

function capabilityOf(method: string): VaultCapability | undefined {
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
}

export class VaultHandler {
  readonly #state: VaultState;
  readonly #sys: SysBackend;
  readonly #token: TokenBackend;
  readonly #approle: AppRoleBackend;
  readonly #kubernetes: KubernetesBackend;
  readonly #jwt: JwtBackend;
  readonly #cert: CertBackend;
  readonly #transit: TransitBackend;

  constructor(state: VaultState, behaviour: VaultBehaviour) {
    this.#state = state;
    this.#sys = new SysBackend(state);
    this.#approle = new AppRoleBackend(state);
    this.#kubernetes = new KubernetesBackend(state, behaviour.kubernetesLoginFailureStatus);
    this.#jwt = new JwtBackend(state);
    this.#cert = new CertBackend(state);
    // A renewal goes back to the auth method that issued the token; the cert method checks again.
    this.#token = new TokenBackend(state, (token, connection) =>
      token.login?.method === 'cert' ? this.#cert.checkRenewal(token, connection) : undefined,
    );
    this.#transit = new TransitBackend(state, behaviour);
  }

  handle(request: VaultRequest): VaultResponse {
    if (!request.path.startsWith('/v1/')) return errors(404);
    const rel = request.path.slice('/v1/'.length).replace(/\/+$/, '');
    const method =
      request.method === 'GET' && toBool(request.query.get('list')) === true ? 'LIST' : request.method;

    // Unauthenticated sys endpoints answer whatever the seal.
    const open = this.#sys.unauthenticated(request, method, rel);
    if (open !== undefined) return open;

    if (this.#state.sealed || !this.#state.initialized) {
      return errors(
        503,
        request.token && !rel.startsWith('auth/')
          ? 'error performing token check: Vault is sealed'
          : 'Vault is sealed',
      );
    }

    const ns = this.#state.namespace(request.namespace);
    const login = /^auth\/(.+)\/login$/.exec(rel);
    if (login && isWrite(method)) {
      const mount = login[1] as string;
      const roles = ns.approle.get(mount);
      if (roles) return this.#approle.login(request, roles, mount);
      const kube = ns.kubernetes.get(mount);
      if (kube) return this.#kubernetes.login(request, mount, kube);
      const jwt = ns.jwt.get(mount);
      if (jwt) return this.#jwt.login(request, mount, jwt);
      const cert = ns.cert.get(mount);
      if (cert) return this.#cert.login(request, mount, cert);
    }

    if (!request.token) return errors(400, 'missing client token');
    const token = this.#state.tokens.lookup(request.token);
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
      if (this.#state.acl(token).allows(`${nsPrefix}${rel}`, capability, sudo)) {
        this.#state.tokens.use(token);
        return undefined;
      }
      return errors(403, ACL_DENIED);
    };
    const noHandler = (): VaultResponse => {
      const capability = capabilityOf(method);
      if (capability) {
        const denied = authorize(capability);
        if (denied) return denied;
      }
      return errors(404, `no handler for route '${rel}'`);
    };
    const authorized: AuthorizedRequest = {
      method,
      rel,
      body: request.body,
      token,
      namespace: requestNs,
      connection: request.connection,
      authorize,
      noHandler,
    };
    return (
      this.#token.handle(authorized) ??
      this.#sys.handle(authorized) ??
      this.#transit.handle(authorized, ns) ??
      noHandler()
    );
  }
}
