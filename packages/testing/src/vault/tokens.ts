// Vault service tokens: ids, TTLs on an injectable clock, max TTL, renewal, use counts, revocation.
import { randomBytes, randomUUID } from 'node:crypto';
import { formatGoDuration } from './duration.js';

/** Vault's system max lease TTL (768h) applies when nothing smaller is set. */
const SYSTEM_MAX_TTL_SECONDS = 768 * 3600;

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function base62(length: number): string {
  const bytes = randomBytes(length * 2);
  let out = '';
  for (const byte of bytes) {
    if (byte >= 248) continue; // keep the distribution uniform
    out += BASE62[byte % 62];
    if (out.length === length) break;
  }
  return out.length === length ? out : out + base62(length - out.length);
}

export interface TokenEntry {
  readonly id: string;
  readonly accessor: string;
  readonly namespace: string;
  /** Sorted, with `default` unless root. */
  readonly policies: string[];
  readonly root: boolean;
  /** Seconds; 0 for a root token without TTL. */
  readonly creationTtl: number;
  /** Seconds the backend gives on a renewal without increment. */
  readonly renewTtl: number;
  readonly explicitMaxTtl: number;
  /** Seconds cap from the auth method (role max TTL), 0 when none. */
  readonly backendMaxTtl: number;
  readonly renewable: boolean;
  readonly issueTime: number;
  expireTime: number | undefined;
  lastRenewalTime: number | undefined;
  numUses: number;
  readonly path: string;
  readonly displayName: string;
  readonly meta: Record<string, string> | null;
  readonly orphan: boolean;
  readonly entityId: string;
  /** The auth method and mount a login token came from, and what it keeps for renewals; none otherwise. */
  readonly login: LoginOrigin | undefined;
}

/** Where a login token came from: its renewal goes back to that auth method, as in Vault. */
export interface LoginOrigin {
  readonly method: 'approle' | 'kubernetes' | 'jwt' | 'cert';
  readonly mount: string;
  readonly namespace: string;
  /** The role's policies as configured (renew-self answers with these, without `default` added). */
  readonly rolePolicies: readonly string[];
  /** What the method keeps beside the token (`InternalData` in Vault), e.g. the certificate's key ids. */
  readonly internal: Readonly<Record<string, string>>;
}

interface NewToken {
  namespace: string;
  policies: string[];
  ttlSeconds?: number;
  renewable?: boolean;
  explicitMaxTtlSeconds?: number;
  backendMaxTtlSeconds?: number;
  numUses?: number;
  path: string;
  displayName: string;
  meta?: Record<string, string> | null;
  orphan?: boolean;
  entityId?: string;
  login?: LoginOrigin;
  noDefaultPolicy?: boolean;
}

type RenewResult =
  { ok: true; ttlSeconds: number; warnings: string[] } | { ok: false; status: number; message: string };

export class TokenStore {
  readonly #tokens = new Map<string, TokenEntry>();
  readonly #namespaceIds = new Map<string, string>();

  constructor(private readonly now: () => number) {}

