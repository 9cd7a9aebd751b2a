import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { createLogger } from '../../src/core/index.ts';
import { install, uninstall, SERVICE_ACCOUNT } from '../../src/install/index.ts';
import { loadKubeConfig, serviceAccountKubeconfig } from '../../src/kube/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { call } from '../../src/cli/http.ts';
import { testEnv } from '../support/env.ts';
import { runCli } from '../support/cli.ts';
import { ownKubeconfig } from '../support/session.ts';

const NAMESPACE = 'meshid-anon';

describe('anonymous mode, end to end', () => {
  const env = testEnv();
  const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
  let server: RunningServer;

  before(async () => {
    await install(admin, { namespace: NAMESPACE, anonymousAuth: true, image: 'meshid:test', replicas: 0 });
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

  it("sends every call as the server's own service account, with no session needed", async () => {
    const res = await call({ method: 'GET', url: new URL('/api/k8s/api/v1/namespaces/dev/pods', server.httpUrl) });
    assert.equal(res.status, 403, 'the meshid service account may not list pods');
    assert.match((res.body as { message: string }).message, new RegExp(`system:serviceaccount:${NAMESPACE}:${SERVICE_ACCOUNT}`));
    const smuggled = await call({ method: 'GET', url: new URL('/api/k8s/api/v1/namespaces/dev/pods', server.httpUrl), headers: { 'impersonate-user': 'admin' } });
    assert.equal(smuggled.status, 403);
    assert.equal((smuggled.body as { code: string }).code, 'impersonation-forbidden');
  });
});
