import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { runCli } from '../support/cli.ts';

const NAMESPACE = 'meshid-idem';

describe('meshid install / uninstall', () => {
  const env = testEnv();
  const kc = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });

  it('prints every manifest with --dry-run -o yaml and changes nothing', async () => {
    const res = await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', 'meshid-dry', 'install', '--dry-run', '-o', 'yaml']);
    assert.equal(res.code, 0, res.stderr);
    const kinds = parseAllDocuments(res.stdout).map((d) => (d.toJSON() as { kind: string }).kind);
    for (const kind of ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Deployment', 'Service', 'PodDisruptionBudget']) {
      assert.ok(kinds.includes(kind), kind);
    }
    await assert.rejects(kc.makeApiClient(CoreV1Api).readNamespace({ name: 'meshid-dry' }), (e: { code?: number }) => e.code === 404);
  });

  it('is idempotent, grants the server only what it needs, and uninstalls cleanly', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NAMESPACE, 'install', '--replicas', '0']);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /Installed meshid into meshid-idem \(21 objects\)/);
    }
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const role = await rbac.readClusterRole({ name: `meshid-server-${NAMESPACE}` });
    const verbs = (resource: string) => role.rules?.find((r) => r.resources?.includes(resource))?.verbs ?? [];
    assert.deepEqual(verbs('tokenreviews'), ['create']);
    assert.deepEqual(verbs('subjectaccessreviews'), ['create']);
    assert.deepEqual(verbs('users'), ['impersonate']);
    assert.ok(!role.rules?.some((r) => r.resources?.includes('secrets')), 'no cluster-wide access to Secrets');

    const down = await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NAMESPACE, 'uninstall']);
    assert.equal(down.code, 0, down.stderr);
    await assert.rejects(rbac.readClusterRole({ name: `meshid-server-${NAMESPACE}` }), (e: { code?: number }) => e.code === 404);
    // Without --purge the namespace (and any keys in it) stays, and so do the shared roles.
    await kc.makeApiClient(CoreV1Api).readNamespace({ name: NAMESPACE });
    await rbac.readClusterRole({ name: 'meshid-admin' });
    await kc.makeApiClient(CoreV1Api).deleteNamespace({ name: NAMESPACE });
  });

  it('says what to do when the kubeconfig context does not exist', async () => {
    const res = await runCli(['--kubeconfig', env.kubeconfigs.admin, '--context', 'nope', 'install']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /context "nope" is not in the kubeconfig \[ERR_KUBECONFIG\]/);
    assert.match(res.stderr, /^hint: Known contexts: admin@meshid-playground/m);
  });
});
