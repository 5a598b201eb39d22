// The Transit secrets engine's HTTP paths (Vault's builtin/logical/transit): encrypt, decrypt (single and
// batch, with the per-item errors of either Vault generation), keys (list, read, create, delete),
// rotate and config. The cryptography and key versions are in ../transit.ts.
import type { NamespaceState, VaultState } from '../state.js';
import { decodeContext, TransitKey, TransitUserError } from '../transit.js';
import {
  envelope,
  errors,
  isWrite,
  noContent,
  ok,
  toBool,
  toInt,
  unsupported,
  type AuthorizedRequest,
  type VaultResponse,
} from '../wire.js';

interface TransitBehaviour {
  readonly batchPartialFailureStatus: 200 | 400;
  readonly returnKeyVersion: boolean;
  readonly rotateStatus: 204 | 200;
}

export class TransitBackend {
  constructor(
    private readonly state: VaultState,
    private readonly behaviour: TransitBehaviour,
  ) {}

  /** A path under one of the namespace's transit mounts (the longest that prefixes it); undefined otherwise. */
  handle(request: AuthorizedRequest, ns: NamespaceState): VaultResponse | undefined {
    const { rel, method, authorize } = request;
    let mount: string | undefined;
    for (const candidate of ns.transit.keys()) {
      if (rel.startsWith(`${candidate}/`) && (!mount || candidate.length > mount.length)) mount = candidate;
    }
    if (mount === undefined) return undefined;
    const keys = ns.transit.get(mount) as Map<string, TransitKey>;
    const sub = rel.slice(mount.length + 1);
    const parts = sub.split('/');
    const [area, name, extra] = parts;
    if (parts.length > 3 || !area) return request.noHandler();

    if ((area === 'encrypt' || area === 'decrypt') && name && !extra) {
      if (!isWrite(method)) return unsupported();
      if (area === 'encrypt') {
        const denied = authorize(keys.has(name) ? 'update' : 'create');
        return denied ?? this.#encrypt(keys, name, request.body);
      }
      return authorize('update') ?? this.#decrypt(keys, name, request.body);
    }
    if (area === 'keys' && !name) {
      if (method !== 'LIST') return request.noHandler();
      const denied = authorize('list');
      if (denied) return denied;
      if (keys.size === 0) return errors(404);
      return ok({ data: { keys: [...keys.keys()].sort() } });
    }
    if (area === 'keys' && name && !extra) {
      switch (method) {
        case 'GET': {
          const denied = authorize('read');
          if (denied) return denied;
          const key = keys.get(name);
          return key ? ok({ data: key.describe(key.staleReadVersion) }) : errors(404);
        }
        case 'POST':
        case 'PUT':
          return authorize('update') ?? this.#createKey(keys, name, request.body);
        case 'DELETE': {
          const denied = authorize('delete');
          if (denied) return denied;
          const key = keys.get(name);
          if (!key) return errors(400, 'could not delete key; not found');
          if (!key.deletionAllowed) return errors(400, 'deletion is not allowed for this key');
          keys.delete(name);
          return noContent;
        }
        default:
          return unsupported();
      }
    }
    if (area === 'keys' && name && extra === 'rotate') {
      if (!isWrite(method)) return unsupported();
      const denied = authorize('update');
      if (denied) return denied;
      const key = keys.get(name);
      if (!key) return errors(400, 'key not found');
      key.rotate(this.state.nowSeconds());
      return this.behaviour.rotateStatus === 200 ? ok({ data: key.describe() }) : noContent;
    }
    if (area === 'keys' && name && extra === 'config') {
      if (!isWrite(method)) return unsupported();
      return authorize('update') ?? this.#configKey(keys, name, request.body);
    }
    return request.noHandler();
  }

