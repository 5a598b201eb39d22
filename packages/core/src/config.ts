import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import * as z from 'zod';
import { ConfigError, formatConfigPath, type ConfigIssue } from './config-error.js';
import { INSTANCE_NAME_PATTERN } from './envelope.js';
import { MAX_COPIES } from './replicated-envelope.js';

const providerEntrySchema = z.strictObject({
  name: z
    .string()
    .regex(
      INSTANCE_NAME_PATTERN,
      'must be 1-63 characters of a-z, 0-9 and "-", starting and ending alphanumeric',
    ),
  type: z
    .string()
    .min(
      1,
      'must name a built-in provider (local, vault, awskms, azure), an npm package or a file in a providers directory',
    ),
  config: z.record(z.string(), z.unknown()).default({}),
});

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** The config file, version 1. Unknown keys are errors, so a typo never passes silently. */
export const configSchema = z
  .strictObject({
    version: z.literal(1, 'must be 1 (the only config version this build reads)'),
    socket: z
      .strictObject({
        path: z.string().min(1).default('/var/run/trousseau/kms.sock'),
        mode: z
          .string()
          .regex(/^0?[0-7]{3}$/, 'must be an octal mode such as "0600"')
          .default('0600'),
        uid: z.number().int().nonnegative().optional(),
        gid: z.number().int().nonnegative().optional(),
        /**
         * Let every user of the machine connect (a mode with bits for others). Whoever can connect can
         * decrypt every Secret, so a mode that gives others access is refused unless this says so.
         */
        allowOthers: z.boolean().default(false),
        /** What one client may hold: bounds against idle, slow or hostile connections. */
        limits: z
          .strictObject({
            /** Connections open at once; at the cap a new one closes the least active one. */
            maxConnections: z.number().int().min(1).max(10_000).default(64),
            /** A connection must send the HTTP/2 preface within this many seconds. */
            handshakeTimeoutSeconds: z.number().positive().max(300).default(10),
            /** A connection with no call in flight this long is closed (the apiserver polls every 60 s). */
            idleTimeoutSeconds: z.number().min(1).max(86_400).default(300),
            /** Calls in flight at once on one connection. */
            maxConcurrentStreams: z.number().int().min(1).max(100_000).default(1024),
          })
          .prefault({}),
      })
      .prefault({}),
    /**
     * The provider instance for new encryptions, or a list of them: every data key is then wrapped by each
     * (replicated encryption, envelope version 4), and any one copy can decrypt it.
     */
    encryptWith: z
      .union([
        z.string(),
        z
          .array(z.string())
          .min(1, 'must name at least one provider')
          .max(MAX_COPIES, `lists at most ${MAX_COPIES} providers`),
      ])
      .optional(),
    /**
     * Replicated encryption: how many of the `encryptWith` providers must wrap a data key for Encrypt to
     * succeed (default: all of them). Fewer lets writes go on while one KMS is down, at the price of data
     * keys written meanwhile having fewer copies (docs/operations.md).
     */
    minCopies: z.number().int().min(1).optional(),
    providers: z.array(providerEntrySchema).min(1, 'must list at least one provider'),
    kms: z
      .strictObject({
        /** What v2 Status answers as `version`: "v2" for Kubernetes 1.29+, "v2beta1" for 1.27-1.28. */
        statusVersion: z.enum(['v2', 'v2beta1']).default('v2'),
        /** How often the background health check asks each provider, in seconds. */
        healthCheckIntervalSeconds: z.number().positive().max(3600).default(10),
        /** Largest plaintext accepted, in bytes (kube-apiserver sends 32-byte keys). */
        maxPlaintextBytes: z.number().int().min(32).max(4096).default(512),
        /**
         * The ciphertext envelope version new encryptions are written in: 2 authenticates every byte; 1 only
         * while a Trousseau that cannot read version 2 still serves an apiserver of the same cluster.
         */
        envelopeVersion: z
          .union([z.literal(1), z.literal(2)], 'must be 1 or 2 (docs/ciphertext-format.md)')
          .default(2),
      })
      .prefault({}),
    health: z
      .strictObject({
        /** host:port of the HTTP side listener (/livez, /readyz, /healthz, /metrics); off when unset. */
        listen: z
          .string()
          .regex(
            /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/,
            'must be host:port, such as "127.0.0.1:8787"',
          )
          .optional(),
      })
      .prefault({}),
    logging: z
      .strictObject({
        level: z.enum(LOG_LEVELS).default('info'),
        format: z.enum(['json', 'pretty']).default('json'),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    const mode = Number.parseInt(config.socket.mode, 8);
    if ((mode & 0o007) !== 0 && !config.socket.allowOthers) {
      ctx.addIssue({
        code: 'custom',
        path: ['socket', 'mode'],
        message: `"${config.socket.mode}" lets every user of the machine connect, and whoever connects can decrypt every Secret: use "0600" (root-only), or "0660" with socket.gid for the apiserver's group; set socket.allowOthers: true only if every user may`,
      });
    }
    const port = /:(\d+)$/.exec(config.health.listen ?? '')?.[1];
    if (port !== undefined && Number(port) > 65_535) {
      ctx.addIssue({
        code: 'custom',
        path: ['health', 'listen'],
        message: `port ${port} is over 65535`,
      });
    }
    const seen = new Set<string>();
    config.providers.forEach((provider, index) => {
      if (seen.has(provider.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['providers', index, 'name'],
          message: `duplicate provider name "${provider.name}"`,
        });
      }
      seen.add(provider.name);
    });
    if (config.encryptWith === undefined) {
      if (config.providers.length > 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['encryptWith'],
          message: 'is required when more than one provider is listed: name the provider for new encryptions',
        });
      }
    } else {
      const names = typeof config.encryptWith === 'string' ? [config.encryptWith] : config.encryptWith;
      const listed = new Set<string>();
      names.forEach((name, index) => {
        const path = typeof config.encryptWith === 'string' ? ['encryptWith'] : ['encryptWith', index];
        if (!seen.has(name)) {
          ctx.addIssue({
            code: 'custom',
            path,
            message: `names "${name}", which is not in providers (${[...seen].join(', ')})`,
          });
        } else if (listed.has(name)) {
          ctx.addIssue({ code: 'custom', path, message: `lists "${name}" twice` });
        }
        listed.add(name);
      });
    }
    const listedCount =
      config.encryptWith === undefined || typeof config.encryptWith === 'string'
        ? 1
        : config.encryptWith.length;
    if (config.minCopies !== undefined && config.minCopies > listedCount) {
      ctx.addIssue({
        code: 'custom',
        path: ['minCopies'],
        message: `is ${config.minCopies}, but encryptWith lists ${listedCount} provider(s)`,
      });
    }
  });

