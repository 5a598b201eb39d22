// The Vault emulator: an HTTP(S) server on 127.0.0.1 (ephemeral port) over the emulator state, with
// fault injection (latency, 5xx/429, dropped connections, refused connections) and a request log.
import { createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { TLSSocket, type DetailedPeerCertificate } from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import { RequestHold } from '../request-hold.js';
import { VaultHandler } from './handler.js';
import type { VaultCapability } from './policy.js';
import {
  normalizeMount,
  normalizeNamespace,
  VaultState,
  type NamespaceState,
  type ServiceAccountSpec,
} from './state.js';
import { base62 } from './tokens.js';
import { TransitKey } from './transit.js';
import type { VaultConnection, VaultResponse } from './wire.js';

/** An AppRole role for {@link VaultEmulator.configureAppRole}. */
export interface AppRoleOptions {
  mount?: string;
  namespace?: string;
  roleName: string;
  roleId: string;
  secretId: string;
  policies: string[];
  tokenTtlSeconds: number;
  tokenMaxTtlSeconds?: number;
  renewable?: boolean;
}

/** A Kubernetes auth role for {@link VaultEmulator.configureKubernetesAuth}. */
export interface KubernetesAuthOptions {
  mount?: string;
  namespace?: string;
  /**
   * `auth/<mount>/config issuer`. Vault 1.4.3 refuses a JWT whose `iss` differs (500 `claim "iss" is
   * invalid`); without it only legacy Secret tokens (`kubernetes/serviceaccount`) log in. Set it to the
   * apiserver's `--service-account-issuer` for projected tokens. The last value given for a mount holds.
   */
  issuer?: string;
  role: string;
  boundServiceAccountNames: string[];
  boundNamespaces: string[];
  policies: string[];
  tokenTtlSeconds: number;
}

/** A JWT auth mount and role for {@link VaultEmulator.configureJwtAuth} (static keys, as `jwt_validation_pubkeys`). */
export interface JwtAuthOptions {
  mount?: string;
  namespace?: string;
  /** PEM public keys a JWT's signature must verify with (`auth/<mount>/config jwt_validation_pubkeys`). */
  jwtValidationPubkeys: ReadonlyArray<string>;
  /** `bound_issuer` of the mount's config; none checks no issuer. */
  boundIssuer?: string;
  role: string;
  boundAudiences?: ReadonlyArray<string>;
  boundSubject?: string;
  /** Default `sub`. */
  userClaim?: string;
  policies: string[];
  tokenTtlSeconds: number;
  tokenMaxTtlSeconds?: number;
}

/** A TLS certificate auth role for {@link VaultEmulator.configureCertAuth} (`auth/<mount>/certs/<name>`). */
export interface CertAuthOptions {
  mount?: string;
  namespace?: string;
  name: string;
  /** PEM of the CA certificate(s) a client certificate must chain to. */
  certificate: string;
  policies: string[];
  tokenTtlSeconds: number;
  tokenMaxTtlSeconds?: number;
}

export interface VaultEmulatorOptions {
  /**
   * Serve HTTPS (PEM). Like Vault's listener, it asks every client for a certificate and checks none
   * (the cert auth method checks it); with `requestClientCert` (`tls_require_and_verify_client_cert`)
   * clients without a certificate signed by `ca` are refused in the handshake.
   */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer; requestClientCert?: boolean };
  /** A second, plain HTTP listener on another port ({@link VaultEmulator.plainUrl}), as Vault may have. */
  plainListener?: boolean;
  /** ms epoch; drives token TTLs and key creation times (default Date.now). */
  clock?: { now(): number };
  /** Default random (`s.` + 24 characters); never expires. */
  rootToken?: string;
  /** 200 = Vault 1.4.3 behaviour (default), 400 = newer Vault. */
  batchPartialFailureStatus?: 200 | 400;
  /** Newer Vault adds `data.key_version` on encrypt (default false, as 1.4.3). */
  returnKeyVersion?: boolean;
  /** Default 204 (1.4.3); newer Vault answers 200 with the key. */
  rotateStatus?: 204 | 200;
  /**
   * How a refused Kubernetes login answers: 500 with the plugin's message (Vault 1.4.3, default) or
   * 403 (newer Vault: `service account name not authorized` / `namespace not authorized` for an unbound
   * account, `permission denied` for a token the cluster does not know).
   */
  kubernetesLoginFailureStatus?: 500 | 403;
  /** The request log keeps at most this many entries, dropping the oldest (default 100 000). */
  maxRequestLog?: number;
}