  #batchInput(body: Record<string, unknown>): Record<string, unknown>[] | VaultResponse | undefined {
    const raw = body.batch_input;
    if (raw === undefined || raw === null) return undefined;
    if (
      !Array.isArray(raw) ||
      raw.some((item) => item === null || typeof item !== 'object' || Array.isArray(item))
    ) {
      return errors(400, 'failed to parse batch input: invalid batch_input');
    }
    if (raw.length === 0) return errors(400, 'missing batch input to process');
    return raw as Record<string, unknown>[];
  }

  #batchResponse(results: Record<string, unknown>[]): VaultResponse {
    const anyError = results.some((r) => typeof r.error === 'string');
    const status = anyError ? this.behaviour.batchPartialFailureStatus : 200;
    return { status, body: envelope({ data: { batch_results: results } }) };
  }

  #encrypt(keys: Map<string, TransitKey>, name: string, body: Record<string, unknown>): VaultResponse {
    const batch = this.#batchInput(body);
    if (batch && !Array.isArray(batch)) return batch;
    let items: Record<string, unknown>[];
    if (batch) items = batch;
    else {
      if (!('plaintext' in body) || body.plaintext === null)
        return errors(400, 'missing plaintext to encrypt');
      items = [body];
    }
    const hasContext = (item: Record<string, unknown>): boolean =>
      typeof item.context === 'string' && item.context.length > 0;
    const contextSet = hasContext(items[0] as Record<string, unknown>);
    if (items.some((item) => hasContext(item) !== contextSet)) {
      return errors(400, 'context should be set either in all the request blocks or in none');
    }
    const keyVersion = toInt(body.key_version) ?? 0;
    let key = keys.get(name);
    if (!key) {
      // Upsert: Vault creates the key on encrypt when the token may `create` (checked by the caller).
      const type = typeof body.type === 'string' && body.type !== '' ? body.type : 'aes256-gcm96';
      if (type !== 'aes256-gcm96') return errors(400, `unknown key type ${type}`);
      key = new TransitKey(name, this.state.nowSeconds(), contextSet || toBool(body.derived) === true);
      keys.set(name, key);
    }
    const results = items.map((item): Record<string, unknown> => {
      try {
        const plaintext = typeof item.plaintext === 'string' ? item.plaintext : '';
        const context = decodeContext(item.context);
        const { ciphertext, version } = key.encrypt(plaintext, context, keyVersion);
        return this.behaviour.returnKeyVersion ? { ciphertext, key_version: version } : { ciphertext };
      } catch (error) {
        if (error instanceof TransitUserError) return { error: error.message };
        throw error;
      }
    });
    return this.#itemsResponse(results, batch !== undefined);
  }

  /** A batch answers with every item's result; a single item answers with its data, or its error as a 400. */
  #itemsResponse(results: Record<string, unknown>[], batch: boolean): VaultResponse {
    if (batch) return this.#batchResponse(results);
    const first = results[0] as Record<string, unknown>;
    if (typeof first.error === 'string') return errors(400, first.error);
    return ok({ data: first });
  }

  #decrypt(keys: Map<string, TransitKey>, name: string, body: Record<string, unknown>): VaultResponse {
    const batch = this.#batchInput(body);
    if (batch && !Array.isArray(batch)) return batch;
    let items: Record<string, unknown>[];
    if (batch) items = batch;
    else {
      if (typeof body.ciphertext !== 'string' || body.ciphertext === '') {
        return errors(400, 'missing ciphertext to decrypt');
      }
      items = [body];
    }
    const key = keys.get(name);
    if (!key) return errors(400, 'encryption key not found');
    const results = items.map((item): Record<string, unknown> => {
      try {
        const ciphertext = typeof item.ciphertext === 'string' ? item.ciphertext : '';
        return { plaintext: key.decrypt(ciphertext, decodeContext(item.context)) };
      } catch (error) {
        if (error instanceof TransitUserError) return { error: error.message };
        throw error;
      }
    });
    return this.#itemsResponse(results, batch !== undefined);
  }

  #createKey(keys: Map<string, TransitKey>, name: string, body: Record<string, unknown>): VaultResponse {
    const type = typeof body.type === 'string' && body.type !== '' ? body.type : 'aes256-gcm96';
    if (type !== 'aes256-gcm96') return errors(400, `unknown key type ${type}`);
    if (keys.has(name)) return noContent;
    const key = new TransitKey(name, this.state.nowSeconds(), toBool(body.derived) ?? false);
    key.exportable = toBool(body.exportable) ?? false;
    key.allowPlaintextBackup = toBool(body.allow_plaintext_backup) ?? false;
    keys.set(name, key);
    return noContent;
  }

  #configKey(keys: Map<string, TransitKey>, name: string, body: Record<string, unknown>): VaultResponse {
    const key = keys.get(name);
    if (!key) return errors(400, `no existing key named ${name} could be found`);
    const warnings: string[] = [];
    let minDecryption = key.minDecryptionVersion;
    let minEncryption = key.minEncryptionVersion;
    if (body.min_decryption_version !== undefined) {
      const value = toInt(body.min_decryption_version);
      if (value === undefined) return errors(400, 'invalid min_decryption_version');
      let next = value;
      if (next < 0) return errors(400, 'min decryption version cannot be negative');
      if (next === 0) {
        next = 1;
        warnings.push('since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1');
      }
      if (next !== key.minDecryptionVersion) {
        if (next > key.latestVersion) {
          return errors(
            400,
            `cannot set min decryption version of ${next}, latest key version is ${key.latestVersion}`,
          );
        }
        minDecryption = next;
      }
    }
    if (body.min_encryption_version !== undefined) {
      const value = toInt(body.min_encryption_version);
      if (value === undefined) return errors(400, 'invalid min_encryption_version');
      if (value < 0) return errors(400, 'min encryption version cannot be negative');
      if (value !== key.minEncryptionVersion) {
        if (value > key.latestVersion) {
          return errors(
            400,
            `cannot set min encryption version of ${value}, latest key version is ${key.latestVersion}`,
          );
        }
        minEncryption = value;
      }
    }
    if (minEncryption > 0 && minEncryption < minDecryption) {
      return errors(
        400,
        `cannot set min encryption/decryption values; min encryption version of ${minEncryption} must be greater than or equal to min decryption version of ${minDecryption}`,
      );
    }
    key.minDecryptionVersion = minDecryption;
    key.minEncryptionVersion = minEncryption;
    const deletionAllowed = toBool(body.deletion_allowed);
    if (deletionAllowed !== undefined) key.deletionAllowed = deletionAllowed;
    const exportable = toBool(body.exportable);
    if (exportable === true) key.exportable = true;
    if (exportable === false && key.exportable)
      return errors(400, 'export cannot be disabled on a key that already has it enabled');
    const backup = toBool(body.allow_plaintext_backup);
    if (backup === true) key.allowPlaintextBackup = true;
    if (warnings.length > 0) return ok({ warnings });
    return noContent;
  }
}
