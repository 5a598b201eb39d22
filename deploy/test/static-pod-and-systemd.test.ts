import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { IPod } from 'kubernetes-models/v1/Pod';
import { validateKubeObject } from './support/kubernetes-schemas.js';
import { repoPath } from './support/paths.js';
import { checkTrousseauPod, filePathsIn } from './support/pod-checks.js';
import { checkTrousseauConfig } from './support/trousseau-config.js';
import { parseManifests, readYamlFile } from './support/yaml-files.js';

describe('static pod', () => {
  it('is a valid Pod in kube-system with the Trousseau pod essentials', async () => {
    const objects = parseManifests(
      readFileSync(repoPath('deploy', 'static-pod', 'trousseau.yaml'), 'utf8'),
      'deploy/static-pod/trousseau.yaml',
    );
    assert.equal(objects.length, 1);
    const pod = objects[0] as unknown as IPod;
    validateKubeObject(objects[0] as (typeof objects)[number]);
    assert.equal(pod.kind, 'Pod');
    assert.equal(pod.metadata?.namespace, 'kube-system');
    const spec = pod.spec;
    assert.ok(spec);
    assert.equal(spec.hostNetwork, true, 'the node network: no dependency on the cluster network');
    // A static pod cannot use API objects: config and credentials come from the node.
    for (const volume of spec.volumes ?? []) {
      assert.ok(
        volume.hostPath !== undefined || volume.emptyDir !== undefined,
        `volume ${volume.name} is a hostPath or emptyDir, not an API object`,
      );
    }
    assert.equal(spec.serviceAccountName, undefined);

    const checked = await checkTrousseauConfig(
      readYamlFile(repoPath('deploy', 'static-pod', 'config.yaml')),
      'deploy/static-pod/config.yaml',
    );
    console.log(
      `# static pod config: provider options validated: ${checked.validatedProviders.join(', ') || 'none'}`,
    );
    checkTrousseauPod(spec, checked.config, checked.healthListen);
    assert.equal(checked.healthListen, '127.0.0.1:8787', 'the side listener stays on the node loopback');
    const configVolume = spec.volumes?.find((volume) => volume.name === 'config');
    assert.equal(configVolume?.hostPath?.path, '/etc/trousseau');
  });
});

/** `Key=Value` lines of a systemd unit, by section; repeated keys keep every value. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1] ?? '', current);
      continue;
    }
    const equals = line.indexOf('=');
    assert.ok(current && equals > 0, `a Key=Value line inside a section: ${line}`);
    const key = line.slice(0, equals);
    current.set(key, [...(current.get(key) ?? []), line.slice(equals + 1)]);
  }
  return sections;
}

describe('systemd unit', () => {
  const unitPath = repoPath('deploy', 'systemd', 'trousseau.service');
  const unit = parseUnit(readFileSync(unitPath, 'utf8'));
  const service = unit.get('Service') ?? new Map<string, string[]>();
  const value = (key: string): string | undefined => service.get(key)?.at(-1);

  it('runs `trousseau serve --config /etc/trousseau/config.yaml` as an unprivileged user', () => {
    assert.deepEqual([...unit.keys()], ['Unit', 'Service', 'Install']);
    assert.match(
      value('ExecStart') ?? '',
      /^\/usr\/bin\/node \/opt\/trousseau\/dist\/bundle\/trousseau\.cjs serve --config \/etc\/trousseau\/config\.yaml$/,
    );
    assert.ok(value('User') && value('User') !== 'root' && value('User') !== '0');
    assert.equal(value('RuntimeDirectory'), 'trousseau', '/run/trousseau, which is /var/run/trousseau');
    assert.equal(value('Restart'), 'always');
    assert.equal(value('KillSignal'), 'SIGTERM');
    assert.match(unit.get('Unit')?.get('Before')?.join(' ') ?? '', /kube-apiserver\.service/);
  });

  it('is hardened', () => {
    const expected: Record<string, string> = {
      NoNewPrivileges: 'yes',
      CapabilityBoundingSet: '',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectControlGroups: 'yes',
      RestrictSUIDSGID: 'yes',
      RestrictNamespaces: 'yes',
      LockPersonality: 'yes',
      SystemCallArchitectures: 'native',
      UMask: '0077',
    };
    for (const [key, setting] of Object.entries(expected)) assert.equal(value(key), setting, key);
    assert.equal(value('RestrictAddressFamilies'), 'AF_UNIX AF_INET AF_INET6');
    // V8's JIT needs writable+executable pages: this directive would crash node.
    assert.equal(value('MemoryDenyWriteExecute'), undefined);
  });

  it('hands every credential the example config names over with LoadCredential=', async () => {
    const checked = await checkTrousseauConfig(
      readYamlFile(repoPath('deploy', 'systemd', 'config.yaml')),
      'deploy/systemd/config.yaml',
    );
    const credentials = (service.get('LoadCredential') ?? []).map((line) => line.split(':')[0]);
    const files = filePathsIn(checked.config.providers);
    assert.ok(files.length > 0);
    for (const file of files) {
      const match = /^\/run\/credentials\/trousseau\.service\/(.+)$/.exec(file);
      assert.ok(match, `${file} is read from the unit's credentials directory`);
      assert.ok(credentials.includes(match[1]), `LoadCredential=${match[1]}:...`);
    }
    assert.equal(checked.config.socket.path, '/var/run/trousseau/kms.sock');
  });

  it('passes `systemd-analyze verify` and scores well on `systemd-analyze security`', (t) => {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
      t.skip('systemd-analyze is not installed on this machine');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'trousseau-unit-'));
    try {
      const copy = join(dir, 'trousseau.service');
      copyFileSync(unitPath, copy);
      const verify = spawnSync('systemd-analyze', ['verify', '--man=no', copy], { encoding: 'utf8' });
      // verify also complains when /usr/bin/node is absent on the test machine; that is not the unit's fault.
      const problems = `${verify.stdout}${verify.stderr}`
        .split('\n')
        .filter(
          (line) =>
            line.trim() !== '' && !/Command \/usr\/bin\/node is not executable|No such file/.test(line),
        );
      assert.deepEqual(problems, [], 'systemd-analyze verify reports nothing');
      const security = execFileSync('systemd-analyze', ['security', '--offline=yes', copy], {
        encoding: 'utf8',
      });
      const exposure = Number(/Overall exposure level for trousseau\.service: ([0-9.]+)/.exec(security)?.[1]);
      console.log(`# systemd-analyze security: exposure ${exposure} (0 is best, 10 worst)`);
      assert.ok(exposure <= 2, `exposure ${exposure} is at most 2`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
