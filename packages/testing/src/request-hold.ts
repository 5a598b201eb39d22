/**
 * What an emulator does with requests while it is "held": they arrive and are counted, then wait without
 * an answer, as they would on a server that hangs, until the hold is released. Used by the conformance
 * kit to keep a provider's request in flight while its caller aborts or its deadline passes.
 */
export class RequestHold {
  #held = false;
  #waiting: (() => void)[] = [];
  #received = 0;

  /** Requests that have arrived, held or not. Never reset. */
  get received(): number {
    return this.#received;
  }

  get held(): boolean {
    return this.#held;
  }

  /** While true, {@link pass} waits; setting it false lets every waiting request on. */
  set held(value: boolean) {
    this.#held = value;
    if (!value) {
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const resume of waiting) resume();
    }
  }

  /** Counts a request that has just arrived. */
  arrive(): void {
    this.#received += 1;
  }

  /** Resolves at once when not held, else when the hold is released. */
  pass(): Promise<void> {
    if (!this.#held) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
}