export type FaultStatus = 500 | 502 | 503 | 429;

export interface VaultFaults {
  /** Delay before each answer (also before a dropped connection). */
  latencyMs: number;
  /** The next `count` requests (optionally only those whose path after `/v1/` matches) fail with `status`. */
  failNext(count: number, status: FaultStatus, options?: { path?: string | RegExp }): void;
  /** Destroy each request's socket without answering. */
  dropConnections: boolean;
  /** Stop listening (connections are refused) but keep the port; turning it off listens again. */
  refuseConnections: boolean;
  /**
   * While true, requests arrive (and are logged and counted) but get no answer, as on a hung server;
   * turning it off lets them go on, through whatever faults are set by then.
   */
  holdRequests: boolean;
}

export interface VaultRequestRecord {
  readonly method: string;
  readonly path: string;
  readonly namespace?: string;
  readonly batchSize?: number;
  readonly at: number;
}

export interface VaultScope {
  namespace?: string;
  mount?: string;
}

export interface VaultEmulator {
  /** `http(s)://127.0.0.1:PORT` */
  readonly url: string;
  /** `http://127.0.0.1:PORT` of the plain listener when `plainListener` was asked for. */
  readonly plainUrl: string | undefined;
  readonly rootToken: string;
  /** The key `PUT /v1/sys/unseal` accepts. */
  readonly unsealKey: string;
  close(): Promise<void>;
  createKey(name: string, options?: VaultScope & { derived?: boolean }): void;
  rotateKey(name: string, options?: VaultScope): void;
  setMinDecryptionVersion(name: string, version: number, options?: VaultScope): void;
  deleteKey(name: string, options?: VaultScope): void;
  /**
   * Test hook: `GET transit/keys/:name` answers the key as it was when `version` was its latest (what a
   * performance standby that has not caught up serves), until called with `undefined`. Encrypt, decrypt
   * and `readKey` are unaffected; a deleted and re-created key starts without it.
   */
  serveStaleKeyReads(name: string, version: number | undefined, options?: VaultScope): void;
  /** Key metadata as `GET transit/keys/:name` shows it, or undefined. */
  readKey(name: string, options?: VaultScope): Record<string, unknown> | undefined;
  writePolicy(
    name: string,
    rules: ReadonlyArray<{ path: string; capabilities: ReadonlyArray<VaultCapability> }>,
    options?: { namespace?: string },
  ): void;
  createToken(options: {
    policies: string[];
    ttlSeconds?: number;
    renewable?: boolean;
    maxTtlSeconds?: number;
    namespace?: string;
    numUses?: number;
  }): string;
  revokeToken(token: string): void;
  configureAppRole(options: AppRoleOptions): void;
  configureKubernetesAuth(options: KubernetesAuthOptions): KubernetesIssuer;
  configureJwtAuth(options: JwtAuthOptions): void;
  configureCertAuth(options: CertAuthOptions): void;
  seal(): void;
  unseal(): void;
  /** `sys/health` then answers 429 (unless `standbyok`). */
  setStandby(standby: boolean): void;
  /** `sys/health` then answers 501 and everything else 503. */
  setInitialized(initialized: boolean): void;
  readonly faults: VaultFaults;
  /** Requests received so far, counted on arrival (held and faulted ones included); never reset. */
  readonly received: number;
  /** Never holds tokens or plaintext. */
  readonly requests: ReadonlyArray<VaultRequestRecord>;
  clearRequests(): void;
}

export interface KubernetesIssuer {
  /**
   * A service-account JWT the cluster vouches for in this mount's TokenReview (each call gives a new
   * one): a legacy Secret token, or with `projected` a bound token that expires.
   */
  issueServiceAccountToken(options: ServiceAccountSpec): string;
  /** Invalidates a JWT, as deleting the service account would. */
  revokeServiceAccountToken(jwt: string): void;
  /** False while Vault cannot reach the Kubernetes API: every TokenReview fails (403). Default true. */
  tokenReviewReachable: boolean;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** Go's net/http gives an answer a Content-Length when the handler wrote at most this much, else chunks it. */
const GO_BUFFER_BEFORE_CHUNKING = 2048;
const JSON_HEADERS = { 'cache-control': 'no-store', 'content-type': 'application/json' };

const FAULT_MESSAGES: Record<FaultStatus, (path: string) => string> = {
  500: () => 'internal error',
  502: () => 'error during forwarding RPC request',
  503: () => 'local node not active but active cluster node not found',
  429: (path) => `request path "${path}": rate limit quota exceeded`,
};

interface PendingFailure {
  remaining: number;
  readonly status: FaultStatus;
  readonly path: string | RegExp | undefined;
}

class Faults implements VaultFaults {
  latencyMs = 0;
  dropConnections = false;
  #refusing = false;

