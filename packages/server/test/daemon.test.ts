import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { KmsClient } from '@trousseau/core/grpc';
import { createKeyRingFile } from '@trousseau/provider-local';
import { waitUntil } from '@trousseau/testing';
import { PACKAGE_DIR, removeDir, runCli, scratchDir, startServe, startTestServer } from './helpers.js';

async function localConfig(dir: string, extra = ''): Promise<string> {
  await createKeyRingFile(join(dir, 'keys.json'));
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    `version: 1
socket:
  path: ./kms.sock
providers:
  - name: main
    type: local
    config:
      keyFile: keys.json
${extra}`,
  );
  return file;
}

describe('trousseau serve', () => {
  it('serves the embedded default with no config: a development key ring and socket under the working directory', async () => {
    const dir = await scratchDir();
    const serve = startServe([], { cwd: dir });
    try {
      await serve.waitFor('trousseau is serving');
      assert.match(serve.output(), /DEVELOPMENT MODE/);
      const ring = JSON.parse(await readFile(join(dir, '.trousseau/dev-keyring.json'), 'utf8')) as {
        keys: unknown[];
      };
      assert.equal(ring.keys.length, 1);
      const client = new KmsClient(join(dir, '.trousseau/kms.sock'));
      try {
        const status = await client.status();
        assert.equal(status.healthz, 'ok');
        const seed = randomBytes(32);
        const encrypted = await client.encrypt(seed);
        assert.equal(encrypted.key_id, status.key_id);
        assert.deepEqual(
          (await client.decrypt({ ciphertext: encrypted.ciphertext, keyId: encrypted.key_id })).plaintext,
          seed,
        );
        assert.equal((await client.v1Version()).version, 'v1beta1');
        const v1 = await client.v1Encrypt(Buffer.from('ping'));
        assert.equal((await client.v1Decrypt(v1.cipher)).plain.toString(), 'ping');
      } finally {
        client.close();
      }
      assert.equal(await serve.stop('SIGTERM'), 0);
      await assert.rejects(stat(join(dir, '.trousseau/kms.sock')), /ENOENT/, 'the socket is removed on stop');
    } finally {
      await serve.stop('SIGKILL');
      await removeDir(dir);
    }
  });

  it('creates the socket with mode 0600 by default and the configured mode otherwise', async () => {
    const dir = await scratchDir();
    const file = await localConfig(dir);
    const serve = startServe(['--config', file]);
    try {
      await serve.waitFor('trousseau is serving');
      assert.equal((await stat(join(dir, 'kms.sock'))).mode & 0o777, 0o600);
    } finally {
      await serve.stop();
    }
    await writeFile(
      file,
      (await readFile(file, 'utf8')).replace('  path: ./kms.sock', '  path: ./kms.sock\n  mode: "0660"'),
    );
    const second = startServe(['--config', file]);
    try {
      await second.waitFor('trousseau is serving');
      assert.equal((await stat(join(dir, 'kms.sock'))).mode & 0o777, 0o660);
    } finally {
      await second.stop();
      await removeDir(dir);
    }
  });

  it('replaces a stale socket left by a dead process', async () => {
    const dir = await scratchDir();
    const file = await localConfig(dir);
    const stale = join(dir, 'kms.sock');
    // A process that dies with SIGKILL while listening leaves its socket file behind.
    const killed = spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok((await stat(stale)).isSocket());
    const serve = startServe(['--config', file]);
    try {
      await serve.waitFor('trousseau is serving');
      assert.match(serve.output(), /replacing a stale socket/);
      const client = new KmsClient(stale);
      assert.equal((await client.status()).healthz, 'ok');
      client.close();
    } finally {
      await serve.stop();
      await removeDir(dir);
    }
  });

  it('removes temporary socket names a dead instance left between bind and link', async () => {
    const dir = await scratchDir();
    const file = await localConfig(dir);
    const leftover = join(dir, '.trousseau-0123456789ab.sock');
    const killed = spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(leftover)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    assert.equal(killed.signal, 'SIGKILL');
    const serve = startServe(['--config', file]);
    try {
      await serve.waitFor('trousseau is serving');
      await assert.rejects(stat(leftover), /ENOENT/);
      assert.deepEqual(
        (await readdir(dir)).filter((name) => name.startsWith('.trousseau-')),
        [],
        'no temporary name is left once serving',
      );
    } finally {
      await serve.stop();
      await removeDir(dir);
    }
  });

  it('refuses to start on a socket another live process serves', async () => {
    const dir = await scratchDir();
    const file = await localConfig(dir);
    const first = startServe(['--config', file]);
    try {
      await first.waitFor('trousseau is serving');
      const second = await runCli(['serve', '--config', file]);
      assert.notEqual(second.code, 0);
      assert.match(second.stderr, /another process is serving on .*kms\.sock/);
      const client = new KmsClient(join(dir, 'kms.sock'));
      assert.equal((await client.status()).healthz, 'ok', 'the first server keeps serving');
      client.close();
    } finally {
      await first.stop();
      await removeDir(dir);
    }
  });

  it('on stop, leaves alone a socket path that another process has taken over', async () => {
    const dir = await scratchDir();
    const file = await localConfig(dir);
    const socket = join(dir, 'kms.sock');
    const first = startServe(['--config', file]);
    await first.waitFor('trousseau is serving');
    await unlink(socket); // an operator deletes the live socket file ...
    const second = startServe(['--config', file]); // ... and a second instance takes the path
    try {
      await second.waitFor('trousseau is serving');
      assert.equal(await first.stop(), 0);
      assert.ok(
        (await stat(socket)).isSocket(),
        "the first instance must not remove the second one's socket",
      );
      const client = new KmsClient(socket);
      assert.equal((await client.status()).healthz, 'ok');
      client.close();
    } finally {
      await first.stop();
      await second.stop();
      await removeDir(dir);
    }
  });

  it('finishes in-flight calls before it stops', async () => {
    // The drain bound is far away: the call finishes because the server waits for it, not in time.
    const t = await startTestServer({ drainTimeoutMs: 60_000 });
    let release: () => void = () => undefined;
    t.faulty.faults.hold = new Promise((resolve) => (release = resolve));
    const order: string[] = [];
    const inFlight = t.client.encrypt(randomBytes(32), 'draining', 60_000);
    inFlight.then(
      () => order.push('answered'),
      () => undefined, // awaited below
    );
    // close() starts only once the call has reached the provider, where it is held.
    await waitUntil(() => t.faulty.calls === 1, 'the call reached the provider');
    const closing = t.server.close();
    closing.then(
      () => order.push('closed'),
      () => undefined, // awaited below
    );
    release();
    const response = await inFlight;
    assert.ok(response.ciphertext.length > 0);
    await closing;
    assert.deepEqual(order, ['answered', 'closed'], 'close() waited for the call in flight');
    await assert.rejects(stat(t.socket), /ENOENT/);
    await t.close();
  });
});

