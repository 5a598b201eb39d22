#!/usr/bin/env node
// Writes deploy/monitoring/prometheusrule.yaml, the PrometheusRule object of the Prometheus Operator, from
// deploy/monitoring/trousseau-rules.yaml, the plain rules file: the same groups under `spec`, so the two
// cannot drift. Run it after editing the rules file; deploy/test/monitoring-rules.test.ts fails while the
// two disagree. A text transform (the rules file from `groups:` on, indented under `spec:`), so comments
// and layout survive.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DIR = fileURLToPath(new URL('../deploy/monitoring/', import.meta.url));
const rules = readFileSync(`${DIR}trousseau-rules.yaml`, 'utf8');
const start = rules.search(/^groups:/m);
if (start < 0) throw new Error('trousseau-rules.yaml has no top-level "groups:"');
const body = rules
  .slice(start)
  .split('\n')
  .map((line) => (line === '' ? '' : `  ${line}`))
  .join('\n');

writeFileSync(
  `${DIR}prometheusrule.yaml`,
  `# Trousseau's alert rules as a PrometheusRule object, for the Prometheus Operator. GENERATED from
# trousseau-rules.yaml by scripts/monitoring-prometheusrule.mjs: edit that file and run the script.
# If your Prometheus selects rules by label (ruleSelector, e.g. release: <name> in kube-prometheus-stack),
# add that label in your overlay.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: trousseau
  labels:
    app.kubernetes.io/name: trousseau
    app.kubernetes.io/component: kms-plugin
spec:
${body}`,
);
