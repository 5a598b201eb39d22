import { chmod, chown, link, lstat, mkdir, mkdtemp, readdir, rmdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { TrousseauError, type Logger } from '@trousseau/core';

const MAX_SOCKET_PATH_BYTES = 107;

/** Linux limits a unix socket path to 107 bytes. */
const BIND_DIR_PREFIX = '.trousseau-bind-';
/** mkdtemp's six random characters. */
const BIND_DIR = /^\.trousseau-bind-[A-Za-z0-9]{6}$/;
const BIND_NAME = 'k.sock';
/** The temporary socket name of builds before the bind directory: cleaned up when it is a dead socket of ours. */
const LEGACY_TEMPORARY_NAME = /^\.trousseau-[0-9a-f]{12}\.sock$/;

/**
 * Makes a private directory beside `path` (mode 0700, a name no other file can have: mkdtemp creates it
 * exclusively) and returns the socket name to bind in it. The socket is bound there, given its mode and
 * owner while nobody else can reach it, then linked into place; {@link removeBindDirectory} removes both.
 */
export async function makeBindPath(path: string): Promise<string> {
  return join(await mkdtemp(join(dirname(path), BIND_DIR_PREFIX)), BIND_NAME);
}

/** The longest name {@link makeBindPath} can return for `path`, for the length check. */
function longestBindPath(path: string): string {
  return join(dirname(path), `${BIND_DIR_PREFIX}XXXXXX`, BIND_NAME);
}

/** Removes the bind directory made by {@link makeBindPath}: its socket name, then the directory. */
export async function removeBindDirectory(bindPath: string): Promise<void> {
  await unlink(bindPath).catch(() => undefined);
  await rmdir(dirname(bindPath)).catch(() => undefined);
}

/** Why a socket path cannot be bound, or undefined: unix socket paths are at most 107 bytes on Linux. */
export function socketPathProblem(path: string): string | undefined {
  for (const candidate of [path, longestBindPath(path)]) {
    const bytes = Buffer.byteLength(candidate);
    if (bytes > MAX_SOCKET_PATH_BYTES) {
      return candidate === path
        ? `is ${bytes} bytes (${path}); unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}`
        : `leaves no room to bind beside it: ${candidate} is ${bytes} bytes, and unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}; use a shorter directory`;
    }
  }
  return undefined;
}

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
  const problem = socketPathProblem(path);
  if (problem !== undefined) {
    throw new TrousseauError('TROUSSEAU_ERR_CONFIG_INVALID', `socket path ${problem}`);
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
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
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

/**
 * Removes what an instance that died between bind and link left beside the socket: a bind directory of
 * ours holding only a dead socket, or a dead socket under the temporary name of earlier builds. Only
 * sockets owned by this user that nobody serves count; anything else of those names (a user's file or
 * directory) is left alone.
 */
async function removeLeftoverTemporaries(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const uid = process.geteuid?.();
  const isDeadSocketOfOurs = async (path: string): Promise<boolean> => {
    const info = await lstat(path).catch(() => undefined);
    return info !== undefined && info.isSocket() && info.uid === uid && (await probe(path)) === 'stale';
  };
  for (const name of names) {
    const path = join(dir, name);
    if (LEGACY_TEMPORARY_NAME.test(name)) {
      if (await isDeadSocketOfOurs(path)) await unlink(path).catch(() => undefined);
      continue;
    }
    if (!BIND_DIR.test(name)) continue;
    const info = await lstat(path).catch(() => undefined);
    if (info === undefined || !info.isDirectory() || info.uid !== uid) continue;
    const entries = await readdir(path).catch(() => undefined);
    if (entries === undefined || entries.some((entry) => entry !== BIND_NAME)) continue;
    const socket = join(path, BIND_NAME);
    if (entries.length === 1 && !(await isDeadSocketOfOurs(socket))) continue;
    await removeBindDirectory(socket);
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
