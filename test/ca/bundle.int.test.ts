import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { ROOT_CONFIGMAP, ROOT_CONFIGMAP_KEY } from '../../src/contract/index.ts';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { runCli } from '../support/cli.ts';
import { testEnv } from '../support/env.ts';

describe('meshid ca bundle: the trust bundle as published now', () => {
  const env = testEnv();

  it('prints the ConfigMap a workload namespace reads, which env.json copied at boot', async () => {
    const published = await loadKubeConfig({ kubeconfig: env.kubeconfigs.admin })
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ namespace: 'foo', name: ROOT_CONFIGMAP });
    const pem = published.data?.[ROOT_CONFIGMAP_KEY] ?? '';
    assert.match(pem, /BEGIN CERTIFICATE/);
    const text = await runCli(['ca', 'bundle', '--kubeconfig', env.kubeconfigs.admin, '-n', 'foo']);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout, pem);
    // Before any rotation the boot-time copy is the same bundle.
    assert.equal((await readFile(env.ca.rootCert, 'utf8')).trim(), pem.trim());

    const json = await runCli(['ca', 'bundle', '--kubeconfig', env.kubeconfigs.admin, '-n', 'foo', '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const bundle = JSON.parse(json.stdout) as { namespace: string; configMap: string; roots: Array<{ fingerprint: string }> };
    assert.equal(bundle.namespace, 'foo');
    assert.equal(bundle.configMap, ROOT_CONFIGMAP);
    assert.deepEqual(bundle.roots.map((r) => r.fingerprint), [new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase()]);
  });

  it('says the bundle is missing where the CA never published one', async () => {
    const missing = await runCli(['ca', 'bundle', '--kubeconfig', env.kubeconfigs.admin, '-n', 'no-such-namespace']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /\[ERR_NOT_FOUND\]/);
    assert.match(missing.stderr, /no-such-namespace\/istio-ca-root-cert/);
  });
});
