import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';

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

function parseKeyRing(text: string, file: string): KeyRing {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`key ring ${file} is not valid JSON`, { cause: error });
  }
  const result = keyRingSchema.safeParse(json);
  if (!result.success) {
    const first = result.error.issues[0];
    const where = first === undefined ? '' : first.path.map(String).join('.');
    throw new Error(`key ring ${file} is invalid: ${where}: ${first?.message ?? 'unknown'}`);
  }
  return {
    current: result.data.current,
    keys: new Map(result.data.keys.map((key) => [key.id, Buffer.from(key.material, 'base64')])),
  };
}

export async function readKeyRing(file: string): Promise<KeyRing> {
  return parseKeyRing(await readFile(file, 'utf8'), file);
}

function newKeyId(now: Date): string {
  return `key-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

async function writeKeyRingFile(file: string, ring: KeyRingFile): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(ring, null, 2)}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, file);
}

/** Writes a new key ring with one fresh random key (mode 0600). */
export async function createKeyRingFile(file: string, now = new Date()): Promise<string> {
  const id = newKeyId(now);
  await writeKeyRingFile(file, {
    version: 1,
    current: id,
    keys: [{ id, material: randomBytes(KEY_BYTES).toString('base64'), createdAt: now.toISOString() }],
  });
  return id;
}

/** Adds a fresh key to an existing ring and makes it current; older keys stay for decryption. */
export async function rotateKeyRingFile(file: string, now = new Date()): Promise<string> {
  const text = await readFile(file, 'utf8');
  parseKeyRing(text, file);
  const ring = keyRingSchema.parse(JSON.parse(text));
  const id = newKeyId(now);
  await writeKeyRingFile(file, {
    ...ring,
    current: id,
    keys: [
      ...ring.keys,
      { id, material: randomBytes(KEY_BYTES).toString('base64'), createdAt: now.toISOString() },
    ],
  });
  return id;
}
