import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { link, mkdir, open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import * as z from 'zod';

/** AES-256 keys are 32 bytes. */
const KEY_BYTES = 32;

const keyEntrySchema = z.strictObject({
  /** Stable name of the key; stored in every envelope it makes, so never reuse one for other material. */
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -'),
  /** base64 of 32 random bytes. */
  material: z.base64().refine((value) => Buffer.from(value, 'base64').length === KEY_BYTES, {
    message: `must be base64 of exactly ${KEY_BYTES} bytes`,
  }),
  createdAt: z.iso.datetime().optional(),
});

/** The key-ring file: several keys, one of them current. Older keys stay to decrypt older ciphertexts. */
const keyRingSchema = z
  .strictObject({
    version: z.literal(1),
    current: z.string(),
    keys: z.array(keyEntrySchema).min(1),
  })
  .superRefine((ring, ctx) => {
    const ids = new Set<string>();
    ring.keys.forEach((key, index) => {
      if (ids.has(key.id))
        ctx.addIssue({
          code: 'custom',
          path: ['keys', index, 'id'],
          message: `duplicate key id "${key.id}"`,
        });
      ids.add(key.id);
    });
    if (!ids.has(ring.current)) {
      ctx.addIssue({
        code: 'custom',
        path: ['current'],
        message: `names "${ring.current}", which is not in keys`,
      });
    }
  });

type KeyRingFile = z.infer<typeof keyRingSchema>;

/** A loaded key ring: key material by id, and the current id. */
export interface KeyRing {
  readonly current: string;
  readonly keys: ReadonlyMap<string, Buffer>;
}

function parseKeyRingFile(text: string, file: string): KeyRingFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`key ring ${file} is not valid JSON`, { cause: error });
  }
  // Read at start and on reload only: zod's compiled fast path would cost more than it saves.
  const result = keyRingSchema.safeParse(json, { jitless: true });
  if (!result.success) {
    const first = result.error.issues[0];
    const where = first === undefined ? '' : first.path.map(String).join('.');
    throw new Error(`key ring ${file} is invalid: ${where}: ${first?.message ?? 'unknown'}`);
  }
  return result.data;
}

function toKeyRing(ring: KeyRingFile): KeyRing {
  return {
    current: ring.current,
    keys: new Map(ring.keys.map((key) => [key.id, Buffer.from(key.material, 'base64')])),
  };
}

