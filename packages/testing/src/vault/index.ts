// @trousseau/testing/vault: a wire-faithful Vault (Transit, token/AppRole/Kubernetes auth, sys) emulator.
export {
  randomVaultId,
  startVaultEmulator,
  type FaultStatus,
  type KubernetesIssuer,
  type VaultEmulator,
  type VaultEmulatorOptions,
  type VaultFaults,
  type VaultRequestRecord,
  type VaultScope,
} from './emulator.js';
export type { VaultCapability, VaultPolicyRule } from './policy.js';
