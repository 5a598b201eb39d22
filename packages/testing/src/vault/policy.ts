// Vault ACL policies: path rules with capabilities, merged across a token's policies, exact paths before
// globs, the most specific glob winning, `deny` overriding everything.

export type VaultCapability = 'create' | 'read' | 'update' | 'delete' | 'list' | 'sudo' | 'deny';

export interface VaultPolicyRule {
  readonly path: string;
  readonly capabilities: ReadonlyArray<VaultCapability>;
}

/** The rules of Vault's built-in `default` policy that matter here (token self-service). */
export const DEFAULT_POLICY_RULES: ReadonlyArray<VaultPolicyRule> = [
  { path: 'auth/token/lookup-self', capabilities: ['read'] },
  { path: 'auth/token/renew-self', capabilities: ['update'] },
  { path: 'auth/token/revoke-self', capabilities: ['update'] },
  { path: 'sys/capabilities-self', capabilities: ['update'] },
  { path: 'sys/leases/renew', capabilities: ['update'] },
  { path: 'sys/leases/lookup', capabilities: ['update'] },
];

interface CompiledRule {
  readonly pattern: string;
  readonly capabilities: Set<VaultCapability>;
}

function isGlob(pattern: string): boolean {
  return pattern.endsWith('*') || pattern.split('/').includes('+');
}

function matches(pattern: string, path: string): boolean {
  const prefix = pattern.endsWith('*');
  const body = prefix ? pattern.slice(0, -1) : pattern;
  if (!body.includes('+')) return prefix ? path.startsWith(body) : path === body;
  const patternSegments = body.split('/');
  const pathSegments = path.split('/');
  for (let i = 0; i < patternSegments.length; i++) {
    const seg = patternSegments[i] as string;
    const actual = pathSegments[i];
    if (actual === undefined) return false;
    if (i === patternSegments.length - 1) {
      if (seg === '+') return prefix || pathSegments.length === patternSegments.length;
      if (prefix) return actual.startsWith(seg);
      return actual === seg && pathSegments.length === patternSegments.length;
    }
    if (seg !== '+' && seg !== actual) return false;
  }
  return prefix || pathSegments.length === patternSegments.length;
}

/** Vault's priority between two matching globs: later first wildcard, then no trailing `*`, fewer `+`, longer. */
function morePriority(a: string, b: string): boolean {
  const firstWildcard = (p: string): number => {
    const plus = p.indexOf('+');
    const star = p.indexOf('*');
    const positions = [plus, star].filter((x) => x >= 0);
    return positions.length === 0 ? p.length : Math.min(...positions);
  };
  const fa = firstWildcard(a);
  const fb = firstWildcard(b);
  if (fa !== fb) return fa > fb;
  const sa = a.endsWith('*');
  const sb = b.endsWith('*');
  if (sa !== sb) return !sa;
  const pa = a.split('+').length;
  const pb = b.split('+').length;
  if (pa !== pb) return pa < pb;
  if (a.length !== b.length) return a.length > b.length;
  return a > b;
}

/** An ACL built from the policies a token carries. */
export class Acl {
  readonly #exact = new Map<string, CompiledRule>();
  readonly #globs: CompiledRule[] = [];
  readonly #root: boolean;

  constructor(policies: ReadonlyArray<ReadonlyArray<VaultPolicyRule>>, root = false) {
    this.#root = root;
    const merged = new Map<string, Set<VaultCapability>>();
    for (const rules of policies) {
      for (const rule of rules) {
        const set = merged.get(rule.path) ?? new Set<VaultCapability>();
        for (const cap of rule.capabilities) set.add(cap);
        merged.set(rule.path, set);
      }
    }
    for (const [pattern, capabilities] of merged) {
      if (capabilities.has('deny')) {
        capabilities.clear();
        capabilities.add('deny');
      }
      const compiled = { pattern, capabilities };
      if (isGlob(pattern)) this.#globs.push(compiled);
      else this.#exact.set(pattern, compiled);
    }
  }

  /** True when the path grants the capability (and `sudo` when asked). */
  allows(path: string, capability: VaultCapability, needSudo = false): boolean {
    if (this.#root) return true;
    const caps = this.capabilities(path);
    if (caps.has('deny')) return false;
    if (needSudo && !caps.has('sudo')) return false;
    return caps.has(capability);
  }

  capabilities(path: string): ReadonlySet<VaultCapability> {
    const exact = this.#exact.get(path);
    if (exact) return exact.capabilities;
    let best: CompiledRule | undefined;
    for (const rule of this.#globs) {
      if (!matches(rule.pattern, path)) continue;
      if (!best || morePriority(rule.pattern, best.pattern)) best = rule;
    }
    return best?.capabilities ?? new Set();
  }
}
