// A stand-in for Vault Agent (or Vault Proxy) in API-proxy mode, in front of a Vault (the emulator): it
// logs in with its auto-auth method, keeps the token renewed, writes it to a file sink if asked, and
// proxies every request to Vault, adding its token when the request has none (`use_auto_auth_token =
// true`) or always (`"force"`, which drops the client's). Its listener is TCP on 127.0.0.1 or a unix
// socket, as a node-local agent's should be.
// Limits (not recorded from a real agent): token upkeep runs when a request arrives or `maintain()` is
// called, on the given clock, instead of on timers; no response caching; Vault's answers (errors
// included) pass through unchanged, and an unreachable Vault answers 500 `failed to get the response:
// ...`, as Vault Agent 1.4's proxy handler does.
import { writeFile } from 'node:fs/promises';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { readBody } from '../read-body.js';

/** Renew (or log in again) when this share of the token's TTL has passed, as the lifetime watcher does. */
const RENEW_AT = 2 / 3;

export interface VaultAgentOptions {
  /** The Vault the agent forwards to, `http(s)://host:port`. */
  readonly vault: string;
  /** PEM CA that signed Vault's certificate. */
  readonly vaultCa?: string | Buffer;
  /** `auto_auth`: a login at `auth/<mount>/login` with the body `credentials()` gives at that moment. */
  readonly autoAuth: {
    readonly mount: string;
    readonly credentials: () => Record<string, string> | Promise<Record<string, string>>;
    readonly namespace?: string;
  };
  /** `use_auto_auth_token`: true (default) adds the token to requests without one; `force` to all. */
  readonly useAutoAuthToken?: boolean | 'force';
  /** A unix socket to listen on instead of 127.0.0.1. */
  readonly socketPath?: string;
  /** `sink "file"`: the token is written here (mode 0640) after every login. */
  readonly sinkFile?: string;
  /** ms epoch for token lifetimes (default Date.now): share the Vault emulator's. */
  readonly clock?: { now(): number };
}

export interface VaultAgent {
  /** `http://127.0.0.1:PORT`, or `unix://<socketPath>` on a unix socket. */
  readonly url: string;
  /** Logins made so far. */
  readonly logins: number;
  /** Requests proxied so far: path, and whether the client sent a token of its own (never the token). */
  readonly requests: ReadonlyArray<{
    readonly method: string;
    readonly path: string;
    readonly clientToken: boolean;
  }>;
  /** Logs in again now (what the agent does when its token cannot be renewed). */
  reauthenticate(): Promise<void>;
  /** Renews or replaces the token when due (runs before every proxied request too). */
  maintain(): Promise<void>;
  close(): Promise<void>;
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

interface HeldToken {
  readonly token: string;
  readonly renewable: boolean;
  /** The TTL of the login, asked again at each renewal. */
  readonly increment: number;
  readonly renewAt: number;
  readonly expiresAt: number;
}

class Agent implements VaultAgent {
  readonly #options: VaultAgentOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #now: () => number;
  readonly requests: { method: string; path: string; clientToken: boolean }[] = [];
  #held: HeldToken | undefined;
  #logins = 0;
  #upkeep: Promise<void> | undefined;
  #url = '';

  constructor(options: VaultAgentOptions) {
    this.#options = options;
    const clock = options.clock;
    this.#now = clock === undefined ? () => Date.now() : () => clock.now();
    this.#server = createServer((req, res) => {
      this.#proxy(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  get url(): string {
    return this.#url;
  }

  get logins(): number {
    return this.#logins;
  }

