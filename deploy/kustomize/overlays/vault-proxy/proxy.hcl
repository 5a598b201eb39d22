# Vault Proxy beside Trousseau (daemonset-patch.yaml): Kubernetes auto-auth with the proxy's projected
# token, use_auto_auth_token for Trousseau's requests, a unix socket only the pod's containers share.
vault {
  address = "https://vault.example.com:8200"
  # With a private CA, put vault-ca.pem in the Secret "trousseau-credentials" and uncomment:
  # ca_cert = "/var/run/secrets/vault-proxy/vault-ca.pem"
}

auto_auth {
  method "kubernetes" {
    mount_path = "auth/kubernetes"
    config = {
      role       = "trousseau"
      token_path = "/var/run/secrets/vault-proxy/vault-token"
    }
  }
}

api_proxy {
  use_auto_auth_token = true
}

listener "unix" {
  address     = "/var/run/vault-proxy/proxy.sock"
  socket_mode = "0600"
  tls_disable = true
}
