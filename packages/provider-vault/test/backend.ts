// The Vault the provider suites run against: a real Vault when VAULT_ADDR and VAULT_TOKEN are set (the
// suite enables transit and makes its own keys, policies and tokens there), the emulator otherwise.
import { randomBytes } from 'node:crypto';
import { startVaultEmulator, type VaultEmulator, type VaultEmulatorOptions } from '@trousseau/testing/vault';
import nodeVault from 'node-vault';

export type Capability = 'create' | 'read' | 'update' | 'delete' | 'list' | 'sudo' | 'deny';
export interface PolicyRule {
  readonly path: string;
  readonly capabilities: readonly Capability[];
}

/** What the provider tests need of a Vault, whichever it is. */
export interface VaultBackend {
  readonly kind: 'emulator' | 'real';
  readonly url: string;
  readonly transitMount: string;
  /** Set only for the emulator: faults, seal, clock-driven TTLs, the request log. */
  readonly emulator: VaultEmulator | undefined;
  createKey(name: string): Promise<void>;
  rotateKey(name: string): Promise<void>;
  setMinDecryptionVersion(name: string, version: number): Promise<void>;
  writePolicy(name: string, rules: readonly PolicyRule[]): Promise<void>;
  createToken(options: { policies: string[]; ttlSeconds?: number; renewable?: boolean }): Promise<string>;
  revokeToken(token: string): Promise<void>;
  /** Enables AppRole at `mount` if needed and makes a role; returns its role_id and a secret_id. */
  configureAppRole(options: {
    mount: string;
    roleName: string;
    policies: string[];
    tokenTtlSeconds: number;
  }): Promise<{ roleId: string; secretId: string }>;
  close(): Promise<void>;
}

export const realVaultAddress = process.env.VAULT_ADDR;
export const realVaultToken = process.env.VAULT_TOKEN;
export const usingRealVault =
  realVaultAddress !== undefined &&
  realVaultAddress !== '' &&
  realVaultToken !== undefined &&
  realVaultToken !== '';

/** Unique names so runs against one real Vault do not collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

function hcl(rules: readonly PolicyRule[]): string {
  return rules
    .map((rule) => `path "${rule.path}" {\n  capabilities = ${JSON.stringify(rule.capabilities)}\n}\n`)
    .join('\n');
}

class EmulatorBackend implements VaultBackend {
  readonly kind = 'emulator' as const;
  readonly transitMount = 'transit';
  readonly emulator: VaultEmulator;
  constructor(emulator: VaultEmulator) {
    this.emulator = emulator;
  }
  get url(): string {
    return this.emulator.url;
  }
  async createKey(name: string): Promise<void> {
    this.emulator.createKey(name);
  }
  async rotateKey(name: string): Promise<void> {
    this.emulator.rotateKey(name);
  }
  async setMinDecryptionVersion(name: string, version: number): Promise<void> {
    this.emulator.setMinDecryptionVersion(name, version);
  }
  async writePolicy(name: string, rules: readonly PolicyRule[]): Promise<void> {
    this.emulator.writePolicy(name, rules);
  }
  async createToken(options: {
    policies: string[];
    ttlSeconds?: number;
    renewable?: boolean;
  }): Promise<string> {
    return this.emulator.createToken(options);
  }
  async revokeToken(token: string): Promise<void> {
    this.emulator.revokeToken(token);
  }
  async configureAppRole(options: {
    mount: string;
    roleName: string;
    policies: string[];
    tokenTtlSeconds: number;
  }): Promise<{ roleId: string; secretId: string }> {
    const roleId = randomBytes(16).toString('hex');
    const secretId = randomBytes(16).toString('hex');
    this.emulator.configureAppRole({ ...options, roleId, secretId });
    return { roleId, secretId };
  }
  async close(): Promise<void> {
    await this.emulator.close();
  }
}

interface AdminClient {
  read(path: string): Promise<unknown>;
  write(path: string, data: unknown): Promise<unknown>;
}

/** A real Vault, administered with node-vault and the given (admin) token. */
class RealBackend implements VaultBackend {
  readonly kind = 'real' as const;
  readonly transitMount: string;
  readonly emulator = undefined;
  readonly url: string;
  readonly #admin: AdminClient;

