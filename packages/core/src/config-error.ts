import { TrousseauError } from './errors.js';

export interface ConfigIssue {
  /** Where in the file, as `providers[0].config.address`; `''` for the whole document. */
  readonly path: string;
  readonly message: string;
}

/** A config file that cannot be used: names the file and every bad field with the reason. */
export class ConfigError extends TrousseauError {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[], options: { cause?: unknown } = {}) {
    const lines = issues.map(
      (issue) => `  - ${issue.path === '' ? '(top level)' : issue.path}: ${issue.message}`,
    );
    super('TROUSSEAU_ERR_CONFIG_INVALID', `invalid config file ${file}:\n${lines.join('\n')}`, options);
    this.file = file;
    this.issues = issues;
  }
}

/** `['providers', 0, 'config', 'address']` -> `providers[0].config.address`. */
export function formatConfigPath(path: ReadonlyArray<PropertyKey | { key: PropertyKey }>): string {
  let text = '';
  for (const segment of path) {
    const key = typeof segment === 'object' ? segment.key : segment;
    if (typeof key === 'number') text += `[${key}]`;
    else text += text === '' ? String(key) : `.${String(key)}`;
  }
  return text;
}
