import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { claimSocketPath, temporarySocketPath } from '../src/socket-file.js';
import { removeDir, scratchDir } from './helpers.js';

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
    const temporary = temporarySocketPath(path);
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
    const temporary = temporarySocketPath(path);
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