export async function readKeyRing(file: string): Promise<KeyRing> {
  return toKeyRing(parseKeyRingFile(await readFile(file, 'utf8'), file));
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/**
 * What the permissions of a key ring allow: `refuse` when others (not owner, not group) have any access,
 * since anyone on the node could then read every key; `warn` when its group has access. The reason
 * says what to do.
 */
export function keyRingPermissionProblem(
  file: string,
  info: Pick<Stats, 'mode' | 'gid'>,
): { readonly severity: 'refuse' | 'warn'; readonly reason: string } | undefined {
  if ((info.mode & 0o007) !== 0) {
    return {
      severity: 'refuse',
      reason: `key ring ${file} is accessible to every user of the machine (mode ${octal(info.mode)}): anyone can read the keys; run "chmod 600 ${file}" (or 640 for a group that must read it) and check who may have copied it`,
    };
  }
  if ((info.mode & 0o070) !== 0) {
    return {
      severity: 'warn',
      reason: `key ring ${file} is accessible to its group (mode ${octal(info.mode)}, gid ${info.gid}): every member can read the keys; run "chmod 600 ${file}" unless that group must read it`,
    };
  }
  return undefined;
}

function newKeyId(now: Date): string {
  return `key-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

function serialize(ring: KeyRingFile): string {
  return `${JSON.stringify(ring, null, 2)}\n`;
}

/**
 * Writes `text` to a new file beside `target` that nobody else can have created (exclusive create, a
 * random name), owned by `uid`/`gid` with `mode`, flushed to disk. Returns its path; the caller renames or
 * links it into place, and on failure it is removed. Nothing but this new file is ever written or deleted.
 */
async function writeNewFile(
  target: string,
  text: string,
  owner: { mode: number; uid?: number; gid?: number },
): Promise<string> {
  const temporary = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  // Created 0600 and only then given the final mode and owner: never readable by more than intended.
  const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    if (owner.uid !== undefined && owner.gid !== undefined) {
      try {
        await handle.chown(owner.uid, owner.gid);
      } catch (error) {
        throw new Error(
          `cannot keep the owner of key ring ${target} (uid ${owner.uid}, gid ${owner.gid}): this process (uid ${process.getuid?.() ?? '?'}) may not give a file to them; run the rotation as that user or as root. The key ring was not changed`,
          { cause: error },
        );
      }
    }
    await handle.chmod(owner.mode & 0o777);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await handle.close();
  return temporary;
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY).catch(() => undefined);
  if (handle === undefined) return;
  try {
    await handle.sync();
  } catch {
    // Some file systems cannot sync a directory; the rename is still atomic.
  } finally {
    await handle.close();
  }
}

/** Writes a new key ring with one fresh random key (mode 0600); refuses when `file` exists. */
export async function createKeyRingFile(file: string, now = new Date()): Promise<string> {
  const id = newKeyId(now);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const text = serialize({
    version: 1,
    current: id,
    keys: [{ id, material: randomBytes(KEY_BYTES).toString('base64'), createdAt: now.toISOString() }],
  });
  const temporary = await writeNewFile(file, text, { mode: 0o600 });
  try {
    // A hard link fails when the name exists: an existing ring (or anything else) is never replaced.
    await link(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new Error(`${file} exists; use "keyring rotate" to add a key`, { cause: error });
    }
    throw error;
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
  await syncDirectory(dirname(file));
  return id;
}

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the rotation lock of `target` (`<target>.lock`, created exclusively), or fails naming who holds
 * it. Returns the release function, which removes only the lock file this call created.
 */
async function lockForRotation(target: string): Promise<() => Promise<void>> {
  const lock = `${target}.lock`;
  const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  try {
    const handle = await open(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    await handle.writeFile(JSON.stringify(owner));
    await handle.close();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    let holder = 'another process';
    let stale = '';
    try {
      const held = JSON.parse(await readFile(lock, 'utf8')) as Partial<LockOwner>;
      holder = `pid ${String(held.pid)} on ${String(held.host)} since ${String(held.since)}`;
      if (held.host === owner.host && typeof held.pid === 'number' && !isRunning(held.pid)) {
        stale = `; pid ${held.pid} is not running, so a rotation died holding it: delete ${lock} and rotate again`;
      }
    } catch {
      // Unreadable or half-written: say what we know.
    }
    throw new Error(
      `another rotation of key ring ${target} is in progress (${lock} is held by ${holder}); this rotation changed nothing. Run it again once that one has finished${stale}`,
      { cause: error },
    );
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await unlink(lock).catch(() => undefined);
  };
}

export interface RotateOptions {
  readonly now?: Date;
  /** Told about a ring that is served but should be tightened (group access). */
  readonly onWarning?: (message: string) => void;
}

/**
 * Adds a fresh key to an existing ring and makes it current; older keys stay for decryption. Through a
 * symlink, the file it points to is rotated. The file keeps its owner, group and mode (a rotation run
 * by root does not take the ring away from the service account that reads it), or the rotation fails
 * changing nothing. Overlapping rotations are serialized by a lock file: the later one fails clearly,
 * so a key that was announced is never lost; a write to the ring by anything else between reading and
 * replacing it fails the rotation too.
 */
export async function rotateKeyRingFile(file: string, options: RotateOptions | Date = {}): Promise<string> {
  const { now = new Date(), onWarning } = options instanceof Date ? { now: options } : options;
  const target = await realpath(file);
  const release = await lockForRotation(target);
  try {
    const info = await stat(target);
    const problem = keyRingPermissionProblem(target, info);
    if (problem?.severity === 'refuse') throw new Error(`refusing to rotate: ${problem.reason}`);
    if (problem !== undefined) onWarning?.(problem.reason);
    const text = await readFile(target, 'utf8');
    const ring = parseKeyRingFile(text, target);
    const id = newKeyId(now);
    const next = serialize({
      ...ring,
      current: id,
      keys: [
        ...ring.keys,
        { id, material: randomBytes(KEY_BYTES).toString('base64'), createdAt: now.toISOString() },
      ],
    });
    const temporary = await writeNewFile(target, next, { mode: info.mode, uid: info.uid, gid: info.gid });
    try {
      if ((await readFile(target, 'utf8')) !== text) {
        throw new Error(
          `key ring ${target} changed while it was being rotated (by something that does not take ${target}.lock); this rotation changed nothing. Run it again`,
        );
      }
      await rename(temporary, target);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    await syncDirectory(dirname(target));
    return id;
  } finally {
    await release();
  }
}