  constructor(
    private readonly failures: PendingFailure[],
    private readonly onRefuse: (refuse: boolean) => void,
    private readonly hold: RequestHold,
  ) {}

  get holdRequests(): boolean {
    return this.hold.held;
  }

  set holdRequests(value: boolean) {
    this.hold.held = value;
  }

  failNext(count: number, status: FaultStatus, options?: { path?: string | RegExp }): void {
    if (count > 0) this.failures.push({ remaining: count, status, path: options?.path });
  }

  get refuseConnections(): boolean {
    return this.#refusing;
  }

  set refuseConnections(value: boolean) {
    this.#refusing = value;
    this.onRefuse(value);
  }
}

class VaultEmulatorServer implements VaultEmulator {
  readonly #state: VaultState;
  readonly #handler: VaultHandler;
  readonly #server: Server;
  readonly #plainServer: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #requests: VaultRequestRecord[] = [];
  readonly #failures: PendingFailure[] = [];
  readonly #hold = new RequestHold();
  readonly #now: () => number;
  readonly #scheme: 'http' | 'https';
  readonly #maxRequestLog: number;
  #port = 0;
  #plainPort = 0;
  #refusing = false;
  #closed = false;
  readonly faults: Faults;

  constructor(options: VaultEmulatorOptions) {
    const clock = options.clock;
    this.#now = clock ? () => clock.now() : () => Date.now();
    this.#maxRequestLog = Math.max(1, options.maxRequestLog ?? 100_000);
    this.#state = new VaultState(this.#now, options.rootToken ?? `s.${base62(24)}`);
    this.#handler = new VaultHandler(this.#state, {
      batchPartialFailureStatus: options.batchPartialFailureStatus ?? 200,
      returnKeyVersion: options.returnKeyVersion ?? false,
      rotateStatus: options.rotateStatus ?? 204,
      kubernetesLoginFailureStatus: options.kubernetesLoginFailureStatus ?? 500,
    });
    const listener = (req: IncomingMessage, res: ServerResponse): void => {
      this.#onRequest(req, res).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          this.#send(res, { status: 500, body: { errors: [`1 error occurred:\n\t* ${String(error)}\n\n`] } });
        }
      });
    };
    if (options.tls) {
      const { key, cert, ca, requestClientCert } = options.tls;
      this.#server = createHttpsServer(
        {
          key,
          cert,
          ...(ca ? { ca } : {}),
          requestCert: true,
          rejectUnauthorized: requestClientCert ?? false,
        },
        listener,
      );
      this.#scheme = 'https';
    } else {
      this.#server = createHttpServer(listener);
      this.#scheme = 'http';
    }
    this.#plainServer = options.plainListener === true ? createHttpServer(listener) : undefined;
    for (const server of [this.#server, this.#plainServer]) {
      if (server === undefined) continue;
      // Go's server keeps idle connections far longer than node's 5 s default.
      server.keepAliveTimeout = 300_000;
      server.on('connection', (socket: Socket) => {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
      });
    }
    this.#server.on('error', () => {
      // A re-listen that fails (port taken) leaves the emulator refusing; nothing else to do.
    });
    this.faults = new Faults(this.#failures, (value) => this.#setRefusing(value), this.#hold);
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
    const plain = this.#plainServer;
    if (plain !== undefined) {
      await new Promise<void>((resolve, reject) => {
        plain.once('error', reject);
        plain.listen(0, '127.0.0.1', () => {
          plain.off('error', reject);
          resolve();
        });
      });
      this.#plainPort = (plain.address() as AddressInfo).port;
    }
  }

  get url(): string {
    return `${this.#scheme}://127.0.0.1:${this.#port}`;
  }

  get plainUrl(): string | undefined {
    return this.#plainServer === undefined ? undefined : `http://127.0.0.1:${this.#plainPort}`;
  }

  get rootToken(): string {
    return this.#state.rootToken.id;
  }

  get unsealKey(): string {
    return this.#state.unsealKey;
  }

  get received(): number {
    return this.#hold.received;
  }

  get requests(): ReadonlyArray<VaultRequestRecord> {
    return this.#requests;
  }

  clearRequests(): void {
    this.#requests.length = 0;
  }

  #destroySockets(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  #setRefusing(value: boolean): void {
    if (value === this.#refusing || this.#closed) return;
    this.#refusing = value;
    if (value) {
      this.#server.close();
      this.#destroySockets();
    } else {
      // Same port, so clients configured with the old URL reconnect.
      this.#server.listen(this.#port, '127.0.0.1');
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#hold.held = false;
    const listening = [this.#server, this.#plainServer].filter(
      (server): server is Server => server !== undefined && server.listening,
    );
    this.#destroySockets();
    await Promise.all(
      listening.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  }

  // ---- HTTP ----

  async #readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw new Error('request body too large');
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  #send(res: ServerResponse, response: VaultResponse): void {
    if (res.destroyed) return;
    const headers: Record<string, string> = { ...JSON_HEADERS, ...response.headers };
    if (response.body === undefined) {
      res.writeHead(response.status, headers);
      res.end();
      return;
    }
    const payload = Buffer.from(JSON.stringify(response.body));
    if (payload.length > GO_BUFFER_BEFORE_CHUNKING) {
      // Vault writes its JSON without a length, so Go's net/http sends an answer it cannot buffer whole
      // chunked: one chunk with the body, then the last chunk (a write before end() makes node do that).
      res.writeHead(response.status, headers);
      res.write(payload);
      res.end();
      return;
    }
    headers['content-length'] = String(payload.length);
    res.writeHead(response.status, headers);
    res.end(payload);
  }

  #takeFailure(rel: string): FaultStatus | undefined {
    for (let i = 0; i < this.#failures.length; i++) {
      const failure = this.#failures[i] as PendingFailure;
      const { path } = failure;
      const matches =
        path === undefined ||
        (typeof path === 'string' ? rel === path || rel.startsWith(path) : path.test(rel));
      if (!matches) continue;
      failure.remaining -= 1;
      if (failure.remaining <= 0) this.#failures.splice(i, 1);
      return failure.status;
    }
    return undefined;
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#hold.arrive();
    const raw = await this.#readBody(req);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headerNs = req.headers['x-vault-namespace'];
    const namespace = normalizeNamespace(Array.isArray(headerNs) ? headerNs[0] : headerNs);
    let body: Record<string, unknown> = {};
    let parseError: string | undefined;
    if (raw.length > 0) {
      try {
        const parsed: unknown = JSON.parse(raw.toString('utf8'));
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
          body = parsed as Record<string, unknown>;
        else if (parsed !== null) parseError = 'failed to parse JSON input: body is not a JSON object';
      } catch (error) {
        parseError = `failed to parse JSON input: ${(error as Error).message}`;
      }
    }
    const batch = body.batch_input;
    const method = (req.method ?? 'GET').toUpperCase();
    if (this.#requests.length >= this.#maxRequestLog) {
      this.#requests.splice(0, this.#requests.length - Math.floor(this.#maxRequestLog * 0.9));
    }
    this.#requests.push({
      method,
      path: url.pathname,
      ...(namespace !== '' ? { namespace } : {}),
      ...(Array.isArray(batch) ? { batchSize: batch.length } : {}),
      at: this.#now(),
    });

    if (this.#hold.held) await this.#hold.pass();
    const latency = this.faults.latencyMs;
    if (latency > 0) await delay(latency);
    if (this.faults.dropConnections) {
      req.socket.destroy();
      return;
    }
    const rel = url.pathname.replace(/^\/v1\//, '');
    const failure = this.#takeFailure(rel);
    if (failure !== undefined) {
      this.#send(res, {
        status: failure,
        body: { errors: [FAULT_MESSAGES[failure](rel)] },
        ...(failure === 429 ? { headers: { 'retry-after': '1' } } : {}),
      });
      return;
    }
    if (parseError !== undefined) {
      this.#send(res, { status: 400, body: { errors: [parseError] } });
      return;
    }
    const tokenHeader = req.headers['x-vault-token'];
    let token = Array.isArray(tokenHeader) ? tokenHeader[0] : tokenHeader;
    const authorization = req.headers.authorization;
    if (!token && authorization?.startsWith('Bearer ')) token = authorization.slice('Bearer '.length).trim();
    const response = this.#handler.handle({
      method,
      path: url.pathname,
      query: url.searchParams,
      namespace,
      token: token === '' ? undefined : token,
      body,
      connection: connectionOf(req.socket),
    });
    this.#send(res, response);
  }

  // ---- state, driven directly by tests ----

  createKey(name: string, options: VaultScope & { derived?: boolean } = {}): void {
    const keys = this.#state
      .namespace(options.namespace ?? '')
      .mount(normalizeMount(options.mount, 'transit'));
    if (keys.has(name)) throw new Error(`vault emulator: key ${name} exists already`);
    keys.set(name, new TransitKey(name, this.#state.nowSeconds(), options.derived ?? false));
  }

  rotateKey(name: string, options: VaultScope = {}): void {
    this.#state.findKey(name, options).rotate(this.#state.nowSeconds());
  }

  setMinDecryptionVersion(name: string, version: number, options: VaultScope = {}): void {
    const key = this.#state.findKey(name, options);
    if (!Number.isInteger(version) || version < 1 || version > key.latestVersion) {
      throw new Error(`vault emulator: min_decryption_version ${version} outside 1..${key.latestVersion}`);
    }
    key.minDecryptionVersion = version;
  }

  deleteKey(name: string, options: VaultScope = {}): void {
    const keys = this.#state
      .namespace(options.namespace ?? '')
      .transit.get(normalizeMount(options.mount, 'transit'));
    if (!keys?.delete(name)) throw new Error(`vault emulator: no transit key named ${name}`);
  }

  serveStaleKeyReads(name: string, version: number | undefined, options: VaultScope = {}): void {
    const key = this.#state.findKey(name, options);
    if (version !== undefined && (!Number.isInteger(version) || version < 1 || version > key.latestVersion)) {
      throw new Error(`vault emulator: stale version ${version} outside 1..${key.latestVersion}`);
    }
    key.staleReadVersion = version;
  }

  readKey(name: string, options: VaultScope = {}): Record<string, unknown> | undefined {
    const keys = this.#state
      .namespace(options.namespace ?? '')
      .transit.get(normalizeMount(options.mount, 'transit'));
    return keys?.get(name)?.describe();
  }

  writePolicy(
    name: string,
    rules: ReadonlyArray<{ path: string; capabilities: ReadonlyArray<VaultCapability> }>,
    options: { namespace?: string } = {},
  ): void {
    if (name === 'root') throw new Error('vault emulator: cannot update the root policy');
    this.#state.namespace(options.namespace ?? '').policies.set(
      name,
      rules.map((rule) => ({ path: rule.path.replace(/^\//, ''), capabilities: [...rule.capabilities] })),
    );
  }

  createToken(options: {
    policies: string[];
    ttlSeconds?: number;
    renewable?: boolean;
    maxTtlSeconds?: number;
    namespace?: string;
    numUses?: number;
  }): string {
    return this.#state.tokens.create({
      namespace: normalizeNamespace(options.namespace),
      policies: options.policies,
      ...(options.ttlSeconds !== undefined ? { ttlSeconds: options.ttlSeconds } : {}),
      ...(options.renewable !== undefined ? { renewable: options.renewable } : {}),
      ...(options.maxTtlSeconds !== undefined ? { explicitMaxTtlSeconds: options.maxTtlSeconds } : {}),
      ...(options.numUses !== undefined ? { numUses: options.numUses } : {}),
      path: 'auth/token/create',
      displayName: 'token',
    }).id;
  }

  revokeToken(token: string): void {
    this.#state.tokens.revoke(token);
  }

  configureAppRole(options: AppRoleOptions): void {
    const ns = this.#state.namespace(options.namespace ?? '');
    const mount = normalizeMount(options.mount, 'approle');
    this.#assertAuthMountFree(ns, mount, 'approle');
    let roles = ns.approle.get(mount);
    if (!roles) {
      roles = new Map();
      ns.approle.set(mount, roles);
    }
    roles.set(options.roleName, {
      roleName: options.roleName,
      roleId: options.roleId,
      secretId: options.secretId,
      policies: [...options.policies],
      tokenTtlSeconds: options.tokenTtlSeconds,
      tokenMaxTtlSeconds: options.tokenMaxTtlSeconds ?? 0,
      renewable: options.renewable ?? true,
    });
  }

  configureKubernetesAuth(options: KubernetesAuthOptions): KubernetesIssuer {
    const ns = this.#state.namespace(options.namespace ?? '');
    const mountPath = normalizeMount(options.mount, 'kubernetes');
    this.#assertAuthMountFree(ns, mountPath, 'kubernetes');
    let mount = ns.kubernetes.get(mountPath);
    if (!mount) {
      mount = { roles: new Map(), issued: new Map(), issuer: undefined, tokenReviewReachable: true };
      ns.kubernetes.set(mountPath, mount);
    }
    if (options.issuer !== undefined) mount.issuer = options.issuer;
    mount.roles.set(options.role, {
      role: options.role,
      boundServiceAccountNames: [...options.boundServiceAccountNames],
      boundNamespaces: [...options.boundNamespaces],
      policies: [...options.policies],
      tokenTtlSeconds: options.tokenTtlSeconds,
    });
    const state = this.#state;
    const target = mount;
    return {
      issueServiceAccountToken: (account) => state.issueServiceAccountJwt(target, account),
      revokeServiceAccountToken: (jwt) => {
        target.issued.delete(jwt);
      },
      get tokenReviewReachable() {
        return target.tokenReviewReachable;
      },
      set tokenReviewReachable(value: boolean) {
        target.tokenReviewReachable = value;
      },
    };
  }

  configureJwtAuth(options: JwtAuthOptions): void {
    const ns = this.#state.namespace(options.namespace ?? '');
    const mountPath = normalizeMount(options.mount, 'jwt');
    this.#assertAuthMountFree(ns, mountPath, 'jwt');
    const validationKeys = options.jwtValidationPubkeys.map((pem) => createPublicKey(pem));
    let mount = ns.jwt.get(mountPath);
    if (!mount) {
      mount = { roles: new Map(), validationKeys, boundIssuer: options.boundIssuer ?? '' };
      ns.jwt.set(mountPath, mount);
    } else {
      mount.validationKeys = validationKeys;
      mount.boundIssuer = options.boundIssuer ?? '';
    }
    mount.roles.set(options.role, {
      role: options.role,
      boundAudiences: [...(options.boundAudiences ?? [])],
      boundSubject: options.boundSubject ?? '',
      userClaim: options.userClaim ?? 'sub',
      policies: [...options.policies],
      tokenTtlSeconds: options.tokenTtlSeconds,
      tokenMaxTtlSeconds: options.tokenMaxTtlSeconds ?? 0,
    });
  }

  configureCertAuth(options: CertAuthOptions): void {
    const ns = this.#state.namespace(options.namespace ?? '');
    const mountPath = normalizeMount(options.mount, 'cert');
    this.#assertAuthMountFree(ns, mountPath, 'cert');
    const certificates = (
      options.certificate.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
    ).map((pem) => new X509Certificate(pem));
    if (certificates.length === 0) throw new Error('vault emulator: the cert role needs a PEM certificate');
    let mount = ns.cert.get(mountPath);
    if (!mount) {
      mount = { roles: new Map() };
      ns.cert.set(mountPath, mount);
    }
    mount.roles.set(options.name, {
      name: options.name,
      certificates,
      policies: [...options.policies],
      tokenTtlSeconds: options.tokenTtlSeconds,
      tokenMaxTtlSeconds: options.tokenMaxTtlSeconds ?? 0,
    });
  }

  /** One auth method per path (`token` is taken), as `vault auth enable -path=...` enforces. */
  #assertAuthMountFree(
    ns: NamespaceState,
    mount: string,
    kind: 'approle' | 'kubernetes' | 'jwt' | 'cert',
  ): void {
    const taken = ns.authMethodAt(mount);
    if ((taken !== undefined && taken !== kind) || mount === 'token')
      throw new Error(`vault emulator: auth mount ${mount} is used by another method`);
  }

  seal(): void {
    this.#state.sealed = true;
  }

  unseal(): void {
    this.#state.sealed = false;
  }

  setStandby(standby: boolean): void {
    this.#state.standby = standby;
  }

  setInitialized(initialized: boolean): void {
    this.#state.initialized = initialized;
  }
}

/** What the listener knows of a request's connection: TLS or not, and the certificates the client sent. */
function connectionOf(socket: Socket): VaultConnection {
  if (!(socket instanceof TLSSocket)) return { tls: false, peerCertificates: [] };
  const chain: X509Certificate[] = [];
  let current: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (current?.raw !== undefined && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push(new X509Certificate(current.raw));
    current = current.issuerCertificate;
  }
  return { tls: true, peerCertificates: chain };
}

/** Starts a Vault emulator on 127.0.0.1 with an ephemeral port. */
export async function startVaultEmulator(options: VaultEmulatorOptions = {}): Promise<VaultEmulator> {
  const emulator = new VaultEmulatorServer(options);
  await emulator.listen();
  return emulator;
}

/** A random id in Vault's uuid-like format, handy for AppRole role_id/secret_id in tests. */
export function randomVaultId(): string {
  const hex = randomBytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
