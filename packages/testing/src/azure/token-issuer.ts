import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { KEY_VAULT_RESOURCE } from './wire.js';

/** Why a presented token is refused. */
type TokenCheck = { ok: true } | { ok: false; reason: 'unknown' | 'expired' | 'revoked' };

/**
 * The emulator's stand-in for Microsoft Entra ID: issues JWT-shaped access tokens for the Key Vault
 * audience (HMAC-signed with a key of this process) and remembers which ones are still good.
 */
export class TokenIssuer {
  readonly #signingKey = randomBytes(32);
  readonly #live = new Map<string, number>();
  readonly #revoked = new Set<string>();
  readonly tenantId: string;
  lifetimeSeconds: number;

  constructor(tenantId: string, lifetimeSeconds: number) {
    this.tenantId = tenantId;
    this.lifetimeSeconds = lifetimeSeconds;
  }

  issue(clientId = 'emulator-client'): { token: string; expiresIn: number } {
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = this.lifetimeSeconds;
    const header = { typ: 'JWT', alg: 'HS256' };
    const payload = {
      aud: KEY_VAULT_RESOURCE,
      iss: `https://sts.windows.net/${this.tenantId}/`,
      iat: now,
      nbf: now,
      exp: now + expiresIn,
      appid: clientId,
      tid: this.tenantId,
      uti: randomUUID(),
      ver: '1.0',
    };
    const body = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`;
    const signature = createHmac('sha256', this.#signingKey).update(body).digest('base64url');
    const token = `${body}.${signature}`;
    this.#live.set(token, (now + expiresIn) * 1000);
    return { token, expiresIn };
  }

  check(token: string): TokenCheck {
    if (this.#revoked.has(token)) return { ok: false, reason: 'revoked' };
    const expiresAt = this.#live.get(token);
    if (expiresAt === undefined || !this.#signatureValid(token)) return { ok: false, reason: 'unknown' };
    if (Date.now() >= expiresAt) return { ok: false, reason: 'expired' };
    return { ok: true };
  }

  /** Every token issued so far stops working (as after a credential reset or a CAE revocation). */
  revokeAll(): void {
    for (const token of this.#live.keys()) this.#revoked.add(token);
    this.#live.clear();
  }

  #signatureValid(token: string): boolean {
    const last = token.lastIndexOf('.');
    if (last < 0) return false;
    const expected = createHmac('sha256', this.#signingKey).update(token.slice(0, last)).digest();
    const given = Buffer.from(token.slice(last + 1), 'base64url');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
