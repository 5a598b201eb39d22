import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, rename, rm, symlink, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';

/** How often the server looks for a new reader of the FIFO. */
const POLL_MS = 5;

function codeOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/** A short pause between looks at the FIFO (while it is in place, {@link FileBackend.restore} ends them). */
function pause(): Promise<void> {
  return delay(POLL_MS);
}

interface Gate {
  readonly opened: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/**
 * A file a provider reads as its backend (a key ring, a passphrase file), which a test can hold, break
 * and count reads of, with real file-system I/O and no change to the provider: the conformance kit's
 * `holdBackend`, `releaseBackend` and `backendRequests` hooks for a file-backed provider.
 *
 * Normally `path` is a plain file. {@link hold} puts a named pipe (FIFO) in its place, served by this
 * object: each time the provider opens the path for reading it is counted as a backend request, and the
 * read hangs, as it would on a stuck network file system, until {@link release}; from then on readers get
 * the current content (an empty file when it is removed). {@link restore} puts a plain file back. Reads
 * are counted from the {@link hold} that put the FIFO in place until {@link restore}; two reads that
 * overlap count as one. Needs `mkfifo` (Linux, macOS).
 */
export class FileBackend {
  readonly path: string;
  /** What readers of the FIFO get (read from the file when the hold began). */
  #content: string | undefined;
  #fifo: string | undefined;
  #serving: Promise<void> | undefined;
  #holding = false;
  #released: Gate = gate();
  #reads = 0;

  /** Manages whatever is (or is not yet) at `path`. */
  constructor(path: string) {
    this.path = path;
  }

  /** Provider reads of the path since {@link hold} put the FIFO in place. */
  get reads(): number {
    return this.#reads;
  }

  /** The content readers get now, or undefined when the file is removed. */
  async read(): Promise<string | undefined> {
    if (this.#fifo !== undefined) return this.#content;
    try {
      return await readFile(this.path, 'utf8');
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Replaces the content; undefined removes the file. While held, it is what released readers get. */
  async write(content: string | undefined): Promise<void> {
    this.#content = content;
    if (this.#fifo === undefined) await this.#writeFile(content);
  }

  /** From now on every read of the path waits, counted, until {@link release} or {@link restore}. */
  async hold(): Promise<void> {
    this.#holding = true;
    this.#released = gate();
    if (this.#fifo !== undefined) return;
    this.#content = await this.read();
    this.#reads = 0;
    const fifo = join(dirname(this.path), `.${basename(this.path)}.${randomBytes(4).toString('hex')}.fifo`);
    await promisify(execFile)('mkfifo', ['-m', '600', fifo]);
    // The path becomes a link to the FIFO, so putting a plain file back later never redirects the server.
    const link = `${fifo}.link`;
    await symlink(fifo, link);
    await rename(link, this.path);
    this.#fifo = fifo;
    this.#serving = this.#serve(fifo);
  }

  /** Held readers, and later ones, get the current content at once; reads are still counted. */
  async release(): Promise<void> {
    this.#holding = false;
    this.#released.open();
  }

  /** Releases every reader and puts a plain file with the current content back at the path. */
  async restore(): Promise<void> {
    await this.release();
    const fifo = this.#fifo;
    if (fifo === undefined) return;
    this.#fifo = undefined;
    await this.#writeFile(this.#content);
    await this.#serving;
    this.#serving = undefined;
    // A reader that opened the FIFO just before the plain file came back gets end of file (an empty read).
    await this.#untilReaderGone(fifo, () => true);
    await rm(fifo, { force: true });
  }

  async #writeFile(content: string | undefined): Promise<void> {
    if (content === undefined) {
      await rm(this.path, { force: true });
      return;
    }
    const temporary = `${this.path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temporary, content, { mode: 0o600 });
    await rename(temporary, this.path);
  }

  /**
   * Serves the FIFO while it is in place: a non-blocking open for writing succeeds only when a reader has
   * the FIFO open (or is waiting in open()), which is how a read is noticed without taking a thread of
   * libuv's pool. The reader then waits for the release, gets the content and end of file, and the next
   * reader is looked for once it has gone.
   */
  async #serve(fifo: string): Promise<void> {
    const serving = (): boolean => this.#fifo === fifo;
    while (serving()) {
      const writer = await this.#openWriter(fifo);
      if (writer === undefined) {
        await pause();
        continue;
      }
      this.#reads += 1;
      if (this.#holding) await this.#released.opened;
      await this.#answer(writer);
      await this.#untilReaderGone(fifo, serving);
    }
  }

  /** Gives the reader the content, then end of file. */
  async #answer(writer: FileHandle): Promise<void> {
    try {
      if (this.#content !== undefined) await writer.write(this.#content);
    } finally {
      await writer.close();
    }
  }

  /** Waits until the reader just answered has closed the FIFO (a probe writer finds no reader). */
  async #untilReaderGone(fifo: string, serving: () => boolean): Promise<void> {
    while (serving()) {
      const probe = await this.#openWriter(fifo);
      if (probe === undefined) return;
      await probe.close();
      await pause();
    }
  }

  /** A writer on the FIFO when a reader is there, undefined when none is. */
  async #openWriter(fifo: string): Promise<FileHandle | undefined> {
    try {
      return await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (error) {
      if (codeOf(error) === 'ENXIO') return undefined;
      throw error;
    }
  }
}
