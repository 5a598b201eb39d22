import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DockerfileParser, type Copy, type Dockerfile, type From, type Instruction } from 'dockerfile-ast';
import { DERIVED_DOCKERFILE, derivedRecipe, instructionsOf, parseStages } from './support/derived-recipe.js';
import { repoPath } from './support/paths.js';

const text = readFileSync(repoPath('Dockerfile'), 'utf8');
const dockerfile: Dockerfile = DockerfileParser.parse(text);
const rootPackage = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { packageManager: string };
const serverPackage = JSON.parse(readFileSync(repoPath('packages', 'server', 'package.json'), 'utf8')) as {
  name: string;
  bin: Record<string, string>;
};

/** ARGs declared before the first FROM, by name: what `FROM ${NAME}` expands to. */
const initialArgs = new Map(
  dockerfile
    .getInitialARGs()
    .map((arg) => [arg.getProperty()?.getName() ?? '', arg.getProperty()?.getValue() ?? '']),
);

function expand(value: string): string {
  return value.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_match, name: string) => {
    const resolved = initialArgs.get(name);
    assert.ok(resolved, `ARG ${name} has a default value before the first FROM`);
    return resolved;
  });
}

interface Stage {
  readonly from: From;
  readonly name: string | null;
  readonly image: string;
  readonly instructions: Instruction[];
}

/** The stages in order, each with its instructions (FROM ... up to the next FROM). */
function stages(): Stage[] {
  const result: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = instruction as From;
      const image = expand(from.getArgumentsContent()?.split(/\s+/)[0] ?? '');
      result.push({ from, name: from.getBuildStage(), image, instructions: [] });
    } else {
      result.at(-1)?.instructions.push(instruction);
    }
  }
  return result;
}

const all = stages();
const runtime = all.at(-1);
const keyword = (stage: Stage, name: string): Instruction[] =>
  stage.instructions.filter((instruction) => instruction.getKeyword() === name);
const jsonArgs = (instruction: Instruction): string[] => {
  const parsed = JSON.parse(instruction.getArgumentsContent() ?? 'null') as unknown;
  assert.ok(Array.isArray(parsed), `${instruction.getKeyword()} uses the JSON (exec) form`);
  return parsed as string[];
};

