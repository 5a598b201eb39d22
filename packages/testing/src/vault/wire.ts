// Vault's HTTP wire shapes, shared by every backend of the emulator: the request as the router hands it
// on, the answer envelope, `{"errors": [...]}`, and the loose value parsing Vault's field schemas do.
import { randomUUID, type X509Certificate } from 'node:crypto';
import type { VaultCapability } from './policy.js';
import type { TokenEntry } from './tokens.js';

/** What the listener knows of the connection a request came on. */
export interface VaultConnection {
  /** False on a plain HTTP listener. */
  readonly tls: boolean;
  /** The certificates the client sent, leaf first (the listener asks for them but checks none). */
  readonly peerCertificates: readonly X509Certificate[];
}

export interface VaultRequest {
  readonly method: string;
  /** URL path, e.g. `/v1/transit/encrypt/k8s`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly namespace: string;
  readonly token: string | undefined;
  readonly body: Record<string, unknown>;
  readonly connection: VaultConnection;
}

export interface VaultResponse {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

/** A request that passed the token check, as a backend mounted behind it sees it. */
export interface AuthorizedRequest {
  /** `GET ?list=true` is `LIST`. */
  readonly method: string;
  /** The path after `/v1/`, without a trailing slash. */
  readonly rel: string;
  readonly body: Record<string, unknown>;
  readonly token: TokenEntry;
  /** The request's namespace, normalised (`''` for root). */
  readonly namespace: string;
  readonly connection: VaultConnection;
  /** Undefined when the token's ACL grants `capability` on the path (the use is counted), else the 403. */
  readonly authorize: (capability: VaultCapability, sudo?: boolean) => VaultResponse | undefined;
  /** What Vault answers for a path no backend serves: the ACL's 403 first, else 404. */
  readonly noHandler: () => VaultResponse;
}

export const PERMISSION_DENIED = 'permission denied';
/** What Vault answers when a valid token lacks the capability (a multierror, as recorded). */
export const ACL_DENIED = '1 error occurred:\n\t* permission denied\n\n';

export const errors = (status: number, ...messages: string[]): VaultResponse => ({
  status,
  body: { errors: messages },
});

export function envelope(parts: {
  data?: unknown;
  auth?: unknown;
  warnings?: string[];
}): Record<string, unknown> {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: parts.data ?? null,
    wrap_info: null,
    warnings: parts.warnings && parts.warnings.length > 0 ? parts.warnings : null,
    auth: parts.auth ?? null,
  };
}

export const ok = (parts: { data?: unknown; auth?: unknown; warnings?: string[] }): VaultResponse => ({
  status: 200,
  body: envelope(parts),
});

export const noContent: VaultResponse = { status: 204 };

/** A method the path does not take. */
export const unsupported = (): VaultResponse =>
  errors(405, '1 error occurred:\n\t* unsupported operation\n\n');

export function sortKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function isWrite(method: string): boolean {
  return method === 'POST' || method === 'PUT';
}

export function toInt(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

export function toBool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  return undefined;
}

export function toStringList(value: unknown): string[] | undefined {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === 'string') {
    return value
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v.length > 0);
  }
  return undefined;
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
