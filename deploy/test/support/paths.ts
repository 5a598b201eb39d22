import { fileURLToPath } from 'node:url';

/** The repository root: tests run from deploy/dist/test/**, sources stay in the repository. */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

export function repoPath(...parts: string[]): string {
  return [REPO_ROOT.replace(/\/$/, ''), ...parts].join('/');
}
