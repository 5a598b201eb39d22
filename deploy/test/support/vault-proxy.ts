import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { TrousseauConfig } from '@trousseau/core';
import { trousseauContainer } from './pod-checks.js';

/** The `listener "<type>" { ... }` blocks and `key = value` settings of a Vault Agent/Proxy config. */
interface ProxyHcl {
  readonly listeners: readonly { readonly type: string; readonly body: string }[];
  /** Every quoted string value whose key names a file (`*_path`, `*_file_path`, `ca_cert`, ...). */
  readonly files: readonly string[];
  readonly text: string;
}

/** Reads what the checks need from HCL: blocks by regex, enough for the shapes Vault's docs use. */
export function readProxyHcl(text: string): ProxyHcl {
  const listeners = [...text.matchAll(/^listener\s+"([a-z]+)"\s*\{([^}]*)\}/gm)].map(
    ([, type = '', body = '']) => ({
      type,
      body,
    }),
  );
  const files = [
    ...text.matchAll(/^\s*(?:[a-z_]*_path|ca_cert|ca_path|client_cert|client_key)\s*=\s*"([^"]+)"/gm),
  ]
    .map(([, path = '']) => path)
    .filter((path) => path.startsWith('/') && !/^auth\//.test(path));
  return { listeners, files, text };
}

function setting(body: string, key: string): string | undefined {
  return new RegExp(`^\\s*${key}\\s*=\\s*("?)([^"\\n]*)\\1\\s*$`, 'm').exec(body)?.[2];
}

function mountFor(container: IContainer, path: string): string | undefined {
  return container.volumeMounts?.find(
    (mount) => path === mount.mountPath || path.startsWith(`${mount.mountPath}/`),
  )?.name;
}

/**
 * What a pod running Vault Proxy (or Agent) beside Trousseau must get right: Trousseau's address is the
 * proxy's unix socket, in a pod-private emptyDir both containers mount; the proxy adds its token
 * (use_auto_auth_token) and listens on no TCP port; every file the proxy reads is mounted in the proxy
 * only, so Trousseau holds no credential.
 */
export function checkVaultProxyPod(spec: IPodSpec, config: TrousseauConfig, hcl: ProxyHcl): void {
  const trousseau = trousseauContainer(spec);
  const proxy = spec.containers.find((container) => container.name === 'vault-proxy');
  assert.ok(proxy, 'a container named vault-proxy');

  const provider = config.providers.find((entry) => entry.type === 'vault');
  assert.ok(provider, 'a vault provider');
  assert.deepEqual(provider.config['auth'], { method: 'agent' }, 'Trousseau holds no credential');
  const address = String(provider.config['address']);
  const socket = /^unix:\/\/(\/.+)$/.exec(address)?.[1];
  assert.ok(socket, `the address ${address} is the proxy's unix socket`);

  // The socket's directory: one emptyDir, mounted by both containers.
  const volumeName = mountFor(trousseau, socket);
  assert.ok(volumeName, `Trousseau mounts ${dirname(socket)}`);
  assert.equal(mountFor(proxy, socket), volumeName, 'the proxy mounts the same socket directory');
  assert.ok(
    spec.volumes?.find((volume) => volume.name === volumeName)?.emptyDir,
    'the socket directory is a pod-private emptyDir',
  );

  // The proxy's config: its unix listener is that socket, owner-only; no TCP listener; the token is added.
  assert.deepEqual(
    hcl.listeners.map((listener) => listener.type),
    ['unix'],
    'one listener, a unix socket (a TCP one would lend the token to the node)',
  );
  const listener = hcl.listeners[0]?.body ?? '';
  assert.equal(setting(listener, 'address'), socket);
  assert.equal(setting(listener, 'socket_mode'), '0600');
  assert.match(hcl.text, /^(api_proxy|cache)\s*\{[^}]*use_auto_auth_token\s*=\s*(true|"force")/m);
  assert.match(hcl.text, /^auto_auth\s*\{/m);
  const configArg = proxy.args?.find((arg) => arg.startsWith('-config='))?.slice('-config='.length);
  assert.ok(configArg && mountFor(proxy, configArg), 'the proxy config file is mounted where -config says');
  assert.deepEqual(proxy.command, ['vault'], 'vault itself, not the entrypoint that needs capabilities');

  // Its credentials: in the proxy container, and in no volume Trousseau mounts.
  for (const file of hcl.files) {
    const name = mountFor(proxy, file);
    assert.ok(name, `${file} (named in the proxy config) is mounted in the proxy container`);
    assert.ok(
      !trousseau.volumeMounts?.some((mount) => mount.name === name),
      `${file} is not visible to Trousseau`,
    );
  }
  if (/method\s+"approle"/.test(hcl.text)) {
    assert.match(hcl.text, /remove_secret_id_file_after_reading\s*=\s*false/, 'a read-only secret id stays');
  }

  // The proxy is locked down like Trousseau.
  const security = proxy.securityContext;
  assert.equal(security?.readOnlyRootFilesystem, true);
  assert.equal(security?.allowPrivilegeEscalation, false);
  assert.deepEqual(security?.capabilities?.drop, ['ALL']);
  assert.ok(proxy.resources?.limits?.['memory'], 'a memory limit');
}
