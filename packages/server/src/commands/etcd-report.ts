import type { Command } from 'commander';

interface EtcdReportOptions {
  endpoints: string;
  cacert?: string;
  cert?: string;
  key?: string;
  prefix: string;
  resource: string[];
  names: boolean;
  json: boolean;
  requireCopy: string[];
  requireKeyId: string[];
  pageSize: string;
  timeout: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function positiveInteger(value: string, flag: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1) throw new Error(`${flag} must be a positive integer`);
  return number;
}

/**
 * `trousseau etcd-report`: what etcd actually holds. Connects to etcd as kube-apiserver does and counts,
 * for each resource, the objects stored as identity (plaintext), aescbc, aesgcm, secretbox, KMS v1 or v2
 * (by plugin name), and for Trousseau's ciphertexts which provider instance(s) and key wrapped the data
 * key. Read-only: only Range requests, nothing decrypted. Exits 1 when a `--require-*` is not met.
 */
export function registerEtcdReport(program: Command): void {
  program
    .command('etcd-report')
    .description(
      'report how each object in etcd is stored (plaintext, aescbc, aesgcm, secretbox, KMS v1/v2, which Trousseau provider and key); read-only, never decrypts',
    )
    .requiredOption(
      '--endpoints <urls>',
      "etcd endpoints, comma-separated, as kube-apiserver's --etcd-servers",
    )
    .option('--cacert <file>', "CA of etcd's serving certificate (--etcd-cafile)")
    .option('--cert <file>', 'client certificate (--etcd-certfile)')
    .option('--key <file>', 'client key (--etcd-keyfile)')
    .option('--prefix <prefix>', "etcd key prefix (kube-apiserver's --etcd-prefix)", '/registry')
    .option(
      '--resource <resource>',
      'resource to report, repeatable: secrets, configmaps, <group>/<resource> (default: secrets)',
      collect,
      [],
    )
    .option('--names', 'list the objects (namespace/name) of every group', false)
    .option('--json', 'print the report as JSON', false)
    .option(
      '--require-copy <instance>',
      'exit 1 unless every object has a data-key copy made by this provider instance (repeatable)',
      collect,
      [],
    )
    .option(
      '--require-key-id <id>',
      'exit 1 unless every object is under this key id (KMS v2 key_id, a replicated key id, or a copy made under it; repeatable)',
      collect,
      [],
    )
    .option('--page-size <n>', 'objects per etcd request', '100')
    .option('--timeout <ms>', 'deadline of each etcd request in milliseconds', '30000')
    .action(async (options: EtcdReportOptions) => {
      const [{ EtcdScanner }, { buildReport, renderReport }] = await Promise.all([
        import('../etcd-report/etcd-scan.js'),
        import('../etcd-report/report.js'),
      ]);
      // grpc-js names an IP endpoint (https://127.0.0.1:2379, as kubeadm configures) as the TLS server name,
      // which Node answers with a DeprecationWarning (DEP0123) on stderr: noise in a report, not a problem
      // of the operator's setup. This command loads no code whose deprecations an operator must see.
      process.noDeprecation = true;
      const endpoints = options.endpoints
        .split(',')
        .map((endpoint) => endpoint.trim())
        .filter((endpoint) => endpoint !== '');
      const where = `etcd at ${endpoints.join(', ')}`;
      const scanner = await EtcdScanner.connect({
        endpoints,
        caFile: options.cacert,
        certFile: options.cert,
        keyFile: options.key,
        timeoutMs: positiveInteger(options.timeout, '--timeout'),
      });
      try {
        const report = await buildReport(scanner, {
          prefix: options.prefix,
          resources: options.resource.length === 0 ? ['secrets'] : options.resource,
          pageSize: positiveInteger(options.pageSize, '--page-size'),
          withNames: options.names,
          requireCopies: options.requireCopy,
          requireKeyIds: options.requireKeyId,
        }).catch((error: unknown) => {
          throw new Error(`cannot read ${where}: ${error instanceof Error ? error.message : String(error)}`, {
            cause: error,
          });
        });
        process.stdout.write(
          options.json
            ? `${JSON.stringify({ endpoints, ...report }, null, 2)}\n`
            : `${renderReport(report, endpoints).join('\n')}\n`,
        );
        if (!report.satisfied) process.exitCode = 1;
      } finally {
        scanner.close();
      }
    });
}
