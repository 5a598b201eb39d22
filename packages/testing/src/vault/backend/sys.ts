// sys/: health, seal status, unseal (unauthenticated, answered whatever the seal) and seal (sudo).
// Vault keeps these in vault/logical_system.go and http/sys_*.go.
import type { VaultState } from '../state.js';
import {
  errors,
  isWrite,
  noContent,
  toBool,
  toInt,
  unsupported,
  type AuthorizedRequest,
  type VaultRequest,
  type VaultResponse,
} from '../wire.js';

export class SysBackend {
  constructor(private readonly state: VaultState) {}

  /** The endpoints Vault serves without a token and while sealed; undefined for any other path. */
  unauthenticated(request: VaultRequest, method: string, rel: string): VaultResponse | undefined {
    if (rel === 'sys/health') return this.#health(request);
    if (rel === 'sys/seal-status' && method === 'GET') return { status: 200, body: this.#sealStatus() };
    if (rel === 'sys/unseal' && isWrite(method)) return this.#unseal(request);
    return undefined;
  }

  /** The authenticated sys endpoints the emulator has; undefined for any other path. */
  handle(request: AuthorizedRequest): VaultResponse | undefined {
    if (request.rel !== 'sys/seal') return undefined;
    if (!isWrite(request.method)) return unsupported();
    const denied = request.authorize('update', true);
    if (denied) return denied;
    this.state.sealed = true;
    return noContent;
  }

  #health(request: VaultRequest): VaultResponse {
    const q = request.query;
    const code = (param: string, fallback: number): number => {
      const value = toInt(q.get(param));
      return value === undefined ? fallback : value;
    };
    const state = this.state;
    let status: number;
    if (!state.initialized) status = code('uninitcode', 501);
    else if (state.sealed) status = code('sealedcode', 503);
    else if (state.standby)
      status = toBool(q.get('standbyok')) ? code('activecode', 200) : code('standbycode', 429);
    else status = code('activecode', 200);
    const body: Record<string, unknown> = {
      initialized: state.initialized,
      sealed: state.sealed || !state.initialized,
      standby: state.standby || state.sealed || !state.initialized,
      performance_standby: false,
      replication_performance_mode: state.sealed || !state.initialized ? 'unknown' : 'disabled',
      replication_dr_mode: state.sealed || !state.initialized ? 'unknown' : 'disabled',
      server_time_utc: state.nowSeconds(),
      version: '1.4.3',
    };
    if (!state.sealed && state.initialized) {
      body.cluster_name = state.clusterName;
      body.cluster_id = state.clusterId;
    }
    if (request.method === 'HEAD') return { status };
    return { status, body };
  }

  #sealStatus(): Record<string, unknown> {
    const state = this.state;
    const body: Record<string, unknown> = {
      type: 'shamir',
      initialized: state.initialized,
      sealed: state.sealed || !state.initialized,
      t: 1,
      n: 1,
      progress: 0,
      nonce: '',
      version: '1.4.3',
      migration: false,
    };
    if (!state.sealed) {
      body.cluster_name = state.clusterName;
      body.cluster_id = state.clusterId;
    }
    body.recovery_seal = false;
    body.storage_type = 'inmem';
    return body;
  }

  #unseal(request: VaultRequest): VaultResponse {
    const key = request.body.key;
    const reset = toBool(request.body.reset) ?? false;
    if (!reset && (typeof key !== 'string' || key === '')) {
      return errors(400, "'key' must be specified in request body as JSON, or 'reset' set to true");
    }
    if (this.state.sealed && !reset) {
      if (key !== this.state.unsealKey) return errors(400, 'cipher: message authentication failed');
      this.state.sealed = false;
    }
    return { status: 200, body: this.#sealStatus() };
  }
}
