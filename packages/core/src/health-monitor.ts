import type { Clock } from './clock.js';
import type { ErrorCode } from './error-codes.js';
import { isTrousseauError } from './errors.js';
import { isValidKeyId } from './key-id.js';
import type { Logger } from './logger.js';
import type { Gauge, Metrics } from './metrics.js';
import type { KeyProvider, ProviderStatus } from './provider.js';
import { createRequestScope, raceRequest } from './request-context.js';

const KEY_GONE = 'TROUSSEAU_ERR_PROVIDER_KEY_GONE' satisfies ErrorCode;

/** Whether an unhealthy answer says the key itself is gone: by its code, or a core API 1.0 flag. */
function keyGone(status: Extract<ProviderStatus, { healthy: false }>): boolean {
  return status.code === KEY_GONE || status.keyUnusable === true;
}

/** What the broker knows of one provider instance, refreshed in the background. */
export interface ProviderHealth {
  readonly name: string;
  readonly state: 'unknown' | 'healthy' | 'unhealthy';
  /** Why it is unhealthy (or `'not checked yet'`); undefined when healthy. */
  readonly reason?: string;
  /** The last good key id: kept while the backend is briefly unreachable. */
  readonly keyId?: string;
  /**
   * The key itself is gone (disabled, deleted, access revoked), not just the backend slow or down: the
   * provider reported or raised `TROUSSEAU_ERR_PROVIDER_KEY_GONE` (or, written for core API 1.0, set
   * `keyUnusable`).
   */
  readonly keyUnusable: boolean;
  /** Epoch ms of the last finished check; 0 before the first. */
  readonly checkedAt: number;
}

/**
 * Asks every provider for its status on an interval and keeps the answers, so the apiserver's frequent
 * Status calls are answered from memory and never cost a KMS round trip.
 */
export class HealthMonitor {
  readonly #providers: ReadonlyMap<string, KeyProvider>;
  readonly #health = new Map<string, ProviderHealth>();
  /**
   * Observations of a provider's key id (health checks and encrypts) are ordered by when they began, by
   * ticket: the key id shown is always the one from the latest-begun observation, so a slow encrypt or
   * check that read the key before a rotation can never bring the old key id back (A -> B -> A).
   */
  #nextTicket = 1;
  readonly #keyIdTicket = new Map<string, number>();
  readonly #intervalMs: number;
  readonly #checkTimeoutMs: number;
  readonly #logger: Logger;
  readonly #healthy: Gauge<'provider'>;
  readonly #keyIdInfo: Gauge<'provider' | 'key_id'>;
  readonly #lastHealthy: Gauge<'provider'>;
  readonly #clock: Clock;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** The round after the running one, for callers who asked while it ran. */
  #next: Promise<void> | undefined;
  #stopped = false;

