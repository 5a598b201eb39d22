import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitUntilOptions {
  /**
   * How long the condition may take before the wait fails, in milliseconds (default 30 s). A bound for a
   * broken build, not a schedule: sized for a loaded CI machine, and a wait that holds ends as soon as the
   * condition does.
   */
  readonly timeoutMs?: number;
  /** How often the condition is checked, in milliseconds (default 5). */
  readonly intervalMs?: number;
}

/**
 * Waits until `condition` holds: what a test does instead of sleeping for something to happen. Rejects
 * with `what` (the awaited condition, in words) when the condition still does not hold after the timeout.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  options: WaitUntilOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const until = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(options.intervalMs ?? 5);
  }
}