  async listen(): Promise<void> {
    const socketPath = this.#options.socketPath;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      const done = (): void => {
        this.#server.off('error', reject);
        resolve();
      };
      if (socketPath === undefined) this.#server.listen(0, '127.0.0.1', done);
      else this.#server.listen(socketPath, done);
    });
    this.#url =
      socketPath === undefined
        ? `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`
        : `unix://${socketPath}`;
  }

  /** Sends one request to Vault. */
  #send(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
  ): Promise<Answer> {
    const url = new URL(path, this.#options.vault);
    const https = url.protocol === 'https:';
    const send = https ? httpsRequest : httpRequest;
    return new Promise<Answer>((resolve, reject) => {
      const req = send(url, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-length': String(body.length) },
        // A connection per request: a closed Vault is then refused, not a stale keep-alive reset.
        agent: false,
        ...(https && this.#options.vaultCa !== undefined ? { ca: this.#options.vaultCa } : {}),
      });
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const kept: Record<string, string> = {};
          for (const name of ['content-type', 'cache-control', 'retry-after']) {
            const value = res.headers[name];
            if (typeof value === 'string') kept[name] = value;
          }
          resolve({ status: res.statusCode ?? 0, headers: kept, body: Buffer.concat(chunks) });
        });
      });
      req.end(body);
    });
  }

  async #authRequest(path: string, token: string | undefined, body: unknown): Promise<Answer> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token !== undefined) headers['x-vault-token'] = token;
    const namespace = this.#options.autoAuth.namespace;
    if (namespace !== undefined) headers['x-vault-namespace'] = namespace;
    return this.#send('POST', `/v1/${path}`, headers, Buffer.from(JSON.stringify(body)));
  }

  /** Takes the token of a login or renewal answer; false when it carries none. */
  #adopt(answer: Answer, increment?: number): boolean {
    if (answer.status !== 200) return false;
    const auth = (JSON.parse(answer.body.toString('utf8')) as { auth?: Record<string, unknown> | null }).auth;
    const token = auth?.client_token;
    const ttl = auth?.lease_duration;
    if (typeof token !== 'string' || typeof ttl !== 'number' || (increment !== undefined && ttl <= 0)) {
      return false;
    }
    const now = this.#now();
    this.#held = {
      token,
      renewable: auth?.renewable === true,
      increment: increment ?? ttl,
      renewAt: ttl > 0 ? now + ttl * 1000 * RENEW_AT : Number.POSITIVE_INFINITY,
      expiresAt: ttl > 0 ? now + ttl * 1000 : Number.POSITIVE_INFINITY,
    };
    return true;
  }

  async reauthenticate(): Promise<void> {
    const { mount, credentials } = this.#options.autoAuth;
    const answer = await this.#authRequest(`auth/${mount}/login`, undefined, await credentials());
    this.#logins += 1;
    if (!this.#adopt(answer)) {
      this.#held = undefined;
      return;
    }
    const sink = this.#options.sinkFile;
    if (sink !== undefined && this.#held !== undefined) {
      await writeFile(sink, this.#held.token, { mode: 0o640 });
    }
  }

  maintain(): Promise<void> {
    this.#upkeep ??= this.#maintain().finally(() => {
      this.#upkeep = undefined;
    });
    return this.#upkeep;
  }

  async #maintain(): Promise<void> {
    const held = this.#held;
    const now = this.#now();
    if (held === undefined || now >= held.expiresAt) {
      await this.reauthenticate();
      return;
    }
    if (now < held.renewAt) return;
    // Renewed while Vault grants time (less and less near the max TTL); a failed renewal or one past the
    // max TTL ends the lifetime watcher, and auto-auth logs in again.
    if (held.renewable) {
      const renewed = await this.#authRequest('auth/token/renew-self', held.token, {
        increment: `${held.increment}s`,
      });
      if (this.#adopt(renewed, held.increment)) return;
    }
    await this.reauthenticate();
  }

  async #proxy(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, 32 * 1024 * 1024, () => new Error('request body too large'));
    const clientToken = req.headers['x-vault-token'];
    const path = req.url ?? '/';
    this.requests.push({
      method: req.method ?? 'GET',
      path: path.split('?')[0] ?? path,
      clientToken: typeof clientToken === 'string',
    });
    await this.maintain().catch(() => undefined);
    const headers: Record<string, string> = {};
    for (const name of ['content-type', 'x-vault-namespace', 'x-vault-request']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const force = this.#options.useAutoAuthToken === 'force';
    let token = !force && typeof clientToken === 'string' && clientToken !== '' ? clientToken : undefined;
    if (token === undefined && this.#options.useAutoAuthToken !== false) token = this.#held?.token;
    if (token !== undefined) headers['x-vault-token'] = token;
    let answer: Answer;
    try {
      answer = await this.#send(req.method ?? 'GET', path, headers, body.length > 0 ? body : undefined);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const url = new URL(path, this.#options.vault);
      const reason =
        code === 'ECONNREFUSED'
          ? `dial tcp ${url.host}: connect: connection refused`
          : String(code ?? 'error');
      const payload = JSON.stringify({
        errors: [`failed to get the response: ${req.method ?? 'GET'} "${url.href}": ${reason}`],
      });
      res.writeHead(500, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
      });
      res.end(payload);
      return;
    }
    res.writeHead(answer.status, { ...answer.headers, 'content-length': String(answer.body.length) });
    res.end(answer.body);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Starts the agent: it logs in first (as Vault Agent's auto-auth does before serving), then listens. */
export async function startVaultAgent(options: VaultAgentOptions): Promise<VaultAgent> {
  const agent = new Agent(options);
  await agent.reauthenticate();
  await agent.listen();
  return agent;
}
