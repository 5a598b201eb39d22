// Helpers for the Vault emulator tests: raw HTTP calls (what any Vault client sends) and a manual clock.
import type { VaultEmulator } from '../../src/vault/index.js';

export interface VaultReply {
  status: number;
  body: Record<string, unknown> | null;
  headers: Headers;
}

export async function call(
  vault: Pick<VaultEmulator, 'url'>,
  method: string,
  path: string,
  options: { token?: string; namespace?: string; body?: unknown } = {},
): Promise<VaultReply> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers['X-Vault-Token'] = options.token;
  if (options.namespace !== undefined) headers['X-Vault-Namespace'] = options.namespace;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${vault.url}/v1/${path}`, {
    method,
    headers,
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text === '' ? null : (JSON.parse(text) as Record<string, unknown>),
    headers: response.headers,
  };
}

/** `data` of a successful reply. */
export function data(reply: VaultReply): Record<string, unknown> {
  return (reply.body as { data: Record<string, unknown> }).data;
}

/** `auth` of a successful login or renewal. */
export function auth(reply: VaultReply): Record<string, unknown> {
  return (reply.body as { auth: Record<string, unknown> }).auth;
}

export function errorsOf(reply: VaultReply): unknown {
  return (reply.body as { errors?: unknown } | null)?.errors;
}

export class ManualClock {
  constructor(public ms = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.ms;
  }
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

export const b64 = (text: string): string => Buffer.from(text).toString('base64');
