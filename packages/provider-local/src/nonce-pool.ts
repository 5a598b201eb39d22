import { randomFillSync } from 'node:crypto';

/** Bytes drawn from the system's CSPRNG at once: about 340 nonces. */
const POOL_BYTES = 4096;

/**
 * Fresh random AES-GCM nonces, drawn from the system CSPRNG in 4 KiB batches instead of one
 * `randomFillSync` per Encrypt (each crosses into C++ and OpenSSL: a visible share of a call's CPU at
 * load). Each byte is written out once and zeroed in the pool as it goes, so the pool holds only bytes not
 * used yet. Core has the same pool for its binding keys; it is not core API, and this package must keep
 * working with every core its `coreRange` admits, so it keeps its own.
 */
export class NoncePool {
  readonly #pool = Buffer.alloc(POOL_BYTES);
  #next = POOL_BYTES;

  /** Writes `length` fresh random bytes into `target` at `offset`. */
  fill(target: Buffer, offset: number, length: number): void {
    if (this.#next + length > POOL_BYTES) {
      randomFillSync(this.#pool);
      this.#next = 0;
    }
    const end = this.#next + length;
    this.#pool.copy(target, offset, this.#next, end);
    this.#pool.fill(0, this.#next, end);
    this.#next = end;
  }
}
