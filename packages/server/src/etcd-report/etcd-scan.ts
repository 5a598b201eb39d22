import { readFile } from 'node:fs/promises';
import { Etcd3, Range, type IOptions } from 'etcd3';

/** How to reach etcd, as kube-apiserver's `--etcd-*` flags say. */
interface EtcdConnection {
  /** `https://host:port` or `http://host:port`, as in `--etcd-servers`. */
  readonly endpoints: readonly string[];
  /** `--etcd-cafile`: the CA that signed etcd's serving certificate. */
  readonly caFile?: string | undefined;
  /** `--etcd-certfile` and `--etcd-keyfile`: the client certificate etcd asks for. */
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  /** Deadline of each etcd request, in milliseconds. */
  readonly timeoutMs: number;
}

/** One key and its value, as stored. */
interface StoredEntry {
  readonly key: Buffer;
  readonly value: Buffer;
}

/**
 * Largest response accepted from etcd: a page holds whole values (a Secret may be 1.5 MiB), and gRPC's
 * default of 4 MiB would fail a page of a few large Secrets.
 */
const MAX_RESPONSE_BYTES = 512 * 1024 * 1024;

async function credentialsOf(connection: EtcdConnection): Promise<IOptions['credentials']> {
  if ((connection.certFile === undefined) !== (connection.keyFile === undefined)) {
    throw new Error('--cert and --key go together: give both or neither');
  }
  if (connection.caFile === undefined) {
    if (connection.certFile !== undefined) {
      throw new Error("--cert needs --cacert: the CA that signed etcd's serving certificate");
    }
    // https endpoints are then checked against the system's trust store.
    return undefined;
  }
  const [rootCertificate, certChain, privateKey] = await Promise.all([
    readFile(connection.caFile),
    connection.certFile === undefined ? undefined : readFile(connection.certFile),
    connection.keyFile === undefined ? undefined : readFile(connection.keyFile),
  ]);
  return {
    rootCertificate,
    ...(certChain === undefined ? {} : { certChain }),
    ...(privateKey === undefined ? {} : { privateKey }),
  };
}

/**
 * A read-only view of etcd: ranges over key prefixes, page by page, all at one revision so that a scan
 * sees one consistent state however long it takes. It never writes: the only request it sends is Range.
 */
export class EtcdScanner {
  readonly #client: Etcd3;
  #revision: string | undefined;

  private constructor(client: Etcd3) {
    this.#client = client;
  }

  static async connect(connection: EtcdConnection): Promise<EtcdScanner> {
    if (connection.endpoints.length === 0) throw new Error('no etcd endpoint given');
    const credentials = await credentialsOf(connection);
    const client = new Etcd3({
      hosts: [...connection.endpoints],
      ...(credentials === undefined ? {} : { credentials }),
      grpcOptions: { 'grpc.max_receive_message_length': MAX_RESPONSE_BYTES },
      defaultCallOptions: () => ({ deadline: Date.now() + connection.timeoutMs }),
    });
    return new EtcdScanner(client);
  }

  /** The revision every page is read at: that of the first response. */
  get revision(): string | undefined {
    return this.#revision;
  }

  /** Every key under `prefix` with its value, in key order, `pageSize` keys per request. */
  async *scan(prefix: string, pageSize: number): AsyncGenerator<StoredEntry> {
    const end = Range.prefix(prefix).end;
    let start = Buffer.from(prefix);
    for (;;) {
      let builder = this.#client.getAll().inRange({ start, end }).limit(pageSize);
      if (this.#revision !== undefined) builder = builder.revision(this.#revision);
      const response = await builder.exec();
      this.#revision ??= response.header.revision;
      for (const kv of response.kvs) yield { key: kv.key, value: kv.value };
      const last = response.kvs.at(-1);
      if (!response.more || last === undefined) return;
      // The next page starts just after the last key read.
      start = Buffer.concat([last.key, Buffer.of(0)]);
    }
  }

  close(): void {
    this.#client.close();
  }
}