describe('stopping with calls that will not finish', () => {
  it('cancels them after the drain timeout, so the provider stops its work, and still stops', async () => {
    const t = await startTestServer({ drainTimeoutMs: 300 });
    t.faulty.faults.delayMs = 30_000;
    const stuck = t.client.encrypt(randomBytes(32), 'stuck', 20_000).then(
      () => undefined,
      (error: { code?: number }) => error,
    );
    await waitUntil(() => t.faulty.calls === 1, 'the call reached the provider');
    await t.server.close();
    const failure = await stuck;
    assert.ok(
      failure !== undefined && typeof failure.code === 'number' && failure.code !== 0,
      'the stuck call failed',
    );
    await waitUntil(() => t.faulty.aborted > 0, 'the provider saw its request cancelled');
    assert.equal(t.faulty.aborted, 1, 'the provider saw its request cancelled, once');
    await t.close();
  });
});

describe('trousseau config errors', () => {
  it('names the file, the path inside it and the reason, and exits non-zero', async () => {
    const dir = await scratchDir();
    try {
      const file = join(dir, 'bad.yaml');
      await writeFile(
        file,
        `version: 1
providers:
  - name: main
    type: local
    config:
      keyFile: 42
      colour: blue
`,
      );
      const result = await runCli(['serve', '--config', file]);
      assert.equal(result.code, 2);
      assert.match(
        result.stderr,
        new RegExp(`invalid config file ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`),
      );
      assert.match(result.stderr, /providers\[0\]\.config\.keyFile: .*string/i);
      assert.match(result.stderr, /providers\[0\]\.config: .*colour/);
    } finally {
      await removeDir(dir);
    }
  });

  it('reports top-level mistakes: a missing version, an unknown key, a bad encryptWith', async () => {
    const dir = await scratchDir();
    try {
      const file = join(dir, 'bad.yaml');
      await writeFile(
        file,
        'socket: {path: /tmp/x.sock}\nsockets: 1\nproviders:\n  - {name: a, type: local}\n',
      );
      const result = await runCli(['serve', '--config', file]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /version: must be 1/);
      assert.match(result.stderr, /\(top level\): .*sockets/);
      await writeFile(file, 'version: 1\nencryptWith: nope\nproviders:\n  - {name: a, type: local}\n');
      const second = await runCli(['serve', '--config', file]);
      assert.equal(second.code, 2);
      assert.match(second.stderr, /encryptWith: names "nope", which is not in providers \(a\)/);
    } finally {
      await removeDir(dir);
    }
  });

  it('reports YAML syntax errors and missing files', async () => {
    const dir = await scratchDir();
    try {
      const file = join(dir, 'broken.yaml');
      await writeFile(file, 'version: 1\nproviders: [\n');
      const broken = await runCli(['serve', '--config', file]);
      assert.equal(broken.code, 2);
      assert.match(broken.stderr, /YAML syntax/);
      const missing = await runCli(['serve', '--config', join(dir, 'absent.yaml')]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /absent\.yaml:\n.*file not found/);
    } finally {
      await removeDir(dir);
    }
  });

  it('names the npm package it tried to load for an unknown provider type', async () => {
    const dir = await scratchDir();
    try {
      const file = join(dir, 'config.yaml');
      await writeFile(file, 'version: 1\nproviders:\n  - {name: a, type: "@acme/trousseau-hsm"}\n');
      const result = await runCli(['serve', '--config', file]);
      assert.equal(result.code, 2);
      assert.match(
        result.stderr,
        /provider type "@acme\/trousseau-hsm": .*npm package "@acme\/trousseau-hsm" cannot be found/,
      );
    } finally {
      await removeDir(dir);
    }
  });
});

