// Kubernetes login as Vault 1.4.3 answers it (auth-kubernetes.json): a projected token needs `issuer` in
// auth/kubernetes/config, and a refused TokenReview is a bare 403. Status says what each means.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProviderStatus, RequestContext } from '@trousseau/core';
import { testRequestContext } from '@trousseau/testing';
import { usingRealVault } from './backend.js';
import { roundTrip, useVaultBackend } from './helpers.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';

function assertUnhealthy(status: ProviderStatus, reason: RegExp): void {
  assert.ok(!status.healthy && reason.test(status.reason), `${JSON.stringify(status)} !~ ${reason}`);
  assert.equal(status.code, 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED');
}

describe(
  'vault auth: Kubernetes with projected tokens, as Vault 1.4.3 answers',
  { skip: usingRealVault ? 'needs the emulator (Kubernetes auth without a cluster)' : false },
  () => {
    const vault = useVaultBackend();
    const ctx = (): RequestContext => testRequestContext(3_000, undefined, vault.clock);

    it('names the issuer to configure when Vault refuses a projected token, and logs in once it is set', async () => {
      const emulator = vault.backend.emulator;
      assert.ok(emulator !== undefined);
      const role = {
        mount: 'k8s-projected',
        role: 'trousseau',
        boundServiceAccountNames: ['trousseau'],
        boundNamespaces: ['kube-system'],
        policies: [vault.fixture.policy],
        tokenTtlSeconds: 60,
      };
      const cluster = emulator.configureKubernetesAuth(role);
      const tokenFile = await vault.fixture.writeFile(
        'projected-token',
        cluster.issueServiceAccountToken({
          name: 'trousseau',
          namespace: 'kube-system',
          projected: { audience: 'vault', expirationSeconds: 3600 },
        }),
      );
      const provider = await vault.fixture.open({
        auth: { method: 'kubernetes', role: 'trousseau', mount: 'k8s-projected', tokenFile },
      });
      try {
        assertUnhealthy(
          await provider.status(ctx()),
          new RegExp(
            `vault login failed \\(500\\): claim "iss" is invalid: the token's issuer is ${ISSUER}: set issuer=${ISSUER} in auth/k8s-projected/config`,
          ),
        );
        emulator.configureKubernetesAuth({ ...role, issuer: ISSUER });
        assert.ok((await provider.status(ctx())).healthy);
        await roundTrip(provider);
      } finally {
        await provider.close();
      }
    });

    it('explains a bare 403 (the TokenReview refused or could not be made)', async () => {
      const emulator = vault.backend.emulator;
      assert.ok(emulator !== undefined);
      const cluster = emulator.configureKubernetesAuth({
        mount: 'k8s-review',
        role: 'trousseau',
        boundServiceAccountNames: ['trousseau'],
        boundNamespaces: ['kube-system'],
        policies: [vault.fixture.policy],
        tokenTtlSeconds: 60,
      });
      const tokenFile = await vault.fixture.writeFile(
        'review-token',
        cluster.issueServiceAccountToken({ name: 'trousseau', namespace: 'kube-system' }),
      );
      cluster.tokenReviewReachable = false;
      const provider = await vault.fixture.open({
        auth: { method: 'kubernetes', role: 'trousseau', mount: 'k8s-review', tokenFile },
      });
      try {
        assertUnhealthy(
          await provider.status(ctx()),
          /vault kubernetes login refused: permission denied on auth\/k8s-review\/login: Vault could not confirm the service-account token with the Kubernetes TokenReview API/,
        );
        cluster.tokenReviewReachable = true;
        assert.ok((await provider.status(ctx())).healthy, 'heals when the API is back');
      } finally {
        await provider.close();
      }
    });
  },
);
