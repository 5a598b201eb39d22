import type { Logger } from './logger.js';

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/**
 * The logger of one request: its parent's child with the request's bindings, made when the first line the
 * parent's level lets through is written. Most calls write none, and a child logger (pino's: the bindings
 * serialised) costs more than the rest of the request's context together.
 */
export class RequestLogger implements Logger {
  readonly #parent: Logger;
  readonly #bindings: Readonly<Record<string, unknown>> | undefined;
  readonly #requestId: string;
  #child: Logger | undefined;

  /**
   * The child is bound to `bindings` (shared by every request of one kind: never copied until the child is
   * made) and to `requestId`.
   */
  constructor(parent: Logger, bindings: Readonly<Record<string, unknown>> | undefined, requestId: string) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#requestId = requestId;
  }

  #logger(): Logger {
    this.#child ??= this.#parent.child({ ...this.#bindings, requestId: this.#requestId });
    return this.#child;
  }

  #write(level: Level, fieldsOrMessage: Record<string, unknown> | string, message?: string): void {
    // A line the parent would drop makes no child.
    if (this.#parent.isLevelEnabled?.(level) === false) return;
    const logger = this.#logger();
    if (typeof fieldsOrMessage === 'string') logger[level](fieldsOrMessage);
    else if (message === undefined) logger[level](fieldsOrMessage);
    else logger[level](fieldsOrMessage, message);
  }

  trace(fieldsOrMessage: Record<string, unknown> | string, message?: string): void {
    this.#write('trace', fieldsOrMessage, message);
  }

  debug(fieldsOrMessage: Record<string, unknown> | string, message?: string): void {
    this.#write('debug', fieldsOrMessage, message);
  }

  info(fieldsOrMessage: Record<string, unknown> | string, message?: string): void {
    this.#write('info', fieldsOrMessage, message);
  }

  warn(fieldsOrMessage: Record<string, unknown> | string, message?: string): void {
    this.#write('warn', fieldsOrMessage, message);
  }

  error(fieldsOrMessage: Record<string, unknown> | string, message?: string): void {
    this.#write('error', fieldsOrMessage, message);
  }

  child(bindings: Record<string, unknown>): Logger {
    return this.#logger().child(bindings);
  }

  /** The parent's answer: a child logs at its parent's level. Without the parent's method, every level is. */
  isLevelEnabled(level: Level): boolean {
    return this.#parent.isLevelEnabled?.(level) ?? true;
  }
}
