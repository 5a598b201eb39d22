import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { TrousseauConfig } from '@trousseau/core';

export const SOCKET_DIR = '/var/run/trousseau';
export const CONFIG_PATH = '/etc/trousseau/config.yaml';

export function trousseauContainer(spec: IPodSpec): IContainer {
  const container = spec.containers.find((candidate) => candidate.name === 'trousseau');
  assert.ok(container, 'the pod has a container named trousseau');
  return container;
}

/** The port a probe or Service names, as a number: a named port resolves through the container's ports. */
export function resolvePort(container: IContainer, port: number | string | undefined): number {
  if (typeof port === 'number') return port;
  const named = container.ports?.find((candidate) => candidate.name === port);
  assert.ok(named, `port "${String(port)}" is one of the container's named ports`);
  return named.containerPort;
}

/** Every file path a config names (keyFile, tokenFile, caFile, certFile, `{file}` secret references). */
export function filePathsIn(value: unknown): string[] {
  const paths: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    for (const [key, child] of Object.entries(node)) {
      if (typeof child === 'string' && /^(file|keyFile|tokenFile|caFile|certFile)$/.test(key))
        paths.push(child);
      else walk(child);
    }
  };
  walk(value);
  return paths;
}

/**
 * What every Trousseau pod (DaemonSet template or static pod) must get right: the command, the socket
 * directory shared with the apiserver, probes on the side listener, resources and the security context.
 */
export function checkTrousseauPod(
  spec: IPodSpec,
  config: TrousseauConfig,
  healthListen: string | undefined,
): void {
  const container = trousseauContainer(spec);
  assert.deepEqual(container.args, ['serve', '--config', CONFIG_PATH]);
  assert.equal(container.command, undefined, 'the image entrypoint runs node on the server bin');

  // The socket directory: a hostPath the apiserver mounts too, created when missing.
  assert.equal(dirname(config.socket.path), SOCKET_DIR, 'the socket lives in /var/run/trousseau');
  const socketVolume = spec.volumes?.find((volume) => volume.hostPath?.path === SOCKET_DIR);
  assert.ok(socketVolume, 'a hostPath volume for /var/run/trousseau');
  assert.equal(socketVolume.hostPath?.type, 'DirectoryOrCreate');
  const socketMount = container.volumeMounts?.find((mount) => mount.name === socketVolume.name);
  assert.equal(socketMount?.mountPath, SOCKET_DIR);
  assert.notEqual(socketMount?.readOnly, true, 'the socket directory is writable');

  // The config file is mounted where the args say.
  const configMount = container.volumeMounts?.find((mount) => mount.mountPath === dirname(CONFIG_PATH));
  assert.ok(configMount, 'something is mounted at /etc/trousseau');
  assert.equal(configMount.readOnly, true, 'the config is mounted read-only');

  // Every file the config names is under one of the container's mounts.
  for (const path of filePathsIn(config.providers)) {
    const mount = container.volumeMounts?.find((candidate) => path.startsWith(`${candidate.mountPath}/`));
    assert.ok(mount, `${path} (named in the config) is inside a mounted volume`);
  }

  // Probes on the side listener: /livez for liveness, /readyz for readiness, at the configured port.
  assert.ok(healthListen, 'the config enables the side listener (health.listen)');
  const listenPort = Number(healthListen.slice(healthListen.lastIndexOf(':') + 1));
  const liveness = container.livenessProbe?.httpGet;
  const readiness = container.readinessProbe?.httpGet;
  assert.equal(liveness?.path, '/livez');
  assert.equal(readiness?.path, '/readyz');
  assert.equal(resolvePort(container, liveness.port), listenPort);
  assert.equal(resolvePort(container, readiness.port), listenPort);
  const listenHost = healthListen.slice(0, healthListen.lastIndexOf(':'));
  if (spec.hostNetwork === true) {
    // On the node's network a loopback listener is reached by probing 127.0.0.1.
    if (listenHost === '127.0.0.1') {
      assert.equal(liveness.host, '127.0.0.1');
      assert.equal(readiness.host, '127.0.0.1');
    }
  } else {
    // The kubelet probes the pod IP: a loopback-only listener would fail every probe.
    assert.ok(
      ['0.0.0.0', '[::]'].includes(listenHost),
      `health.listen ${healthListen} is reachable on the pod IP`,
    );
  }

  // Resources.
  assert.ok(container.resources?.requests?.['cpu'], 'a CPU request');
  assert.ok(container.resources?.requests?.['memory'], 'a memory request');
  assert.ok(container.resources?.limits?.['memory'], 'a memory limit');

  // Security: no privilege, read-only root, no capabilities; root only with the socket kept root-only.
  const security = container.securityContext;
  assert.equal(security?.readOnlyRootFilesystem, true);
  assert.equal(security?.allowPrivilegeEscalation, false);
  assert.notEqual(security?.privileged, true);
  assert.deepEqual(security?.capabilities?.drop, ['ALL']);
  assert.equal(security?.capabilities?.add, undefined);
  assert.equal(spec.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  const runAsUser = security?.runAsUser ?? spec.securityContext?.runAsUser;
  if (runAsUser === 0) {
    // Root without capabilities: the socket must stay owner-only, so only root (the apiserver) opens it.
    assert.equal(spec.securityContext?.runAsNonRoot ?? security?.runAsNonRoot, false);
    assert.match(config.socket.mode, /^0?600$/, 'a root plugin keeps its socket 0600');
  } else {
    // Non-root: the apiserver reaches the socket through its group.
    assert.equal(spec.securityContext?.runAsNonRoot ?? security?.runAsNonRoot, true);
    assert.notEqual(config.socket.gid, undefined, 'a non-root plugin sets socket.gid for the apiserver');
    assert.match(config.socket.mode, /^0?660$/);
  }
  assert.equal(spec.priorityClassName, 'system-node-critical');
}
