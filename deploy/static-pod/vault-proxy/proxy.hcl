# /etc/vault-proxy/proxy.hcl: Vault Proxy beside Trousseau (trousseau.yaml beside this file). It logs in
# with AppRole, renews its token and logs in again when it must, and adds the token to every request that
# comes through its unix socket. For HCP Vault Dedicated, add `namespace = "admin"` to the method.
vault {
  address = "https://vault.example.com:8200"
  ca_cert = "/etc/vault-proxy/vault-ca.pem"
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path   = "/etc/vault-proxy/role-id"
      secret_id_file_path = "/etc/vault-proxy/secret-id"
      # The files are on a read-only host path: keep them (by default the secret id file is deleted).
      remove_secret_id_file_after_reading = false
    }
  }
}

api_proxy {
  # Requests without a token (all of Trousseau's) get the auto-auth token.
  use_auto_auth_token = true
}

# A unix socket only the pod's two containers share; never a TCP listener on the host network.
listener "unix" {
  address     = "/var/run/vault-proxy/proxy.sock"
  socket_mode = "0600"
  tls_disable = true
}