  #maxTtlSeconds(entry: Pick<TokenEntry, 'explicitMaxTtl' | 'backendMaxTtl'>): number {
    let max = SYSTEM_MAX_TTL_SECONDS;
    if (entry.backendMaxTtl > 0 && entry.backendMaxTtl < max) max = entry.backendMaxTtl;
    if (entry.explicitMaxTtl > 0 && entry.explicitMaxTtl < max) max = entry.explicitMaxTtl;
    return max;
  }

  #tokenId(namespace: string): string {
    if (namespace === '') return `s.${base62(24)}`;
    let nsId = this.#namespaceIds.get(namespace);
    if (!nsId) {
      nsId = base62(5);
      this.#namespaceIds.set(namespace, nsId);
    }
    return `s.${base62(24)}.${nsId}`;
  }

  createRoot(id: string): TokenEntry {
    const entry: TokenEntry = {
      id,
      accessor: base62(24),
      namespace: '',
      policies: ['root'],
      root: true,
      creationTtl: 0,
      renewTtl: 0,
      explicitMaxTtl: 0,
      backendMaxTtl: 0,
      renewable: false,
      issueTime: this.now(),
      expireTime: undefined,
      lastRenewalTime: undefined,
      numUses: 0,
      path: 'auth/token/root',
      displayName: 'root',
      meta: null,
      orphan: true,
      entityId: '',
      login: undefined,
    };
    this.#tokens.set(id, entry);
    return entry;
  }

  create(spec: NewToken): TokenEntry {
    const root = spec.policies.includes('root');
    const policies = [
      ...new Set([...spec.policies, ...(root || spec.noDefaultPolicy ? [] : ['default'])]),
    ].sort();
    const explicitMaxTtl = spec.explicitMaxTtlSeconds ?? 0;
    const backendMaxTtl = spec.backendMaxTtlSeconds ?? 0;
    const max = this.#maxTtlSeconds({ explicitMaxTtl, backendMaxTtl });
    let ttl = spec.ttlSeconds ?? (root ? 0 : SYSTEM_MAX_TTL_SECONDS);
    if (ttl > max) ttl = max;
    if (!root && ttl <= 0) ttl = max;
    const issueTime = this.now();
    const entry: TokenEntry = {
      id: this.#tokenId(spec.namespace),
      accessor: base62(24),
      namespace: spec.namespace,
      policies,
      root,
      creationTtl: ttl,
      renewTtl: ttl,
      explicitMaxTtl,
      backendMaxTtl,
      renewable: ttl > 0 && (spec.renewable ?? true),
      issueTime,
      expireTime: ttl > 0 ? issueTime + ttl * 1000 : undefined,
      lastRenewalTime: undefined,
      numUses: spec.numUses ?? 0,
      path: spec.path,
      displayName: spec.displayName,
      meta: spec.meta ?? null,
      orphan: spec.orphan ?? false,
      entityId: spec.entityId ?? (spec.login === undefined ? '' : randomUUID()),
      login: spec.login,
    };
    this.#tokens.set(entry.id, entry);
    return entry;
  }

  /** The live entry, or undefined when unknown, revoked or expired (expired ones are revoked now). */
  lookup(id: string): TokenEntry | undefined {
    const entry = this.#tokens.get(id);
    if (!entry) return undefined;
    if (entry.expireTime !== undefined && entry.expireTime <= this.now()) {
      this.#tokens.delete(id);
      return undefined;
    }
    return entry;
  }

  /** Counts one use; a token with `num_uses` is revoked after its last use. */
  use(entry: TokenEntry): void {
    if (entry.numUses <= 0) return;
    entry.numUses -= 1;
    if (entry.numUses === 0) this.#tokens.delete(entry.id);
  }

  revoke(id: string): void {
    this.#tokens.delete(id);
  }

  remainingTtlSeconds(entry: TokenEntry): number {
    if (entry.expireTime === undefined) return 0;
    return Math.max(0, Math.round((entry.expireTime - this.now()) / 1000));
  }

  /** Vault's `CalculateTTL` for a token renewal, applied to the entry. */
  renew(entry: TokenEntry, incrementSeconds: number): RenewResult {
    if (entry.expireTime === undefined) return { ok: false, status: 400, message: 'lease not found' };
    if (!entry.renewable) return { ok: false, status: 400, message: 'lease is not renewable' };
    const now = this.now();
    const maxTtl = this.#maxTtlSeconds(entry);
    let ttlMs = (incrementSeconds > 0 ? incrementSeconds : entry.renewTtl) * 1000;
    const maxValidMs = entry.issueTime + maxTtl * 1000 - now;
    if (maxValidMs < 0) return { ok: false, status: 500, message: 'past the max TTL, cannot renew' };
    const warnings: string[] = [];
    if (maxValidMs - ttlMs < 0) {
      warnings.push(
        `TTL of "${formatGoDuration(ttlMs)}" exceeded the effective max_ttl of "${formatGoDuration(maxValidMs)}"; TTL value is capped accordingly`,
      );
      ttlMs = maxValidMs;
    }
    entry.expireTime = now + ttlMs;
    entry.lastRenewalTime = now;
    return { ok: true, ttlSeconds: Math.floor(ttlMs / 1000), warnings };
  }
}