export type TrousseauConfig = z.output<typeof configSchema>;
export type ProviderEntry = TrousseauConfig['providers'][number];

/** A validated config with where it came from. */
export interface LoadedConfig {
  readonly config: TrousseauConfig;
  /** Absolute path of the file, or a label such as `(embedded default)`. */
  readonly file: string;
  /** Directory that relative paths in the file resolve against. */
  readonly dir: string;
}

/** The providers new encryptions are wrapped by, in order (one unless encryption is replicated). */
export function encryptingProviders(config: TrousseauConfig): string[] {
  if (config.encryptWith === undefined) return [encryptingProvider(config).name];
  return typeof config.encryptWith === 'string' ? [config.encryptWith] : [...config.encryptWith];
}

/** The provider used for new encryptions: the first listed when encryption is replicated. */
export function encryptingProvider(config: TrousseauConfig): ProviderEntry {
  const name =
    (typeof config.encryptWith === 'string' ? config.encryptWith : config.encryptWith?.[0]) ??
    config.providers[0]?.name;
  const entry = config.providers.find((provider) => provider.name === name);
  if (entry === undefined) throw new Error('unreachable: config validation guarantees the provider exists');
  return entry;
}

/** Validates a parsed document; errors name `file` and the path of every bad field. */
export function parseConfig(value: unknown, file: string, dir: string): LoadedConfig {
  // Without zod's compiled fast path: a config is parsed a few times in a process's life, and compiling
  // the parser (`new Function`) cost a start more than the parse itself (issue 12).
  const result = configSchema.safeParse(value, { jitless: true });
  if (!result.success) {
    const issues: ConfigIssue[] = result.error.issues.map((issue) => ({
      path: formatConfigPath(issue.path),
      message: issue.message,
    }));
    throw new ConfigError(file, issues);
  }
  const config = {
    ...result.data,
    socket: { ...result.data.socket, path: resolve(dir, result.data.socket.path) },
  };
  return { config, file, dir };
}

/** Reads, parses (YAML or JSON) and validates a config file. */
export async function loadConfigFile(path: string): Promise<LoadedConfig> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : 'cannot be read';
    throw new ConfigError(file, [{ path: '', message: reason }], { cause: error });
  }
  // The YAML parser is loaded with the first file read: the embedded default and the CLI never need it.
  const { parseDocument } = await import('yaml');
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      file,
      document.errors.map((error) => ({ path: '', message: `YAML syntax: ${error.message}` })),
    );
  }
  let value: unknown;
  try {
    // The yaml package refuses a document whose aliases would expand past its limit (an alias bomb).
    value = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new ConfigError(
      file,
      [{ path: '', message: `YAML: ${error instanceof Error ? error.message : String(error)}` }],
      { cause: error },
    );
  }
  return parseConfig(value, file, dirname(file));
}
