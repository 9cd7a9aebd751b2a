import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { AuthorizationV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { ISSUED_CONFIGMAP, ROOT_CONFIGMAP } from '../../src/ca/index.ts';
import { ROOT_CONFIGMAP_NAME, SERVICE_ACCOUNT, install, uninstall } from '../../src/install/index.ts';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { runCli } from '../support/cli.ts';
import { keepAgentOffNode } from '../support/placement.ts';

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
    // The CA's node authorization lists pods by node and service account; it never reads one.
    assert.deepEqual(role.rules?.filter((r) => r.resources?.includes('pods')).flatMap((r) => r.verbs), ['list']);
    assert.ok(!role.rules?.some((r) => r.resources?.includes('secrets')), 'no cluster-wide access to Secrets');
    assert.ok(!role.rules?.some((r) => r.resources?.includes('userextras/*')), 'userextras/* is no RBAC wildcard: extras are granted by key');

    const down = await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NAMESPACE, 'uninstall']);
    assert.equal(down.code, 0, down.stderr);
    await assert.rejects(rbac.readClusterRole({ name: `meshid-server-${NAMESPACE}` }), (e: { code?: number }) => e.code === 404);
    // Without --purge the namespace (and any keys in it) stays, and so do the shared roles.
    await kc.makeApiClient(CoreV1Api).readNamespace({ name: NAMESPACE });
    await rbac.readClusterRole({ name: 'meshid-admin' });
    await kc.makeApiClient(CoreV1Api).deleteNamespace({ name: NAMESPACE });
  });

  it("gives meshid's ServiceAccount only the ConfigMaps it uses, no Leases, and the extras of pod-bound tokens", async () => {
    const ns = 'meshid-rbac';
    await install(kc, { namespace: ns, anonymousAuth: false, image: 'meshid:test', replicas: 0 });
    await keepAgentOffNode(kc, ns);
    try {
      const authz = kc.makeApiClient(AuthorizationV1Api);
      // What the apiserver decides for the ServiceAccount, asked as the admin (SubjectAccessReview).
      const may = async (verb: string, resource: string, namespace: string | undefined, name?: string, group = ''): Promise<boolean> => {
        const review = await authz.createSubjectAccessReview({
          body: {
            spec: {
              user: `system:serviceaccount:${ns}:${SERVICE_ACCOUNT}`,
              groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
              resourceAttributes: { verb, group, resource: resource.split('/')[0] ?? resource, ...(resource.includes('/') ? { subresource: resource.slice(resource.indexOf('/') + 1) } : {}), ...(namespace ? { namespace } : {}), ...(name ? { name } : {}) },
            },
          },
        });
        return review.status?.allowed === true;
      };
      const denied: [string, string, string | undefined, string?][] = [
        ['get', 'configmaps', 'kube-system', 'coredns'],
        ['get', 'configmaps', 'kube-system', 'aws-auth'],
        ['patch', 'configmaps', 'default', 'coredns'],
        ['patch', 'configmaps', 'default', 'anything'],
        ['list', 'configmaps', undefined],
        ['watch', 'configmaps', 'default'],
        ['create', 'configmaps', 'default'],
        ['update', 'configmaps', ns, 'meshid-recovery'],
        ['get', 'leases', ns, 'any'],
        ['create', 'leases', ns],
      ];
      for (const [verb, resource, namespace, name] of denied) {
        const group = resource === 'leases' ? 'coordination.k8s.io' : '';
        assert.equal(await may(verb, resource, namespace, name, group), false, `${verb} ${resource} ${namespace ?? '*'}/${name ?? '*'} must be denied`);
      }
      const allowed: [string, string, string | undefined, string?, string?][] = [
        // The root publisher: a metadata.name field selector makes list and watch name the ConfigMap.
        ['list', 'configmaps', undefined, ROOT_CONFIGMAP_NAME],
        ['watch', 'configmaps', undefined, ROOT_CONFIGMAP_NAME],
        ['get', 'configmaps', 'default', ROOT_CONFIGMAP_NAME],
        ['patch', 'configmaps', 'kube-system', ROOT_CONFIGMAP_NAME],
        // A server-side apply that creates it is authorized as a create of that name.
        ['create', 'configmaps', 'default', ROOT_CONFIGMAP_NAME],
        // The issued-identities ledger in meshid's namespace.
        ['get', 'configmaps', ns, ISSUED_CONFIGMAP],
        ['update', 'configmaps', ns, ISSUED_CONFIGMAP],
        ['create', 'configmaps', ns],
        // The cluster's client CA, through the built-in reader Role.
        ['get', 'configmaps', 'kube-system', 'extension-apiserver-authentication'],
        ['list', 'namespaces', undefined],
        ['impersonate', 'userextras/authentication.kubernetes.io/pod-name', undefined, 'bound', 'authentication.k8s.io'],
        ['impersonate', 'userextras/authentication.kubernetes.io/credential-id', undefined, 'JTI=x', 'authentication.k8s.io'],
        ['impersonate', 'userextras/canonicalarn', undefined, 'arn:aws:iam::1:role/x', 'authentication.k8s.io'],
      ];
      for (const [verb, resource, namespace, name, group] of allowed) {
        assert.equal(await may(verb, resource, namespace, name, group), true, `${verb} ${resource} ${namespace ?? '*'}/${name ?? '*'} must be allowed`);
      }
      assert.equal(await may('impersonate', 'userextras/example.com/team', undefined, 'a', 'authentication.k8s.io'), false, 'an extra not granted');
      // The install's name and the CA's are the same ConfigMaps (install cannot import the CA: same rank).
      assert.equal(ROOT_CONFIGMAP_NAME, ROOT_CONFIGMAP);
    } finally {
      await uninstall(kc, { namespace: ns, purge: false });
      await kc.makeApiClient(CoreV1Api).deleteNamespace({ name: ns }).catch(() => undefined);
    }
  });

  it('says what to do when the kubeconfig context does not exist', async () => {
    const res = await runCli(['--kubeconfig', env.kubeconfigs.admin, '--context', 'nope', 'install']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /context "nope" is not in the kubeconfig \[ERR_KUBECONFIG\]/);
    assert.match(res.stderr, /^hint: Known contexts: admin@meshid-playground/m);
  });
});