describe('Dockerfile', () => {
  it('is multi-stage: a build stage and a separate runtime stage', () => {
    assert.ok(all.length >= 2, 'at least two stages');
    assert.ok(runtime);
    assert.equal(runtime.name, 'runtime');
    assert.ok(all.slice(0, -1).some((stage) => stage.name === 'build'));
  });

  it('pins a Node 20 base by exact version tag and digest in every stage', () => {
    for (const stage of all) {
      const match = /^(?:docker\.io\/library\/)?node:(?<tag>[^@]+)@sha256:(?<digest>[0-9a-f]{64})$/.exec(
        stage.image,
      );
      assert.ok(match?.groups, `stage ${stage.name ?? '?'}: ${stage.image} is node:<tag>@sha256:<digest>`);
      assert.match(
        match.groups['tag'] ?? '',
        /^20\.\d+\.\d+-(bookworm|bullseye)-slim$/,
        'an exact Node 20 patch version',
      );
    }
  });

  it('installs with the pnpm the repository pins, from the lockfile', () => {
    const build = all.find((stage) => stage.name === 'build');
    assert.ok(build);
    const runs = keyword(build, 'RUN').map((run) => run.getArgumentsContent() ?? '');
    const pnpm = rootPackage.packageManager;
    assert.ok(
      runs.some((run) => run.includes(`corepack prepare ${pnpm}`)),
      `corepack prepares ${pnpm}`,
    );
    assert.ok(
      runs.some((run) => /pnpm install\b.*--frozen-lockfile/.test(run)),
      'pnpm install --frozen-lockfile',
    );
  });

  it('copies every workspace package manifest before the frozen install', () => {
    const build = all.find((stage) => stage.name === 'build');
    assert.ok(build);
    const install = build.instructions.findIndex(
      (instruction) =>
        instruction.getKeyword() === 'RUN' && /pnpm install\b/.test(instruction.getArgumentsContent() ?? ''),
    );
    const copied = new Set(
      build.instructions
        .slice(0, install)
        .filter((instruction) => instruction.getKeyword() === 'COPY')
        .flatMap((instruction) =>
          instruction
            .getArguments()
            .slice(0, -1)
            .map((argument) => argument.getValue()),
        ),
    );
    const manifests = [
      ...['packages', 'examples'].flatMap((root) =>
        readdirSync(repoPath(root)).map((name) => `${root}/${name}/package.json`),
      ),
      'deploy/package.json',
    ].filter((manifest) => existsSync(repoPath(...manifest.split('/'))));
    for (const manifest of ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml', ...manifests]) {
      assert.ok(copied.has(manifest), `COPY ${manifest} before pnpm install --frozen-lockfile`);
    }
  });

  it('ships production dependencies only', () => {
    const build = all.find((stage) => stage.name === 'build');
    assert.ok(build && runtime);
    const deploy = keyword(build, 'RUN')
      .map((run) => run.getArgumentsContent() ?? '')
      .find((run) => /pnpm (--filter \S+ )?deploy\b/.test(run));
    assert.ok(deploy, 'the build stage runs pnpm deploy');
    assert.match(deploy, new RegExp(`--filter ${serverPackage.name.replace('/', '\\/')} deploy --prod\\b`));
    const out = /deploy --prod(?: --store-dir \S+)? (\S+)/.exec(deploy)?.[1];
    assert.ok(out, 'pnpm deploy names its output directory');

    // The runtime stage copies that one directory and nothing else, and installs nothing.
    const copies = keyword(runtime, 'COPY').concat(keyword(runtime, 'ADD'));
    assert.equal(copies.length, 1, 'one COPY into the runtime stage');
    const copy = copies[0] as Copy | undefined;
    assert.ok(copy);
    assert.deepEqual(
      copy
        .getFlags()
        .map((flag) => `${flag.getName()}=${flag.getValue() ?? ''}`)
        .filter((flag) => flag.startsWith('from=')),
      ['from=build'],
    );
    assert.equal(copy.getArguments()[0]?.getValue(), out, 'it copies the pnpm deploy output');
    for (const run of keyword(runtime, 'RUN')) {
      assert.doesNotMatch(run.getArgumentsContent() ?? '', /\b(npm|pnpm|yarn)\s+(install|ci|add)\b/);
    }
  });

  it('runs as a non-root user', () => {
    assert.ok(runtime);
    const user = keyword(runtime, 'USER').at(-1)?.getArgumentsContent();
    assert.ok(user, 'the runtime stage sets USER');
    const [uid, gid] = user.split(':');
    assert.equal(uid, '65532');
    assert.notEqual(gid, '0', 'not the root group');
  });

  it('starts `trousseau serve` with the config at /etc/trousseau/config.yaml', () => {
    assert.ok(runtime);
    const entrypoint = keyword(runtime, 'ENTRYPOINT').at(-1);
    const cmd = keyword(runtime, 'CMD').at(-1);
    assert.ok(entrypoint && cmd);
    const bin = serverPackage.bin['trousseau']?.replace(/^\.\//, '');
    assert.deepEqual(jsonArgs(entrypoint), ['node', `/app/${bin}`]);
    assert.deepEqual(jsonArgs(cmd), ['serve', '--config', '/etc/trousseau/config.yaml']);
  });

  it('keeps node_modules and build output out of the build context', () => {
    const ignore = readFileSync(repoPath('.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim());
    for (const pattern of ['**/node_modules', '**/dist', '.git'])
      assert.ok(ignore.includes(pattern), pattern);
  });
});

describe('Dockerfile.derived: the recipe for an image with a third-party provider', () => {
  const derived = parseStages(DERIVED_DOCKERFILE);
  const providers = derived.stages.find((stage) => stage.name === 'providers');
  const last = derived.stages.at(-1);
  // The server's install in our image: the directory whose <bin> the ENTRYPOINT runs (/app).
  const bin = serverPackage.bin['trousseau']?.replace(/^\.\//, '') ?? '';
  const entrypoint = runtime ? keyword(runtime, 'ENTRYPOINT').at(-1) : undefined;
  const installDir = entrypoint ? (jsonArgs(entrypoint)[1] ?? '').replace(`/${bin}`, '') : '';

  it('installs with npm on the same pinned Node base as our image, which has no npm', () => {
    assert.ok(providers && runtime);
    const ours = all.find((stage) => stage.name === 'build');
    assert.equal(providers.image, ours?.image, 'the same node:<tag>@sha256:<digest> as our build stage');
    assert.equal(runtime.image, ours?.image);
    assert.ok(
      keyword(runtime, 'RUN').some((run) =>
        /rm -rf [^&]*\/usr\/local\/bin\/npm\b/.test(run.getArgumentsContent() ?? ''),
      ),
      'our runtime stage removes npm, so the recipe cannot run npm on our image',
    );
    const install = derivedRecipe();
    for (const flag of ['--omit=dev', '--legacy-peer-deps'])
      assert.ok(install.npmInstallFlags.includes(flag), `npm install ${flag}`);
  });

  it("installs into the providers directory the server searches by default, inside the server's install", () => {
    assert.equal(installDir, '/app');
    assert.equal(derivedRecipe().providersDir, `${installDir}/providers`);
  });

  it('adds that one directory to our image, root-owned, and changes nothing else', () => {
    assert.ok(last);
    assert.notEqual(last.name, 'providers');
    assert.match(last.image, /^trousseau:/, 'FROM our image (the name the kustomize base deploys)');
    const copies = instructionsOf(last, 'COPY').concat(instructionsOf(last, 'ADD'));
    assert.equal(copies.length, 1, 'one COPY');
    const copy = copies[0] as Copy | undefined;
    assert.ok(copy);
    const flags = copy.getFlags().map((flag) => `${flag.getName()}=${flag.getValue() ?? ''}`);
    assert.deepEqual(flags.sort(), ['chown=0:0', 'from=providers']);
    const { providersDir } = derivedRecipe();
    assert.deepEqual(
      copy.getArguments().map((argument) => argument.getValue()),
      [providersDir, providersDir],
    );
    for (const name of ['RUN', 'USER', 'ENTRYPOINT', 'CMD', 'WORKDIR', 'ENV'])
      assert.deepEqual(instructionsOf(last, name), [], `no ${name}: ours stays`);
  });

  it('sends only the packed provider to the build', () => {
    const ignore = readFileSync(`${DERIVED_DOCKERFILE}.dockerignore`, 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    assert.deepEqual(ignore, ['*', '!*.tgz']);
  });
});
