import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DockerfileParser, type Dockerfile, type From, type Instruction } from 'dockerfile-ast';
import { repoPath } from './paths.js';

/** The derived-image recipe: our image plus a provider package, as docs/writing-a-provider.md gives it. */
export const DERIVED_DOCKERFILE = repoPath('examples', 'provider-example', 'Dockerfile.derived');

export interface DockerStage {
  readonly name: string | null;
  /** The image, with ARGs declared before the first FROM expanded to their defaults. */
  readonly image: string;
  readonly instructions: readonly Instruction[];
}

/** A Dockerfile's ARG defaults (before the first FROM) and its stages in order. */
export function parseStages(path: string): { args: Map<string, string>; stages: DockerStage[] } {
  const dockerfile: Dockerfile = DockerfileParser.parse(readFileSync(path, 'utf8'));
  const args = new Map(
    dockerfile
      .getInitialARGs()
      .map((arg) => [arg.getProperty()?.getName() ?? '', arg.getProperty()?.getValue() ?? '']),
  );
  const expand = (value: string): string =>
    value.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_match, name: string) => {
      const resolved = args.get(name);
      assert.ok(resolved, `${path}: ARG ${name} has a default value before the first FROM`);
      return resolved;
    });
  const stages: { name: string | null; image: string; instructions: Instruction[] }[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = instruction as From;
      const image = expand(from.getArgumentsContent()?.split(/\s+/)[0] ?? '');
      stages.push({ name: from.getBuildStage(), image, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { args, stages };
}

export function instructionsOf(stage: DockerStage, keyword: string): Instruction[] {
  return stage.instructions.filter((instruction) => instruction.getKeyword() === keyword);
}

export interface DerivedRecipe {
  /** Where the recipe installs provider packages (WORKDIR of its "providers" stage). */
  readonly providersDir: string;
  /** The options of its `npm install`, in order. */
  readonly npmInstallFlags: readonly string[];
}

/** What the simulated image build must repeat: the providers directory and the npm install options. */
export function derivedRecipe(): DerivedRecipe {
  const { stages } = parseStages(DERIVED_DOCKERFILE);
  const providers = stages.find((stage) => stage.name === 'providers');
  assert.ok(providers, 'Dockerfile.derived has a stage named "providers"');
  const providersDir = instructionsOf(providers, 'WORKDIR').at(-1)?.getArgumentsContent();
  assert.ok(providersDir, 'the providers stage sets WORKDIR');
  const install = instructionsOf(providers, 'RUN')
    .map((run) => /npm install((?:\s+--[a-z-]+(?:=[^\s]+)?)+)/.exec(run.getArgumentsContent() ?? '')?.[1])
    .find((flags) => flags !== undefined);
  assert.ok(install, 'the providers stage runs npm install with options');
  return { providersDir, npmInstallFlags: install.trim().split(/\s+/) };
}
