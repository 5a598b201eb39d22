import { randomFillSync } from 'node:crypto';

/** Bytes drawn from the system's CSPRNG at once: one call serves about a hundred nonces or binding keys. */
const POOL_BYTES = 4096;
/** Requests larger than this go to the CSPRNG directly: pooling only pays for small ones. */
const LARGEST_POOLED = 256;

/**
 * Fresh random bytes for the per-call nonces and binding keys, drawn from the system CSPRNG in 4 KiB
 * batches instead of one `randomFillSync` per call (each crosses into C++ and OpenSSL: a visible share
 * of a call's CPU at load). Every byte is handed out once and zeroed in the pool as it is handed out, so
 * nothing used stays behind; what the pool holds is only bytes not used yet. Never hands out views of the
 * pool: callers get copies, so a refill cannot change bytes already given.
 */
class RandomPool {
  readonly #pool: Buffer;
  #next: number;

  constructor(size = POOL_BYTES) {
    this.#pool = Buffer.alloc(size);
    this.#next = size;
  }

  /** Writes `length` fresh random bytes into `target` at `offset`. */
  fill(target: Uint8Array, offset = 0, length = target.length - offset): void {
    if (length > LARGEST_POOLED || length > this.#pool.length) {
      randomFillSync(target, offset, length);
      return;
    }
    if (this.#next + length > this.#pool.length) {
      randomFillSync(this.#pool);
      this.#next = 0;
    }
    const start = this.#next;
    const end = start + length;
    this.#pool.copy(target, offset, start, end);
    this.#pool.fill(0, start, end);
    this.#next = end;
  }

  /** A new buffer of `length` fresh random bytes. */
  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    this.fill(out);
    return out;
  }
}

/** The process's pool: core's envelopes and the built-in providers draw from it. */
export const randomPool = new RandomPool();
