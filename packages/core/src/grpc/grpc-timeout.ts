/** Milliseconds per unit of a `grpc-timeout` value. */
const MS_PER_UNIT: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/** `grpc-timeout` as the gRPC spec writes it: at most 8 digits, then the unit. */
const TIMEOUT_PATTERN = /^(\d{1,8})([HMSmun])$/;

/** The longest wait a Node timer can count (about 24.8 days); a timeout past it is no deadline at all. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The deadline a call's `grpc-timeout` header sets (epoch ms), `Infinity` without one, or undefined when
 * the header is not a valid timeout. The caller's clock started before ours: the deadline is counted from
 * when the headers arrived. A timeout longer than a timer can count (`99999999H` is valid) is none.
 */
export function deadlineOf(header: string | string[] | undefined, now: number): number | undefined {
  if (header === undefined) return Number.POSITIVE_INFINITY;
  const match = typeof header === 'string' ? TIMEOUT_PATTERN.exec(header) : null;
  const [, digits, unit] = match ?? [];
  const perUnit = unit === undefined ? undefined : MS_PER_UNIT[unit];
  if (digits === undefined || perUnit === undefined) return undefined;
  const timeoutMs = Number(digits) * perUnit;
  return timeoutMs > MAX_TIMER_MS ? Number.POSITIVE_INFINITY : now + timeoutMs;
}
