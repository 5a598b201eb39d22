import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { repoPath } from './paths.js';
import { parseManifests, type KubeObject } from './yaml-files.js';

let kubectlDescription: string | undefined;

/**
 * Runs scripts/ensure-kubectl.sh (the machine's kubectl when it renders components offline, else Debian's
 * kubernetes-client) once, and returns its description of the kubectl that will run.
 */
export function ensureKubectl(): string {
  if (kubectlDescription === undefined) {
    const output = execFileSync('bash', [repoPath('scripts', 'ensure-kubectl.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    kubectlDescription = output.trim().split('\n').at(-1) ?? 'unknown kubectl';
  }
  return kubectlDescription;
}

/** `kubectl kustomize DIR`, parsed. */
export function kustomize(dir: string): KubeObject[] {
  ensureKubectl();
  const output = execFileSync('kubectl', ['kustomize', dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 16 * 1024 * 1024,
    // Rendering needs no cluster: keep a kubeconfig on the machine out of it.
    env: { ...process.env, KUBECONFIG: '/nonexistent/trousseau-kubeconfig' },
  });
  return parseManifests(output, `kubectl kustomize ${relative(repoPath(), dir)}`);
}

/** Renders `resources` plus `components` through a throwaway kustomization (paths relative to it). */
export function kustomizeWith(resources: readonly string[], components: readonly string[]): KubeObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'trousseau-kustomize-'));
  try {
    const list = (paths: readonly string[]): string =>
      paths.map((path) => `  - ${relative(dir, path)}`).join('\n');
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources:',
        list(resources),
        'components:',
        list(components),
        '',
      ].join('\n'),
    );
    return kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