  constructor(options: {
    providers: ReadonlyMap<string, KeyProvider>;
    intervalMs: number;
    logger: Logger;
    metrics: Metrics;
    clock: Clock;
  }) {
    this.#providers = options.providers;
    this.#intervalMs = options.intervalMs;
    this.#checkTimeoutMs = Math.min(options.intervalMs, 5_000);
    this.#logger = options.logger;
    this.#healthy = options.metrics.gauge({
      name: 'provider_healthy',
      help: '1 when the provider instance passed its last health check, else 0',
      labelNames: ['provider'],
    });
    this.#keyIdInfo = options.metrics.gauge({
      name: 'key_id_info',
      help: 'The current key id of each provider instance (value is always 1)',
      labelNames: ['provider', 'key_id'],
    });
    this.#lastHealthy = options.metrics.gauge({
      name: 'provider_last_healthy_timestamp_seconds',
      help: 'Unix time of the last health check that found the provider instance healthy (no series before the first)',
      labelNames: ['provider'],
    });
    this.#clock = options.clock;
    for (const name of this.#providers.keys()) {
      this.#health.set(name, {
        name,
        state: 'unknown',
        reason: 'not checked yet',
        keyUnusable: false,
        checkedAt: 0,
      });
    }
  }

  /** Runs a first check of every provider (awaited), then keeps checking on the interval. */
  async start(): Promise<void> {
    await this.refresh();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.refresh().finally(() => this.#schedule());
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /**
   * Checks every provider, in a round that begins now or later: a caller who changed something (or saw a
   * provider fail) must get an answer that reflects it. A round already running may have asked before
   * that, so a caller arriving meanwhile gets the next round, which everyone arriving meanwhile shares.
   */
  refresh(): Promise<void> {
    if (this.#running === undefined) {
      this.#running = Promise.all([...this.#providers].map(([name, provider]) => this.#check(name, provider)))
        .then(() => undefined)
        .finally(() => {
          this.#running = undefined;
        });
      return this.#running;
    }
    this.#next ??= this.#running.then(() => {
      this.#next = undefined;
      return this.refresh();
    });
    return this.#next;
  }

  /** A ticket for an observation of a key id that begins now. */
  ticket(): number {
    return this.#nextTicket++;
  }

  /** Whether an observation with `ticket` is newer than the one the current key id came from. */
  #isNewest(name: string, ticket: number): boolean {
    return ticket > (this.#keyIdTicket.get(name) ?? 0);
  }

  async #check(name: string, provider: KeyProvider): Promise<void> {
    const ticket = this.ticket();
    const scope = createRequestScope({
      uid: `health-${name}`,
      deadline: this.#clock.now() + this.#checkTimeoutMs,
      logger: this.#logger,
      now: () => this.#clock.now(),
    });
    let next: ProviderHealth;
    /** A key id the provider vouched for in a healthy answer: the only kind that may move the key id. */
    let observed: string | undefined;
    try {
      const status = await raceRequest(provider.status(scope.context), scope.context, 'health check');
      if (status.healthy && !isValidKeyId(status.keyId)) {
        next = this.#unhealthy(
          name,
          'the provider reported a key id that is empty or over 1024 bytes',
          false,
        );
      } else if (status.healthy) {
        observed = status.keyId;
        next = {
          name,
          state: 'healthy',
          keyId: status.keyId,
          keyUnusable: false,
          checkedAt: this.#clock.now(),
        };
      } else {
        next = this.#unhealthy(name, status.reason, keyGone(status), status.keyId);
      }
    } catch (error) {
      const reason = isTrousseauError(error) || error instanceof Error ? error.message : String(error);
      next = this.#unhealthy(
        name,
        `status check failed: ${reason}`,
        isTrousseauError(error) && error.code === KEY_GONE,
      );
    } finally {
      scope.dispose();
    }
    const previous = this.#health.get(name);
    if (observed !== undefined && this.#isNewest(name, ticket)) {
      this.#keyIdTicket.set(name, ticket);
    } else if (previous?.keyId !== undefined) {
      // An unhealthy or older answer never moves the key id: keep the one shown.
      next = { ...next, keyId: previous.keyId };
    }
    this.#record(previous, next);
  }

  /**
   * An unhealthy answer. Its key id is the one already shown; a key id the provider offers with it is
   * used only while none is known yet (it never replaces one, so it cannot bring an old key id back).
   */
  #unhealthy(name: string, reason: string, keyUnusable: boolean, offeredKeyId?: string): ProviderHealth {
    const shown = this.#health.get(name)?.keyId;
    const keyId =
      shown ?? (offeredKeyId !== undefined && isValidKeyId(offeredKeyId) ? offeredKeyId : undefined);
    return { name, state: 'unhealthy', reason, keyId, keyUnusable, checkedAt: this.#clock.now() };
  }

  #record(previous: ProviderHealth | undefined, next: ProviderHealth): void {
    this.#health.set(next.name, next);
    this.#healthy.set({ provider: next.name }, next.state === 'healthy' ? 1 : 0);
    if (next.state === 'healthy') this.#lastHealthy.set({ provider: next.name }, next.checkedAt / 1000);
    if (previous?.state !== next.state || previous.reason !== next.reason) {
      if (next.state === 'healthy')
        this.#logger.info({ provider: next.name, keyId: next.keyId }, 'provider healthy');
      else this.#logger.warn({ provider: next.name, reason: next.reason }, 'provider unhealthy');
    }
    if (next.keyId !== undefined && previous?.keyId !== next.keyId) {
      if (previous?.keyId !== undefined)
        this.#keyIdInfo.remove({ provider: next.name, key_id: previous.keyId });
      this.#keyIdInfo.set({ provider: next.name, key_id: next.keyId }, 1);
    }
    if (previous?.keyId !== undefined && next.keyId !== undefined && previous.keyId !== next.keyId) {
      this.#logger.info({ provider: next.name, from: previous.keyId, to: next.keyId }, 'key id changed');
    }
  }

  /**
   * Records the key id a successful encrypt returned, `ticket` taken when that encrypt began: it becomes
   * the key id shown unless an observation that began later has already reported one.
   */
  noteKeyId(name: string, keyId: string, ticket: number): void {
    const previous = this.#health.get(name);
    if (previous === undefined || !this.#isNewest(name, ticket)) return;
    this.#keyIdTicket.set(name, ticket);
    if (previous.keyId !== keyId) this.#record(previous, { ...previous, keyId });
  }

  get(name: string): ProviderHealth | undefined {
    return this.#health.get(name);
  }

  all(): ProviderHealth[] {
    return [...this.#health.values()];
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#running;
  }
}
