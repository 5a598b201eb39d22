import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { validateEncryptionConfiguration } from './encryption-configuration-schema.js';
import type { KubeObject } from './yaml-files.js';

interface Validatable {
  validate(): void;
}
type ModelConstructor = new (data: never) => Validatable;

/**
 * The schemas every manifest is checked against: kubernetes-models (JSON schemas generated from the
 * Kubernetes OpenAPI document) and @kubernetes-models/prometheus-operator (from the operator's CRDs).
 * A kind missing here fails the test, so a new manifest cannot slip through unvalidated.
 */
const MODELS: Readonly<Record<string, ModelConstructor>> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Pod': Pod,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/DaemonSet': DaemonSet,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

/** Validates one object against the schema of its apiVersion and kind; throws with the errors. */
export function validateKubeObject(object: KubeObject): void {
  const key = `${object.apiVersion}/${object.kind}`;
  if (key === 'apiserver.config.k8s.io/v1/EncryptionConfiguration') {
    validateEncryptionConfiguration(object);
    return;
  }
  const Model = MODELS[key];
  if (Model === undefined) {
    throw new Error(`no schema for ${key} (${object.metadata?.name ?? 'unnamed'}): add one to the test`);
  }
  try {
    new Model(object as never).validate();
  } catch (error) {
    throw new Error(
      `${key} ${object.metadata?.name ?? ''} does not match its schema: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}
