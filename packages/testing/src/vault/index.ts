// @trousseau/testing/vault: a wire-faithful Vault emulator (Transit; token, AppRole, Kubernetes, JWT and
// TLS certificate auth; sys), held to the Vault 1.4.3 recordings in fixtures/vault-1.4.3 by
// test/vault/replay.test.ts, and a Vault Agent stand-in in front of it.
// Known limits: node's HTTP parser cannot receive the LIST verb (GET ?list=true is served instead); only
// aes256-gcm96 keys (derived allowed, convergent not); namespaces come from X-Vault-Namespace only (not a
// path prefix); `PUT sys/unseal` takes `unsealKey`; Kubernetes service-account JWTs are the ones
// `issueServiceAccountToken` made (HMAC-signed: the emulator stands in for the cluster's TokenReview);
// JWT auth takes static keys only (no JWKS or OIDC discovery); cert auth checks the CA chain, validity and
// key usage of the client certificate (no CRLs, no allowed_* name constraints).
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
export { createJwtSigner, type JwtSigner } from './jwt-signer.js';
export type { VaultCapability, VaultPolicyRule } from './policy.js';
export { startVaultAgent, type VaultAgent, type VaultAgentOptions } from './agent.js';
export { startVaultForProvider } from './provider-config.js';
