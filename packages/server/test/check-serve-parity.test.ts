import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createKeyRingFile } from '@trousseau/provider-local';
import { removeDir, runCli, scratchDir, type CliResult } from './helpers.js';

// `check` says what `serve` will say: every refusal serve makes before it serves is found by check first,
// with the same exit code, naming the config file and the path inside it.

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** A config in a fresh directory with a local key ring `keys.json`; `body` is the YAML after `version`. */
async function configWith(body: (dir: string) => string): Promise<{ dir: string; file: string }> {
  const dir = await scratchDir('trousseau-parity-');
  await createKeyRingFile(join(dir, 'keys.json'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, `version: 1\n${body(dir)}`);
  return { dir, file };
}

const LOCAL_PROVIDER = 'providers:\n  - {name: main, type: local, config: {keyFile: keys.json}}\n';

/** Runs check and serve on `file`; both must refuse with `code` and print a line matching `pattern`. */
async function bothRefuse(file: string, code: number, pattern: RegExp): Promise<void> {
  const [check, serve] = await Promise.all([
    runCli(['check', '--config', file]),
    runCli(['serve', '--config', file]),
  ]);
  for (const [name, result] of [
    ['check', check],
    ['serve', serve],
  ] as [string, CliResult][]) {
    assert.equal(result.code, code, `${name}: ${result.stdout}${result.stderr}`);
    assert.match(result.stderr, pattern, `${name} names the file, the path and the reason`);
  }
}

describe('check finds every refusal serve makes, naming the file and the path in it', () => {
  it('a socket path over 107 bytes', async () => {
    const { dir, file } = await configWith(
      () => `socket: {path: ./${'s'.repeat(120)}.sock}\n${LOCAL_PROVIDER}`,
    );
    try {
      await bothRefuse(
        file,
        2,
        new RegExp(`invalid config file ${escape(file)}:\\n  - socket\\.path: is \\d+ bytes .*at most 107`),
      );
    } finally {
      await removeDir(dir);
    }
  });

  it('a socket path whose directory leaves no room for the bind directory beside it', async () => {
    // 100 bytes: bindable itself, but not once ".trousseau-bind-XXXXXX/k.sock" sits in its directory.
    const { dir, file } = await configWith((base) => {
      const name = 'd'.repeat(Math.max(1, 100 - base.length - '/x.sock'.length - 1));
      return `socket: {path: ./${name}/x.sock}\n${LOCAL_PROVIDER}`;
    });
    try {
      await bothRefuse(file, 2, /socket\.path: leaves no room to bind beside it/);
    } finally {
      await removeDir(dir);
    }
  });

  it('a file at the socket path that is not a socket', async () => {
    const { dir, file } = await configWith(() => `socket: {path: ./kms.sock}\n${LOCAL_PROVIDER}`);
    try {
      await writeFile(join(dir, 'kms.sock'), 'not a socket');
      await bothRefuse(
        file,
        2,
        /socket\.path: .*kms\.sock exists and is not a socket; Trousseau never replaces it/,
      );
    } finally {
      await removeDir(dir);
    }
  });

  it('health.listen with a port over 65535', async () => {
    const { dir, file } = await configWith(() => `health: {listen: "127.0.0.1:70000"}\n${LOCAL_PROVIDER}`);
    try {
      await bothRefuse(file, 2, /health\.listen: port 70000 is over 65535/);
    } finally {
      await removeDir(dir);
    }
  });

  it('health.listen with a host that does not resolve, or is not on this machine', async () => {
    const { dir, file } = await configWith(
      () => `health: {listen: "no-such-host.invalid:8787"}\n${LOCAL_PROVIDER}`,
    );
    try {
      await bothRefuse(
        file,
        2,
        new RegExp(
          `${escape(file)}:\\n  - health\\.listen: host "no-such-host\\.invalid" (does not resolve|cannot be listened on)`,
        ),
      );
      // 192.0.2.1 (TEST-NET-1) is no address of this machine.
      await writeFile(file, `version: 1\nhealth: {listen: "192.0.2.1:8787"}\n${LOCAL_PROVIDER}`);
      await bothRefuse(file, 2, /health\.listen: host "192\.0\.2\.1" is not an address of this machine/);
    } finally {
      await removeDir(dir);
    }
  });

  it('a socket mode that lets every user connect, unless socket.allowOthers says so', async () => {
    const { dir, file } = await configWith(
      () => `socket: {path: ./kms.sock, mode: "0777"}\n${LOCAL_PROVIDER}`,
    );
    try {
      await bothRefuse(
        file,
        2,
        /socket\.mode: "0777" lets every user of the machine connect, and whoever connects can decrypt every Secret/,
      );
      await writeFile(
        file,
        `version: 1\nsocket: {path: ./kms.sock, mode: "0666", allowOthers: true}\n${LOCAL_PROVIDER}`,
      );
      const allowed = await runCli(['check', '--config', file]);
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.match(
        allowed.stdout,
        /⚠ socket\.mode: "0666" lets every user of this machine connect \(socket\.allowOthers is set\)/,
      );
    } finally {
      await removeDir(dir);
    }
  });

  it('a provider type that cannot be loaded', async () => {
    const { dir, file } = await configWith(
      () => 'providers:\n  - {name: main, type: "@acme/no-such-provider"}\n',
    );
    try {
      await bothRefuse(
        file,
        2,
        new RegExp(
          `${escape(file)}: providers\\[0\\]\\.type: provider type "@acme/no-such-provider": .*cannot be found`,
        ),
      );
    } finally {
      await removeDir(dir);
    }
  });

  it('a provider that fails to start', async () => {
    const { dir, file } = await configWith(
      () => 'providers:\n  - {name: main, type: local, config: {keyFile: missing.json}}\n',
    );
    try {
      await bothRefuse(
        file,
        1,
        new RegExp(
          `${escape(file)}: providers\\[0\\]: provider "main" \\(local\\) failed to start: .*missing\\.json`,
        ),
      );
    } finally {
      await removeDir(dir);
    }
  });

  it('a YAML alias bomb', async () => {
    const { dir, file } = await configWith(() =>
      [
        'a: &a [x, x, x, x, x, x, x, x, x]',
        'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
        'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
        LOCAL_PROVIDER,
      ].join('\n'),
    );
    try {
      await bothRefuse(
        file,
        2,
        new RegExp(`invalid config file ${escape(file)}:\\n  - \\(top level\\): YAML: Excessive alias count`),
      );
    } finally {
      await removeDir(dir);
    }
  });

  it('a secret written inline, pointing to { file: PATH } and { env: NAME }', async () => {
    const { dir, file } = await configWith(
      () =>
        'providers:\n  - name: main\n    type: vault\n    config:\n      address: http://127.0.0.1:8200\n      keyName: k8s\n      auth: {method: token, token: "s.inline-token-value"}\n',
    );
    try {
      await bothRefuse(
        file,
        2,
        /providers\[0\]\.config\.auth\.token: secrets are never written inline in the config file: reference it as \{ file: PATH \} .* or \{ env: NAME \}/,
      );
    } finally {
      await removeDir(dir);
    }
  });
});

describe('check says what serve warns about', () => {
  it('a socket its group may connect to', async () => {
    const { dir, file } = await configWith(
      () => `socket: {path: ./kms.sock, mode: "0660", gid: 0}\n${LOCAL_PROVIDER}`,
    );
    try {
      const result = await runCli(['check', '--config', file]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stdout,
        /⚠ socket\.mode: "0660" lets group 0 connect, and whoever connects can decrypt every Secret/,
      );
    } finally {
      await removeDir(dir);
    }
  });

  it('a key ring its group may read (served, with a warning); one every user may read (refused)', async () => {
    const { dir, file } = await configWith(() => LOCAL_PROVIDER);
    try {
      await chmod(join(dir, 'keys.json'), 0o640);
      const grouped = await runCli(['check', '--config', file]);
      assert.equal(grouped.code, 0, grouped.stderr);
      assert.match(grouped.stdout, /⚠ main: key ring .*keys\.json is accessible to its group \(mode 0640/);
      await chmod(join(dir, 'keys.json'), 0o644);
      await bothRefuse(
        file,
        1,
        /providers\[0\]: provider "main" \(local\) failed to start: .*accessible to every user of the machine \(mode 0644\)/,
      );
    } finally {
      await removeDir(dir);
    }
  });

  it('nothing, for a config serve takes without a word', async () => {
    const { dir, file } = await configWith(() => `socket: {path: ./kms.sock}\n${LOCAL_PROVIDER}`);
    try {
      await mkdir(join(dir, 'unrelated'));
      const result = await runCli(['check', '--config', file]);
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stdout, /⚠/);
    } finally {
      await removeDir(dir);
    }
  });
});
