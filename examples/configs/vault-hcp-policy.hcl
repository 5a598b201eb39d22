# The policy for Trousseau on HCP Vault Dedicated (vault-hcp.yaml). Write it in the namespace that holds
# the transit mount; paths are relative to that namespace:
#   VAULT_NAMESPACE=admin vault policy write trousseau-kms vault-hcp-policy.hcl
# Trousseau never needs rotate, config, export, backup or delete: keep those for operators.
path "transit/encrypt/kube-secrets" {
  capabilities = ["update"]
}
path "transit/decrypt/kube-secrets" {
  capabilities = ["update"]
}
path "transit/keys/kube-secrets" {
  capabilities = ["read"]
}
# Part of the built-in `default` policy; needed when `default` is not attached:
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
