import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { createLogger } from '../../src/core/index.ts';
import { install, uninstall, SERVICE_ACCOUNT } from '../../src/install/index.ts';
import { loadKubeConfig, serviceAccountKubeconfig } from '../../src/kube/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { call } from '../../src/cli/http.ts';
import { testEnv } from '../support/env.ts';
import { runCli } from '../support/cli.ts';
import { ownKubeconfig } from '../support/session.ts';
import { within } from '../support/server.ts';
import { refusalCode } from '../support/kube-status.ts';
import { keepAgentOffNode } from '../support/placement.ts';

const NAMESPACE = 'meshid-anon';

describe('anonymous mode, end to end', () => {
  const env = testEnv();
  const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
  let server: RunningServer;

  before(async () => {
    await install(admin, { namespace: NAMESPACE, anonymousAuth: true, image: 'meshid:test', replicas: 0 });
    await keepAgentOffNode(admin, NAMESPACE);
    const file = join(await mkdtemp(join(tmpdir(), 'meshid-anon-')), 'server.kubeconfig');
    await writeFile(file, await serviceAccountKubeconfig(admin, NAMESPACE, SERVICE_ACCOUNT, 3600));
    server = await startServer(
      { kubeconfig: file, namespace: NAMESPACE, anonymousAuth: true, host: '127.0.0.1', httpPort: 0, httpsPort: 0 },
      { log: createLogger('anon-test', 'silent') },
    );
  });

  after(async () => {
    await server.close();
    // Not --purge: that would also remove the ClusterRoles the main installation shares.
    await uninstall(admin, { namespace: NAMESPACE, purge: false });
    await admin.makeApiClient(CoreV1Api).deleteNamespace({ name: NAMESPACE });
  });

  it('answers login with problem code auth-disabled', async () => {
    const res = await call({ method: 'POST', url: new URL('/api/login', server.httpUrl), headers: { authorization: 'Bearer anything' } });
    assert.equal(res.status, 400);
    assert.equal((res.body as { code: string }).code, 'auth-disabled');
  });

  it('lets the CLI carry on without a session', async () => {
    const kubeconfig = await ownKubeconfig('alice');
    const login = await runCli(['--kubeconfig', kubeconfig, 'login', '--url', server.httpUrl]);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stderr, /anonymous mode/);
    const whoami = await runCli(['--kubeconfig', kubeconfig, 'whoami', '--url', server.httpUrl, '-o', 'json']);
    assert.equal(whoami.code, 0, whoami.stderr);
    assert.match((JSON.parse(whoami.stdout) as { name: string }).name, /anonymous/);
  });

  it('acts as system:anonymous, never as its own account: the keys of any installation stay out of reach', async () => {
    const mainNs = 'meshid-system';
    for (const [ns, secret] of [[mainNs, 'istio-ca-secret'], [mainNs, 'meshid-authentication'], [mainNs, 'admin-user-token'], [mainNs, 'user-token-signing-key-1'], [NAMESPACE, 'meshid-authentication']] as const) {
      const res = await call({ method: 'GET', url: new URL(`/api/k8s/api/v1/namespaces/${ns}/secrets/${secret}`, server.httpUrl) });
      assert.equal(res.status, 403, `${ns}/${secret} must be refused`);
      const status = res.body as { kind: string; reason: string; message: string };
      assert.equal(status.kind, 'Status');
      assert.equal(status.reason, 'Forbidden');
      assert.match(status.message, /"system:anonymous"/);
      assert.doesNotMatch(status.message, /serviceaccount/);
    }
    const list = await call({ method: 'GET', url: new URL('/api/k8s/api/v1/namespaces/kube-system/secrets', server.httpUrl) });
    assert.equal(list.status, 403);
    const smuggled = await call({ method: 'GET', url: new URL('/api/k8s/api/v1/namespaces/dev/pods', server.httpUrl), headers: { 'impersonate-user': 'admin' } });
    assert.equal(smuggled.status, 403);
    assert.equal(refusalCode(smuggled.body), 'impersonation-forbidden');
  });

  it("applies every meshid.io check to the anonymous caller (RBAC answers for system:anonymous)", async () => {
    const whoami = await call({ method: 'GET', url: new URL('/api/whoami', server.httpUrl) });
    assert.equal(whoami.status, 200);
    const me = whoami.body as { name: string; groups: string[]; anonymous: boolean; capabilities: Record<string, boolean> };
    assert.equal(me.name, 'system:anonymous');
    assert.deepEqual(me.groups, ['system:unauthenticated']);
    assert.equal(me.anonymous, true);
    assert.equal(Object.values(me.capabilities).some(Boolean), false, 'system:anonymous holds no meshid.io capability');
    const gql = await call({ method: 'POST', url: new URL('/api/graphql', server.httpUrl), body: { query: 'mutation { rotateCA { mode } }' } });
    const errors = (gql.body as { errors: { extensions: { code: string; permission?: { resource: string } } }[] }).errors;
    assert.equal(errors[0]?.extensions.code, 'FORBIDDEN');
    assert.equal(errors[0]?.extensions.permission?.resource, 'certificateauthorities');
  });

  it('exposes exactly what RBAC grants system:unauthenticated, and nothing more', async () => {
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    const url = new URL(`/api/k8s/api/v1/namespaces/${NAMESPACE}/configmaps`, server.httpUrl);
    assert.equal((await call({ method: 'GET', url })).status, 403);
    await rbac.createNamespacedRole({ namespace: NAMESPACE, body: { metadata: { name: 'anon-cm' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }] } });
    await rbac.createNamespacedRoleBinding({
      namespace: NAMESPACE,
      body: { metadata: { name: 'anon-cm' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'anon-cm' }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }] },
    });
    const granted = await within(5000, async () => (await call({ method: 'GET', url })).status === 200);
    assert.ok(granted !== undefined, 'the binding takes effect for the anonymous caller');
    assert.equal((await call({ method: 'GET', url: new URL('/api/k8s/api/v1/namespaces/kube-system/configmaps', server.httpUrl) })).status, 403);
  });
});
