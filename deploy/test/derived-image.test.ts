// A third-party provider in the deployment we ship, tried the way its author and an operator would:
// `npm pack` the example provider, install the tarball as examples/provider-example/Dockerfile.derived
// does, into the file layout that image has (/app is the server's install, /app/providers the providers
// directory, the config in /etc/trousseau), all under a temp directory, and serve through it.
// Docker itself does not run here: the layout stands in for the image.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { KmsClient } from '@trousseau/core/grpc';
import { derivedRecipe } from './support/derived-recipe.js';
import { repoPath } from './support/paths.js';
import { startNodeProcess } from '@trousseau/testing';

const run = promisify(execFile);
const SERVER = repoPath('packages', 'server');
const EXAMPLE = repoPath('examples', 'provider-example');

interface Manifest {
  readonly name: string;
  readonly bin?: Record<string, string>;
  readonly files?: readonly string[];
  readonly dependencies?: Record<string, string>;
}

async function readManifest(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/**
 * The image's /app: what the server's package.json "files" ships (the compiled files and the bundle the
 * bin runs) and its production dependencies (as `pnpm deploy --prod`).
 */
async function layOutServerInstall(app: string): Promise<void> {
  const manifest = await readManifest(SERVER);
  for (const shipped of manifest.files ?? []) {
    await cp(join(SERVER, shipped), join(app, shipped), { recursive: true });
  }
  await cp(join(SERVER, 'package.json'), join(app, 'package.json'));
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    const link = join(app, 'node_modules', name);
    await mkdir(dirname(link), { recursive: true });
    await symlink(await realpath(join(SERVER, 'node_modules', name)), link);
  }
}

/**
 * The recipe's install step: a package.json, then `npm install` with the recipe's own options and the
 * tarball. The suite runs offline, so the provider's dependencies, which the image build fetches from the
 * registry, are handed to npm from the workspace's install; npm itself runs as in the recipe.
 */
async function installTarball(providersDir: string, tarball: string, npmCache: string): Promise<void> {
  await mkdir(providersDir, { recursive: true });
  await writeFile(join(providersDir, 'package.json'), '{"private": true}\n');
  const dependencies = await Promise.all(
    Object.keys((await readManifest(EXAMPLE)).dependencies ?? {}).map((name) =>
      realpath(join(EXAMPLE, 'node_modules', name)),
    ),
  );
  await run('npm', ['install', ...derivedRecipe().npmInstallFlags, '--offline', ...dependencies, tarball], {
    cwd: providersDir,
    env: npmEnv(npmCache),
  });
}

function npmEnv(cache: string): NodeJS.ProcessEnv {
  return { ...process.env, npm_config_cache: cache, npm_config_update_notifier: 'false' };
}

/** The server's environment with no providers path of the machine's own. */
function serverEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (extra['TROUSSEAU_PROVIDERS_PATH'] === undefined) delete env['TROUSSEAU_PROVIDERS_PATH'];
  return env;
}

