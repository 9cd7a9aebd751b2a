// The service-account issuer the TokenReview guard compares JWTs with comes from the real
// apiserver's discovery document. client-node hands that document back decoded although it
// types it as a string; reading it as text once lost the issuer, and with it the guard's check.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/core/index.ts';
import { LEGACY_SERVICE_ACCOUNT_ISSUER, loadKubeConfig, serviceAccountIssuers } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { kubeRequest } from '../support/kube.ts';

describe('serviceAccountIssuers against kube-apiserver', () => {
  it("names the issuer of the cluster's discovery document, then the legacy one", async () => {
    const env = testEnv();
    const discovery = await kubeRequest(env.kubeconfigs.admin, 'GET', '/.well-known/openid-configuration');
    assert.equal(discovery.status, 200);
    const issuer = (discovery.body as { issuer?: unknown }).issuer;
    assert.equal(typeof issuer, 'string');
    assert.match(String(issuer), /^https:\/\//);
    const found = await serviceAccountIssuers(loadKubeConfig({ kubeconfig: env.kubeconfigs.admin }), createLogger('test', 'silent'));
    assert.deepEqual(found, [issuer, LEGACY_SERVICE_ACCOUNT_ISSUER]);
  });
});
