// @trousseau/testing/vault: a wire-faithful Vault (Transit, token/AppRole/Kubernetes auth, sys) emulator,
// held to the Vault 1.4.3 recordings in shared/fixtures/vault-1.4.3 by test/vault/replay.test.ts.
// Known limits: node's HTTP parser cannot receive the LIST verb (GET ?list=true is served instead); only
// aes256-gcm96 keys (derived allowed, convergent not); namespaces come from X-Vault-Namespace only (not a
// path prefix); `PUT sys/unseal` takes `unsealKey`; Kubernetes service-account JWTs are the ones
// `issueServiceAccountToken` made (HMAC-signed: the emulator stands in for the cluster's TokenReview).
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
