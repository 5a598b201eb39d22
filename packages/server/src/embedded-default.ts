import { resolve } from 'node:path';
import { parseConfig, type LoadedConfig } from '@trousseau/core';

/** Where the embedded default keeps its development files, relative to the working directory. */
const DEV_STATE_DIR = '.trousseau';

/**
 * The config used when no --config is given: the local provider with a development key ring under
 * `<cwd>/.trousseau/`, created on first start, and a socket under the same directory.
 */
export function embeddedDefaultConfig(cwd: string): LoadedConfig {
  const dir = resolve(cwd, DEV_STATE_DIR);
  return parseConfig(
    {
      version: 1,
      socket: { path: resolve(dir, 'kms.sock') },
      providers: [
        {
          name: 'local-dev',
          type: 'local',
          config: { keyFile: resolve(dir, 'dev-keyring.json'), createIfMissing: true },
        },
      ],
    },
    '(embedded default)',
    cwd,
  );
}
