import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@trousseau/core';
import { createTestProviderContext } from '@trousseau/testing';
import { createKeyRingFile, LocalKeyProvider, readKeyRing, rotateKeyRingFile } from '../src/index.js';

// The key-ring file survives the people who operate it: rotation keeps owner and mode, rotations never
// lose each other's keys, a symlink is followed, and a ring others could read is refused.

const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
const SERVICE_ACCOUNT = 65532;
const ROOT_ONLY = 'needs root: only root can give a file to another user';

async function scratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'trousseau-keyring-'));
}

function keyIds(text: string): string[] {
  return (JSON.parse(text) as { keys: { id: string }[] }).keys.map((key) => key.id);
}

/** The names in `dir` besides the ones given: what a rotation may have left behind. */
async function leftovers(dir: string, expected: string[]): Promise<string[]> {
  return (await readdir(dir)).filter((name) => !expected.includes(name));
}

describe('keyring rotate: owner and mode', () => {
  it('keeps the mode of the ring it rewrites', async () => {
    const dir = await scratch();
    try {
      const file = join(dir, 'keys.json');
      await createKeyRingFile(file);
      await chmod(file, 0o640);
      const id = await rotateKeyRingFile(file);
      const info = await stat(file);
      assert.equal(info.mode & 0o777, 0o640);
      assert.equal((await readKeyRing(file)).current, id);
      assert.deepEqual(await leftovers(dir, ['keys.json']), [], 'no temporary or lock file is left');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it(
    'run by root, leaves the ring owned by the service account that reads it',
    { skip: IS_ROOT ? false : ROOT_ONLY },
    async () => {
      const dir = await scratch();
      try {
        const file = join(dir, 'keys.json');
        await createKeyRingFile(file);
        await chown(file, SERVICE_ACCOUNT, SERVICE_ACCOUNT);
        await chmod(file, 0o640);
        await rotateKeyRingFile(file);
        const info = await stat(file);
        assert.equal(info.uid, SERVICE_ACCOUNT);
        assert.equal(info.gid, SERVICE_ACCOUNT);
        assert.equal(info.mode & 0o777, 0o640);
        assert.equal(keyIds(await readFile(file, 'utf8')).length, 2);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  it(
    'refuses clearly, changing nothing, when it cannot keep the owner',
    { skip: IS_ROOT ? false : ROOT_ONLY },
    async () => {
      const dir = await scratch();
      try {
        // The ring belongs to root; nobody may write it (group) and create files beside it, not own it.
        const ringDir = join(dir, 'ring');
        await mkdir(ringDir);
        await chown(ringDir, NOBODY, NOBODY);
        await chmod(dir, 0o755);
        const file = join(ringDir, 'keys.json');
        await createKeyRingFile(file);
        await chown(file, 0, NOBODY);
        await chmod(file, 0o660);
        const before = await readFile(file, 'utf8');
        const entry = fileURLToPath(new URL('../src/index.js', import.meta.url));
        const child = spawn(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            `const { rotateKeyRingFile } = await import(${JSON.stringify(entry)});
           await rotateKeyRingFile(${JSON.stringify(file)}).then(
             () => { console.log('rotated'); },
             (error) => { console.log(error.message); process.exitCode = 3; },
           );`,
          ],
          { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
        const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
        assert.equal(code, 3, output);
        assert.match(
          output,
          /cannot keep the owner of key ring .*keys\.json \(uid 0, gid 65534\).*run the rotation as that user or as root/,
        );
        assert.equal(await readFile(file, 'utf8'), before, 'the ring is unchanged');
        const info = await stat(file);
        assert.equal(info.uid, 0);
        assert.deepEqual(await leftovers(ringDir, ['keys.json']), [], 'no temporary or lock file is left');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('keyring rotate: overlapping rotations', () => {
  it('never loses a key it announced: the rotation that finds another running fails, changing nothing', async () => {
    const dir = await scratch();
    try {
      const file = join(dir, 'keys.json');
      const first = await createKeyRingFile(file);
      const announced = [first];
      let refused = 0;
      // As in the report: ten tries, each of several rotations started together.
      for (let round = 0; round < 10; round++) {
        const results = await Promise.allSettled(Array.from({ length: 4 }, () => rotateKeyRingFile(file)));
        for (const result of results) {
          if (result.status === 'fulfilled') announced.push(result.value);
          else {
            refused++;
            assert.match(
              (result.reason as Error).message,
              /another rotation of key ring .*keys\.json is in progress .*this rotation changed nothing/,
            );
          }
        }
      }
      const kept = keyIds(await readFile(file, 'utf8'));
      assert.deepEqual(kept, announced, 'every announced key is in the ring, in order, and nothing else');
      assert.ok(refused > 0, 'rotations started together did overlap');
      assert.deepEqual(await leftovers(dir, ['keys.json']), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names a lock left by a rotation that died, and leaves it for the operator to remove', async () => {
    const dir = await scratch();
    try {
      const file = join(dir, 'keys.json');
      await createKeyRingFile(file);
      const dead = spawn(process.execPath, ['-e', '']);
      const deadPid = await new Promise<number>((resolve) => dead.on('close', () => resolve(dead.pid ?? 0)));
      const lock = `${await realpath(file)}.lock`;
      const { hostname } = await import('node:os');
      await writeFile(
        lock,
        JSON.stringify({ pid: deadPid, host: hostname(), since: new Date().toISOString() }),
      );
      await assert.rejects(rotateKeyRingFile(file), (error: Error) => {
        assert.match(error.message, new RegExp(`pid ${deadPid} is not running.*delete .*keys\\.json\\.lock`));
        return true;
      });
      assert.ok((await stat(lock)).isFile(), 'a lock this rotation did not take is not removed');
      assert.equal(keyIds(await readFile(file, 'utf8')).length, 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('keyring rotate and create: the files around the ring', () => {
  it('through a symlink, rotates the file it points to and keeps the link', async () => {
    const dir = await scratch();
    try {
      await mkdir(join(dir, 'real'));
      const real = join(dir, 'real', 'keys.json');
      await createKeyRingFile(real);
      const link = join(dir, 'keys.json');
      await symlink(real, link);
      const id = await rotateKeyRingFile(link);
      assert.ok((await lstat(link)).isSymbolicLink(), 'the link is still a link');
      assert.equal((await readKeyRing(real)).current, id, 'the real ring has the new key');
      assert.deepEqual(await leftovers(join(dir, 'real'), ['keys.json']), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('create refuses an existing file and leaves it as it was', async () => {
    const dir = await scratch();
    try {
      const file = join(dir, 'keys.json');
      await writeFile(file, 'my notes', { mode: 0o600 });
      await assert.rejects(createKeyRingFile(file), /exists; use "keyring rotate"/);
      assert.equal(await readFile(file, 'utf8'), 'my notes');
      assert.deepEqual(await leftovers(dir, ['keys.json']), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A logger that keeps every warning's message. */
function warningLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const ignore = (): void => undefined;
  const logger: Logger = {
    trace: ignore,
    debug: ignore,
    info: ignore,
    warn: (fields: unknown, message?: string) => {
      warnings.push(typeof fields === 'string' ? fields : (message ?? ''));
    },
    error: ignore,
    child: () => logger,
  };
  return { logger, warnings };
}

describe('local provider: who may read the key ring', () => {
  for (const mode of [0o644, 0o604, 0o602, 0o606]) {
    it(`refuses a ring others may access (mode 0${mode.toString(8)}), at start and at rotation`, async () => {
      const dir = await scratch();
      try {
        const file = join(dir, 'keys.json');
        await createKeyRingFile(file);
        await chmod(file, mode);
        await assert.rejects(
          LocalKeyProvider.open(
            { keyFile: file, createIfMissing: false },
            createTestProviderContext({ configDir: dir }),
          ),
          /accessible to every user of the machine \(mode 0\d+\).*chmod 600/,
        );
        await assert.rejects(rotateKeyRingFile(file), /refusing to rotate: .*accessible to every user/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it('serves a ring its group may read, with a warning at start and at rotation', async () => {
    const dir = await scratch();
    try {
      const file = join(dir, 'keys.json');
      await createKeyRingFile(file);
      await chmod(file, 0o640);
      const { logger, warnings } = warningLogger();
      const provider = await LocalKeyProvider.open(
        { keyFile: file, createIfMissing: false },
        createTestProviderContext({ configDir: dir, logger }),
      );
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? '', /accessible to its group \(mode 0640, gid \d+\)/);
      const rotationWarnings: string[] = [];
      await rotateKeyRingFile(file, { onWarning: (message) => rotationWarnings.push(message) });
      assert.match(rotationWarnings[0] ?? '', /accessible to its group/);
      await provider.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a ring made world-readable while serving is not re-read: unhealthy, serving the ring it has', async () => {
    const dir = await scratch();
    try {
      const file = join(dir, 'keys.json');
      await createKeyRingFile(file);
      const provider = await LocalKeyProvider.open(
        { keyFile: file, createIfMissing: false },
        createTestProviderContext({ configDir: dir }),
      );
      const { testRequestContext } = await import('@trousseau/testing');
      const healthy = await provider.status(testRequestContext());
      assert.ok(healthy.healthy);
      await chmod(file, 0o644);
      const status = await provider.status(testRequestContext());
      assert.equal(status.healthy, false);
      assert.match(
        status.healthy ? '' : status.reason,
        /not re-read, serving the last good one: .*every user/,
      );
      assert.equal(status.keyId, healthy.keyId);
      await chmod(file, 0o600);
      assert.ok((await provider.status(testRequestContext())).healthy, 'recovers once the mode is fixed');
      await provider.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