describe('a third-party provider in the shipped image layout', () => {
  let root: string;
  /** The simulated image's paths. */
  let app: string;
  let bin: string;
  /** The same bin in the repository's build, whose install is packages/server. */
  let repositoryBin: string;
  let providersDir: string;
  let configDir: string;
  let socket: string;
  let tarball: string;
  let npmCache: string;

  const writeConfig = async (type: string): Promise<string> => {
    const file = join(configDir, 'config.yaml');
    await writeFile(
      file,
      `version: 1
socket:
  path: ${socket}
providers:
  - name: example
    type: ${JSON.stringify(type)}
    config:
      passphrase: { file: ${join(root, 'var', 'run', 'secrets', 'trousseau', 'passphrase')} }
`,
    );
    return file;
  };

  before(async () => {
    const server = await readManifest(SERVER);
    const binInPackage = server.bin?.['trousseau'];
    assert.ok(binInPackage, 'the server package names its trousseau bin');
    repositoryBin = join(SERVER, binInPackage);
    for (const built of [repositoryBin, join(EXAMPLE, 'dist', 'src', 'index.js')]) {
      assert.ok(existsSync(built), `${built} exists: build the workspace first (pnpm build)`);
    }
    root = await realpath(await mkdtemp(join(tmpdir(), 'trousseau-derived-image-')));
    npmCache = join(root, 'npm-cache');
    // The image's paths, under root: the server installed at /app (its ENTRYPOINT runs /app/<bin>).
    app = join(root, 'app');
    bin = join(app, binInPackage);
    const recipe = derivedRecipe();
    assert.ok(recipe.providersDir.startsWith('/app/'), 'the recipe installs providers inside /app');
    providersDir = join(root, recipe.providersDir);
    configDir = join(root, 'etc', 'trousseau');
    socket = join(root, 'var', 'run', 'trousseau', 'kms.sock');
    await mkdir(dirname(socket), { recursive: true });
    await mkdir(configDir, { recursive: true });
    await mkdir(join(root, 'var', 'run', 'secrets', 'trousseau'), { recursive: true });
    await writeFile(
      join(root, 'var', 'run', 'secrets', 'trousseau', 'passphrase'),
      'correct horse battery\n',
    );

    // The author packs the built example, as they would before publishing it.
    const packDir = join(root, 'pack');
    await mkdir(packDir);
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', packDir], {
      cwd: EXAMPLE,
      env: npmEnv(npmCache),
    });
    const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    assert.ok(packed, 'npm pack reports the tarball');
    assert.ok(
      packed.files.some((file) => file.path === 'dist/src/index.js'),
      'the tarball ships the built entry',
    );
    tarball = join(packDir, packed.filename);

    await layOutServerInstall(app);
    await installTarball(providersDir, tarball, npmCache);
  });

  after(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('serves Encrypt and Decrypt through the package installed in /app/providers, with no flag', async () => {
    const example = await readManifest(EXAMPLE);
    assert.ok(
      existsSync(join(providersDir, 'node_modules', example.name, 'package.json')),
      'the tarball is installed in the providers directory',
    );
    assert.ok(
      !existsSync(join(providersDir, 'node_modules', '@trousseau', 'core')),
      "core is not installed beside the provider: the server's install provides it",
    );
    assert.ok(!existsSync(join(app, 'node_modules', example.name)), 'the server install has no copy of it');

    const config = await writeConfig(example.name);
    const serve = startNodeProcess(bin, ['serve', '--config', config], { env: serverEnv() });
    try {
      await serve.waitFor('trousseau is serving');
      const client = new KmsClient(socket);
      try {
        const status = await client.status();
        assert.equal(status.healthz, 'ok');
        const seed = randomBytes(32);
        const encrypted = await client.encrypt(seed);
        assert.equal(encrypted.key_id, status.key_id);
        const decrypted = await client.decrypt({
          ciphertext: encrypted.ciphertext,
          keyId: encrypted.key_id,
          annotations: encrypted.annotations,
        });
        assert.deepEqual(Buffer.from(decrypted.plaintext), seed);
      } finally {
        client.close();
      }
      assert.equal(await serve.stop('SIGTERM'), 0, serve.output());
    } finally {
      await serve.stop('SIGKILL');
    }
  });

  it('passes `trousseau check`, run by the repository build with --providers-dir naming the directory', async () => {
    const config = await writeConfig((await readManifest(EXAMPLE)).name);
    const check = startNodeProcess(
      repositoryBin,
      ['check', '--config', config, '--providers-dir', providersDir],
      { env: serverEnv() },
    );
    assert.equal(await check.exited, 0, check.output());
    assert.match(check.output(), /✔ example \(@trousseau\/provider-example, encrypts\): healthy/);
    assert.match(check.output(), /all 1 provider\(s\) OK/);
  });

  it('names every place it looked, and how to install, for a package that is not installed', async () => {
    const config = await writeConfig('acme-trousseau-provider');
    const serve = startNodeProcess(bin, ['serve', '--config', config], { env: serverEnv() });
    assert.equal(await serve.exited, 2, serve.output());
    const output = serve.output();
    assert.match(output, /npm package "acme-trousseau-provider" cannot be found/);
    assert.ok(output.includes(`${providersDir} (the default providers directory)`), output);
    assert.ok(output.includes(`${app} (the server's own install)`), output);
    assert.ok(
      output.includes(
        `in ${providersDir}: npm install --omit=dev --legacy-peer-deps acme-trousseau-provider`,
      ),
      output,
    );
  });

  it('says where core comes from when the same install lies outside the server install', async () => {
    const elsewhere = join(root, 'opt', 'providers');
    await installTarball(elsewhere, tarball, npmCache);
    const config = await writeConfig((await readManifest(EXAMPLE)).name);
    const hint = (install: string): string =>
      `@trousseau/core is a peer dependency that the server's own install provides: a provider finds it when it is installed in a providers directory inside ${install}`;
    // Named by the variable to the image's server, and by the flag to the repository build, whose own
    // install also has the example (a dev dependency): the directory named is searched first.
    for (const [script, args, env, install] of [
      [bin, [], serverEnv({ TROUSSEAU_PROVIDERS_PATH: elsewhere }), app],
      [repositoryBin, ['--providers-dir', elsewhere], serverEnv(), SERVER],
    ] as const) {
      const serve = startNodeProcess(script, ['serve', '--config', config, ...args], { env });
      assert.equal(await serve.exited, 2, serve.output());
      assert.match(serve.output(), /Cannot find package '@trousseau\/core'/);
      assert.ok(serve.output().includes(hint(install)), serve.output());
    }
  });

  it('refuses a provider file shipped beside the config (a ConfigMap), without running it', async () => {
    const marker = join(root, 'ran');
    await writeFile(
      join(configDir, 'provider.mjs'),
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'ran');\nexport default {};\n`,
    );
    const config = await writeConfig('./provider.mjs');
    const serve = startNodeProcess(bin, ['serve', '--config', config], { env: serverEnv() });
    assert.equal(await serve.exited, 2, serve.output());
    assert.ok(
      serve.output().includes(`${join(configDir, 'provider.mjs')} is outside every providers directory`),
      serve.output(),
    );
    assert.ok(!existsSync(marker), 'the file beside the config never ran');
  });
});
