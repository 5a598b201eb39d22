// Durations as Vault reads and prints them: `parseutil.ParseDurationSecond` for input ("60", "60s",
// "1h30m", a JSON number of seconds) and Go's `time.Duration.String()` for warnings.

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds, or undefined when the value cannot be parsed (Vault then answers 400). */
export function parseDurationMs(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return 0;
  if (typeof value === 'number') return Number.isFinite(value) ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^-?\d+$/.test(text)) return Number(text) * 1000;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = re.exec(text); match; match = re.exec(text)) {
    total += Number(match[1]) * (UNITS[match[2] as string] as number);
    consumed = re.lastIndex;
  }
  return consumed === text.length && consumed > 0 ? total : undefined;
}

/** Go's Duration.String() for a number of milliseconds (enough of it for Vault's messages). */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  const negative = ms < 0;
  let rest = Math.abs(ms);
  if (rest < 1000) {
    const text = rest >= 1 ? `${trim(rest)}ms` : `${trim(rest * 1000)}µs`;
    return negative ? `-${text}` : text;
  }
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = `${trim(rest / 1000)}s`;
  let text = seconds;
  if (hours > 0) text = `${hours}h${minutes}m${seconds}`;
  else if (minutes > 0) text = `${minutes}m${seconds}`;
  return negative ? `-${text}` : text;
}

function trim(value: number): string {
  return String(Number(value.toFixed(9)));
}