  private constructor(url: string, admin: AdminClient, transitMount: string) {
    this.url = url;
    this.#admin = admin;
    this.transitMount = transitMount;
  }

  static async open(url: string, token: string): Promise<RealBackend> {
    const admin = (nodeVault as unknown as (config: Record<string, unknown>) => AdminClient)({
      endpoint: url,
      token,
    });
    const mount = 'transit';
    try {
      await admin.write(`sys/mounts/${mount}`, { type: 'transit' });
    } catch (error) {
      if (!/already in use|existing mount/i.test(String((error as Error).message))) throw error;
    }
    return new RealBackend(url, admin, mount);
  }

  async createKey(name: string): Promise<void> {
    await this.#admin.write(`${this.transitMount}/keys/${name}`, { type: 'aes256-gcm96' });
  }
  async rotateKey(name: string): Promise<void> {
    await this.#admin.write(`${this.transitMount}/keys/${name}/rotate`, {});
  }
  async setMinDecryptionVersion(name: string, version: number): Promise<void> {
    await this.#admin.write(`${this.transitMount}/keys/${name}/config`, { min_decryption_version: version });
  }
  async writePolicy(name: string, rules: readonly PolicyRule[]): Promise<void> {
    await this.#admin.write(`sys/policies/acl/${name}`, {
      policy: rules.length === 0 ? 'path "trousseau-nothing" { capabilities = ["deny"] }' : hcl(rules),
    });
  }
  async createToken(options: {
    policies: string[];
    ttlSeconds?: number;
    renewable?: boolean;
  }): Promise<string> {
    const body = (await this.#admin.write('auth/token/create', {
      policies: options.policies,
      ...(options.ttlSeconds === undefined ? {} : { ttl: `${options.ttlSeconds}s` }),
      renewable: options.renewable ?? true,
    })) as { auth: { client_token: string } };
    return body.auth.client_token;
  }
  async revokeToken(token: string): Promise<void> {
    await this.#admin.write('auth/token/revoke', { token });
  }
  async configureAppRole(options: {
    mount: string;
    roleName: string;
    policies: string[];
    tokenTtlSeconds: number;
  }): Promise<{ roleId: string; secretId: string }> {
    try {
      await this.#admin.write(`sys/auth/${options.mount}`, { type: 'approle' });
    } catch (error) {
      if (!/already in use|existing mount/i.test(String((error as Error).message))) throw error;
    }
    await this.#admin.write(`auth/${options.mount}/role/${options.roleName}`, {
      token_policies: options.policies,
      token_ttl: `${options.tokenTtlSeconds}s`,
    });
    const role = (await this.#admin.read(`auth/${options.mount}/role/${options.roleName}/role-id`)) as {
      data: { role_id: string };
    };
    const secret = (await this.#admin.write(
      `auth/${options.mount}/role/${options.roleName}/secret-id`,
      {},
    )) as {
      data: { secret_id: string };
    };
    return { roleId: role.data.role_id, secretId: secret.data.secret_id };
  }
  async close(): Promise<void> {}
}

let announced = false;

/** Starts the backend for one suite (emulator options apply only to the emulator). */
export async function startBackend(options: VaultEmulatorOptions = {}): Promise<VaultBackend> {
  if (!announced) {
    announced = true;
    console.log(
      usingRealVault
        ? `# vault provider suites: against the REAL Vault at ${realVaultAddress} (VAULT_ADDR/VAULT_TOKEN set)`
        : '# vault provider suites: against the Vault emulator (set VAULT_ADDR and VAULT_TOKEN to use a real Vault)',
    );
  }
  if (usingRealVault) return RealBackend.open(realVaultAddress ?? '', realVaultToken ?? '');
  return new EmulatorBackend(await startVaultEmulator(options));
}

/** The least-privilege policy of the provider for `key` (what docs/providers/vault.md recommends). */
export function providerPolicy(mount: string, key: string): PolicyRule[] {
  return [
    { path: `${mount}/encrypt/${key}`, capabilities: ['update'] },
    { path: `${mount}/decrypt/${key}`, capabilities: ['update'] },
    { path: `${mount}/keys/${key}`, capabilities: ['read'] },
  ];
}
