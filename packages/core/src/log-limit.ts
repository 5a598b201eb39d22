import type { Clock } from './clock.js';

/** How much of a value a caller chose (a uid, an authority, a version string) a log line quotes. */
const MAX_LOGGED_CALLER_CHARS = 64;

/**
 * A caller-supplied value as a log line may quote it: at most `max` characters, and says how long it was
 * when it was cut, so one request cannot write a megabyte into the log.
 */
export function truncateForLog(value: string, max = MAX_LOGGED_CALLER_CHARS): string {
  if (value.length <= max) return value;
  // Never half a surrogate pair: a lone surrogate is not text (encodeURI, for one, throws on it).
  const last = value.charCodeAt(max - 1);
  const end = last >= 0xd800 && last <= 0xdbff ? max - 1 : max;
  return `${value.slice(0, end)}…(${value.length} chars)`;
}

/** Distinct kinds of line tracked at once; more are forgotten (each then logs again once). */
const MAX_KINDS = 256;

/**
 * Lets a kind of warning through at most once per interval and counts what it held back, so a client
 * that provokes failures by the thousand costs a line every few seconds, not a line per call. The kind
 * names what the lines have in common (message, code, provider), never a caller's value.
 */
export class LogRateLimit {
  readonly #intervalMs: number;
  readonly #clock: Clock;
  readonly #kinds = new Map<string, { last: number; suppressed: number }>();

  constructor(options: { intervalMs: number; clock: Clock }) {
    this.#intervalMs = options.intervalMs;
    this.#clock = options.clock;
  }

  /**
   * Whether a line of `kind` may be written now; if so, how many lines of that kind were held back since
   * the last one written (to log with it). `undefined`: hold this one back.
   */
  admit(kind: string): { readonly suppressed: number } | undefined {
    const now = this.#clock.now();
    const entry = this.#kinds.get(kind);
    if (entry !== undefined && now - entry.last < this.#intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    if (entry === undefined && this.#kinds.size >= MAX_KINDS) this.#kinds.clear();
    this.#kinds.set(kind, { last: now, suppressed: 0 });
    return { suppressed: entry?.suppressed ?? 0 };
  }
}