describe('third-party providers', () => {
  it('loads the example provider by package name from a config file and serves through it', async () => {
    // The config lives inside the server package, whose node_modules has @trousseau/provider-example.
    await mkdir(join(PACKAGE_DIR, '.test-tmp'), { recursive: true });
    const dir = await mkdtemp(join(PACKAGE_DIR, '.test-tmp', 'example-'));
    try {
      await writeFile(join(dir, 'passphrase'), 'correct horse battery staple\n');
      const file = join(dir, 'config.yaml');
      await writeFile(
        file,
        `version: 1
socket:
  path: ${join(dir, 'kms.sock')}
providers:
  - name: example
    type: "@trousseau/provider-example"
    config:
      passphrase: { file: passphrase }
`,
      );
      const serve = startServe(['--config', file]);
      try {
        await serve.waitFor('trousseau is serving');
        const client = new KmsClient(join(dir, 'kms.sock'));
        const status = await client.status();
        assert.equal(status.healthz, 'ok');
        assert.match(status.key_id, /^example:/);
        const seed = randomBytes(32);
        const encrypted = await client.encrypt(seed);
        assert.deepEqual(
          (await client.decrypt({ ciphertext: encrypted.ciphertext, keyId: encrypted.key_id })).plaintext,
          seed,
        );
        client.close();
      } finally {
        await serve.stop();
      }
    } finally {
      await removeDir(dir);
    }
  });
});
