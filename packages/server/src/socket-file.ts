import { randomBytes } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, readdir, rm, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { TrousseauError, type Logger } from '@trousseau/core';

/** Linux limits a unix socket path to 107 bytes. */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * A fresh name to bind a socket under before it is renamed into place: same directory, so the rename is
 * atomic; random, so two instances sharing the directory (containers are all pid 1) never collide.
 */
export function temporarySocketPath(path: string): string {
  return join(dirname(path), `.trousseau-${randomBytes(6).toString('hex')}.sock`);
}

const TEMPORARY_NAME = /^\.trousseau-[0-9a-f]{12}\.sock$/;

/**
 * Whether a process serves the socket: only a refused connection proves nobody does. Any other failure
 * (no permission, a full accept queue) is treated as live, so a start never deletes a serving socket.
 */
function probe(path: string): Promise<'live' | 'stale'> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve('live');
    });
    // ECONNREFUSED: a socket file nobody serves; ENOENT: it vanished meanwhile. Both are free to take.
    socket.once('error', (error: NodeJS.ErrnoException) =>
      resolve(error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? 'stale' : 'live'),
    );
  });
}

/**
 * Makes the socket path ready to bind: creates its directory, replaces a stale socket left by a dead
 * process, and refuses a live one or a path that is not a socket.
 */
export async function prepareSocketPath(path: string, logger: Logger): Promise<void> {
  // The temporary name has a fixed length: checking one checks them all.
  for (const candidate of [path, temporarySocketPath(path)]) {
    if (Buffer.byteLength(candidate) > MAX_SOCKET_PATH_BYTES) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CONFIG_INVALID',
        `socket path ${candidate} is ${Buffer.byteLength(candidate)} bytes; unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}`,
      );
    }
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  await removeLeftoverTemporaries(dirname(path));
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!isSocket) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_SOCKET_IN_USE',
      `${path} exists and is not a socket; refusing to replace it`,
    );
  }
  if ((await probe(path)) === 'live') {
    throw new TrousseauError(
      'TROUSSEAU_ERR_SOCKET_IN_USE',
      `another process is serving on ${path} (or it cannot be probed); stop it first or choose another socket path`,
    );
  }
  logger.warn({ socket: path }, 'replacing a stale socket left by a process that is gone');
  await rm(path, { force: true });
}

/**
 * Puts the bound socket `temporary` at `path` with a hard link, which fails when `path` exists: another
 * instance that bound it since the stale check keeps its socket, and this start fails clearly.
 */
export async function claimSocketPath(temporary: string, path: string): Promise<void> {
  try {
    await link(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new TrousseauError(
        'TROUSSEAU_ERR_SOCKET_IN_USE',
        `another process bound ${path} while this one was starting; stop one of them`,
      );
    }
    throw error;
  }
}

/** Removes temporary socket names left by an instance that died between bind and link, if nobody serves them. */
async function removeLeftoverTemporaries(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.filter((candidate) => TEMPORARY_NAME.test(candidate))) {
    const path = join(dir, name);
    if ((await probe(path)) === 'stale') await rm(path, { force: true });
  }
}

/** Applies the configured mode and owner to a freshly bound socket. */
export async function secureSocket(
  path: string,
  options: { mode: string; uid?: number; gid?: number },
): Promise<void> {
  await chmod(path, Number.parseInt(options.mode, 8));
  if (options.uid !== undefined || options.gid !== undefined) {
    await chown(path, options.uid ?? -1, options.gid ?? -1);
  }
}

/** Identifies the socket file this process bound, so a stop never removes another process's socket. */
export async function socketIdentity(path: string): Promise<string> {
  const info = await lstat(path);
  return `${info.dev}:${info.ino}`;
}

/**
 * Removes the socket file if it is still the one this process bound (`identity`): when the file was
 * deleted and another process now serves at the path, it is left alone. A missing file is fine.
 */
export async function removeSocket(path: string, identity: string): Promise<void> {
  try {
    if ((await socketIdentity(path)) !== identity) return;
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
