/**
 * The logging surface core and providers write to: the subset of pino's API they use. The server injects
 * a pino logger; tests may inject anything with this shape. Never pass plaintext, data keys, tokens or
 * secret ids in either argument.
 */
export interface LogFn {
  (message: string): void;
  (fields: Record<string, unknown>, message?: string): void;
}

export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
  /** Whether a level is logged (pino's method); hot paths skip building a line nobody reads. */
  isLevelEnabled?(level: 'trace' | 'debug' | 'info' | 'warn' | 'error'): boolean;
}

const ignore: LogFn = () => undefined;

export const silentLogger: Logger = {
  trace: ignore,
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
  child: () => silentLogger,
  isLevelEnabled: () => false,
};
