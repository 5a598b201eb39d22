import 'reflect-metadata';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig, silentLogger } from '@trousseau/core';
import { KmsClient } from '@trousseau/core/grpc';
import { createKeyRingFile } from '@trousseau/provider-local';
import { TrousseauServer } from '../src/index.js';
import { claimSocketPath, makeBindPath } from '../src/socket-file.js';
import { removeDir, scratchDir } from './helpers.js';

/** Serves the local provider on `dir/kms.sock`, checks a Status, and stops. */
async function serveOnce(dir: string): Promise<void> {
  await createKeyRingFile(join(dir, 'keys.json'));
  const loaded = parseConfig(
    {
      version: 1,
      socket: { path: join(dir, 'kms.sock') },
      providers: [{ name: 'main', type: 'local', config: { keyFile: 'keys.json' } }],
    },
    join(dir, 'config.yaml'),
    dir,
  );
  const server = await TrousseauServer.create({ loaded, logger: silentLogger });
  try {
    await server.listen();
    const client = new KmsClient(join(dir, 'kms.sock'));
    try {
      assert.equal((await client.status()).healthz, 'ok');
    } finally {
      client.close();
    }
  } finally {
    await server.close();
  }
}

/** Leaves a socket at `path` that nobody serves, as a process killed while listening does. */
function deadSocket(path: string): void {
  const killed = spawnSync(process.execPath, [
    '-e',
    `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
  ]);
  assert.equal(killed.signal, 'SIGKILL');
}

function listen(path: string): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(path, () => resolve(server));
  });
}

describe('claiming the socket path', () => {
  it('never replaces a socket another instance bound at the path meanwhile', async () => {
    const dir = await scratchDir();
    const path = join(dir, 'kms.sock');
    const other = await listen(path); // another instance got there first
    const temporary = await makeBindPath(path);
    const mine = await listen(temporary);
    try {
      await assert.rejects(claimSocketPath(temporary, path), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'TROUSSEAU_ERR_SOCKET_IN_USE');
        assert.match(error.message, /another process bound .*kms\.sock while this one was starting/);
        return true;
      });
      assert.ok((await stat(path)).isSocket(), "the other instance's socket is still there");
    } finally {
      mine.close();
      other.close();
      await removeDir(dir);
    }
  });

  it('links the bound socket into place when the path is free', async () => {
    const dir = await scratchDir();
    const path = join(dir, 'kms.sock');
    const temporary = await makeBindPath(path);
    const mine = await listen(temporary);
    try {
      await claimSocketPath(temporary, path);
      assert.equal((await stat(path)).ino, (await stat(temporary)).ino, 'the same socket under both names');
    } finally {
      mine.close();
      await removeDir(dir);
    }
  });
});

describe('the names around the socket', () => {
  it("never deletes or trips over a user's files and directories named like its temporary names", async () => {
    const dir = await scratchDir();
    try {
      // The temporary name of earlier builds, and the bind directory's, taken by things that are not ours.
      await writeFile(join(dir, '.trousseau-0123456789ab.sock'), 'a file of mine');
      await mkdir(join(dir, '.trousseau-0123456789ac.sock'));
      await mkdir(join(dir, '.trousseau-bind-abcdef'));
      await writeFile(join(dir, '.trousseau-bind-abcdef', 'notes'), 'mine too');
      await writeFile(join(dir, '.trousseau-bind-ABCDEF'), 'and this');
      await mkdir(join(dir, '.trousseau-bind-kkkkkk'));
      await writeFile(join(dir, '.trousseau-bind-kkkkkk', 'k.sock'), 'a file, not a socket');
      await serveOnce(dir);
      assert.equal(await readFile(join(dir, '.trousseau-0123456789ab.sock'), 'utf8'), 'a file of mine');
      assert.ok((await stat(join(dir, '.trousseau-0123456789ac.sock'))).isDirectory());
      assert.equal(await readFile(join(dir, '.trousseau-bind-abcdef', 'notes'), 'utf8'), 'mine too');
      assert.equal(await readFile(join(dir, '.trousseau-bind-ABCDEF'), 'utf8'), 'and this');
      assert.equal(
        await readFile(join(dir, '.trousseau-bind-kkkkkk', 'k.sock'), 'utf8'),
        'a file, not a socket',
      );
      assert.deepEqual(
        (await readdir(dir)).filter((name) => name.startsWith('.trousseau-bind-')).sort(),
        ['.trousseau-bind-ABCDEF', '.trousseau-bind-abcdef', '.trousseau-bind-kkkkkk'],
        'no bind directory of its own is left',
      );
    } finally {
      await removeDir(dir);
    }
  });

  it('removes a bind directory a dead instance left between bind and link', async () => {
    const dir = await scratchDir();
    try {
      await mkdir(join(dir, '.trousseau-bind-Zz09Yy'), { mode: 0o700 });
      deadSocket(join(dir, '.trousseau-bind-Zz09Yy', 'k.sock'));
      await serveOnce(dir);
      assert.deepEqual(
        (await readdir(dir)).filter((name) => name.startsWith('.trousseau-')),
        [],
        'the dead bind directory is gone',
      );
    } finally {
      await removeDir(dir);
    }
  });
});
