// Issue #13, item 1: the right to issue user tokens must not become anyone else's rights.
// Each test mints a token for an identity that really holds rights in the cluster (bound
// here, as kubeadm binds kubeadm:cluster-admins to cluster-admin) and shows, against the real
// apiserver, that the token reaches Kubernetes only as mesh-system:<name> and is refused.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, RbacAuthorizationV1Api, type RbacV1Subject } from '@kubernetes/client-node';
import { SignJWT } from 'jose';
import { call, type HttpAnswer } from '../../src/cli/http.ts';
import { decodeSecret, loadKubeConfig } from '../../src/kube/index.ts';
import { ADMIN_TOKEN_SECRET } from '../../src/tokens/index.ts';
import { testEnv } from '../support/env.ts';
import { kubeRequest } from '../support/kube.ts';
import { startTestServer, within, type TestServer } from '../support/server.ts';
import { refusalCode } from '../support/kube-status.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const rbac = admin.makeApiClient(RbacAuthorizationV1Api);

const NS = 'ut-boundary';
const WORK = 'ut-boundary-work';
const KUBEADM_ADMINS = 'kubeadm:cluster-admins';
const OFFLINE_KID = 'offline-1';
const KUBE_SYSTEM_SECRETS = '/api/v1/namespaces/kube-system/secrets';
// The CA key of the playground's own meshid: the prize of a compromise.
const CA_SECRET = '/api/v1/namespaces/meshid-system/secrets/istio-ca-secret';
const BINDINGS = ['boundary-kubeadm-admins', 'boundary-carol'];

const group = (name: string): RbacV1Subject => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name });
const user = (name: string): RbacV1Subject => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name });
const code = refusalCode;

async function bindClusterAdmin(name: string, subject: RbacV1Subject): Promise<void> {
  await rbac.createClusterRoleBinding({ body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [subject] } });
}

/** The apiserver's own refusal, relayed by /api/k8s: a Kubernetes Status, reason Forbidden, naming who asked. */
function assertKubeForbidden(res: HttpAnswer, kubeUser: string, what: string): void {
  assert.equal(res.status, 403, `${what}: ${JSON.stringify(res.body)}`);
  const status = res.body as { kind?: string; reason?: string; message?: string };
  assert.equal(status.kind, 'Status', what);
  assert.equal(status.reason, 'Forbidden', what);
  assert.match(status.message ?? '', new RegExp(`^secrets.* is forbidden: User "${kubeUser}" cannot`), what);
}

describe('user tokens: the identity boundary against the real apiserver', () => {
  let t: TestServer;
  let base = '';
  let root = '';
  const offline = generateKeyPairSync('rsa', { modulusLength: 2048 });

  const api = (method: string, path: string, token: string, body?: unknown) =>
    call({ method, url: new URL(path, base), headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { body }), timeoutMs: 20_000 });
  const issue = (body: unknown) => api('POST', '/tokens/user', root, body);
  const whoami = async (token: string) => {
    const res = await api('GET', '/api/whoami', token);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as { name: string; groups: string[] };
  };

  /** Both prizes are refused to `token`, by the apiserver, for `kubeUser`. */
  async function assertNoSecrets(token: string, kubeUser: string): Promise<void> {
    assertKubeForbidden(await api('GET', `/api/k8s${KUBE_SYSTEM_SECRETS}`, token), kubeUser, 'kube-system Secrets');
    assertKubeForbidden(await api('GET', `/api/k8s${CA_SECRET}`, token), kubeUser, 'istio-ca-secret');
  }

  before(async () => {
    t = await startTestServer(NS, {
      userTokens: { validator: { publicKeys: [{ kid: OFFLINE_KID, key: offline.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString() }] } },
    });
    base = t.server.httpUrl;
    root = decodeSecret(await core.readNamespacedSecret({ namespace: NS, name: ADMIN_TOKEN_SECRET }))['value'] ?? '';
    await core.readNamespacedSecret({ namespace: 'meshid-system', name: 'istio-ca-secret' });
    // The identities the attacker names really hold the prizes, as on a kubeadm cluster, so a
    // token impersonated as them would get 200 (checked straight at the apiserver).
    await bindClusterAdmin('boundary-kubeadm-admins', group(KUBEADM_ADMINS));
    await bindClusterAdmin('boundary-carol', user('carol'));
    await core.createNamespace({ body: { metadata: { name: WORK } } });
    for (const headers of [{ 'Impersonate-User': 'mallory', 'Impersonate-Group': KUBEADM_ADMINS }, { 'Impersonate-User': 'carol' }]) {
      const granted = await within(10_000, async () => (await kubeRequest(env.kubeconfigs.admin, 'GET', CA_SECRET, { headers })).status === 200);
      assert.notEqual(granted, undefined, `the bindings hold for ${JSON.stringify(headers)}`);
    }
  });

  after(async () => {
    for (const name of BINDINGS) await rbac.deleteClusterRoleBinding({ name }).catch(() => undefined);
    await core.deleteNamespace({ name: WORK }).catch(() => undefined);
    await t.close();
  });

  it('admin-user-token issues for carol and for group kubeadm:cluster-admins over /tokens/user: both are refused the Secrets', async () => {
    const carol = await issue({ name: 'carol', validFor: '1h' });
    assert.equal(carol.status, 200, JSON.stringify(carol.body));
    const carolIs = await whoami(String(carol.body));
    assert.deepEqual({ name: carolIs.name, groups: carolIs.groups }, { name: 'mesh-system:carol', groups: ['mesh-system:authenticated'] });
    await assertNoSecrets(String(carol.body), 'mesh-system:carol');

    const mallory = await issue({ name: 'mallory', groups: [KUBEADM_ADMINS], validFor: '1h' });
    assert.equal(mallory.status, 200, JSON.stringify(mallory.body));
    const me = await whoami(String(mallory.body));
    assert.equal(me.name, 'mesh-system:mallory');
    assert.deepEqual(me.groups, [`mesh-system:${KUBEADM_ADMINS}`, 'mesh-system:authenticated']);
    await assertNoSecrets(String(mallory.body), 'mesh-system:mallory');
  });

  it('the same through GraphQL generateUserToken: the token keeps its claims and is refused the Secrets', async () => {
    const res = await api('POST', '/api/graphql', root, {
      query: 'mutation($g: [String!]) { generateUserToken(name: "carol", groups: $g, validFor: "1h") { token name groups } }',
      variables: { g: [KUBEADM_ADMINS] },
    });
    const body = res.body as { data?: { generateUserToken?: { token: string; name: string; groups: string[] } }; errors?: unknown[] };
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    const issued = body.data?.generateUserToken;
    assert.ok(issued);
    // What was asked is what the token says; only the impersonated identity is prefixed.
    assert.deepEqual({ name: issued.name, groups: issued.groups }, { name: 'carol', groups: [KUBEADM_ADMINS] });
    const me = await whoami(issued.token);
    assert.equal(me.name, 'mesh-system:carol');
    assert.deepEqual(me.groups, [`mesh-system:${KUBEADM_ADMINS}`, 'mesh-system:authenticated']);
    await assertNoSecrets(issued.token, 'mesh-system:carol');
  });

  it('an offline token signed with a configured static key and naming group kubeadm:cluster-admins is refused the Secrets', async () => {
    // Signed by an independent JWT library: this token never passes meshid's issuer.
    const token = await new SignJWT({ Name: 'mallory', Groups: [KUBEADM_ADMINS] })
      .setProtectedHeader({ alg: 'RS256', kid: OFFLINE_KID, typ: 'JWT' })
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(offline.privateKey);
    const me = await whoami(token);
    assert.equal(me.name, 'mesh-system:mallory');
    assert.deepEqual(me.groups, [`mesh-system:${KUBEADM_ADMINS}`, 'mesh-system:authenticated']);
    await assertNoSecrets(token, 'mesh-system:mallory');
  });

  it('keeps the Kuma model: john in team-a gets pods once a role is bound to mesh-system:team-a, and not through team-a', async () => {
    const john = await issue({ name: 'john', groups: ['team-a'], validFor: '1h' });
    assert.equal(john.status, 200);
    const pods = () => api('GET', `/api/k8s/api/v1/namespaces/${WORK}/pods`, String(john.body));
    const bind = (name: string, subject: RbacV1Subject) =>
      rbac.createNamespacedRoleBinding({ namespace: WORK, body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' }, subjects: [subject] } });

    const before = await pods();
    assert.equal(before.status, 403);
    assert.equal((before.body as { reason?: string }).reason, 'Forbidden');
    assert.match((before.body as { message?: string }).message ?? '', /User "mesh-system:john" cannot list resource "pods"/);

    // A binding on the bare name is for a Kubernetes group team-a, which the token is not in.
    await bind('team-a-bare', group('team-a'));
    assert.equal(await within(3_000, async () => (await pods()).status === 200), undefined, 'a binding on group team-a does not reach the token');

    await bind('team-a-view', group('mesh-system:team-a'));
    assert.notEqual(await within(10_000, async () => (await pods()).status === 200), undefined, 'a binding on group mesh-system:team-a applies');
    const items = (await pods()).body as { kind?: string };
    assert.equal(items.kind, 'PodList');
  });

  it('caps validFor at userTokens.maxValidFor (default 8760h): 876000h is 400 token-valid-for-too-long, the cap itself is issued', async () => {
    for (const validFor of ['876000h', '8761h', '8760h1s']) {
      const res = await issue({ name: 'forever', validFor });
      assert.equal(res.status, 400, validFor);
      assert.equal(code(res.body), 'token-valid-for-too-long', validFor);
    }
    const graphql = await api('POST', '/api/graphql', root, { query: 'mutation { generateUserToken(name: "forever", validFor: "876000h") { token } }' });
    const errors = (graphql.body as { errors?: { extensions?: { code?: string; meshidCode?: string } }[] }).errors ?? [];
    assert.deepEqual(errors.map((e) => [e.extensions?.code, e.extensions?.meshidCode]), [['BAD_USER_INPUT', 'ERR_VALID_FOR_TOO_LONG']]);

    const atCap = await issue({ name: 'year', validFor: '8760h' });
    assert.equal(atCap.status, 200, JSON.stringify(atCap.body));
    const { exp } = JSON.parse(Buffer.from(String(atCap.body).split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number };
    assert.ok(Math.abs(exp - (Date.now() / 1000 + 8760 * 3600)) < 60, `exp ${exp} is a year from now`);
  });
});

describe('user tokens: a lower maxValidFor holds for the bootstrap admin token too', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer('ut-boundary-cap', { userTokens: { maxValidFor: '48h' } });
  });
  after(async () => t.close());

  it('bootstraps admin-user-token for 48h, issues 48h and refuses 49h', async () => {
    const root = decodeSecret(await core.readNamespacedSecret({ namespace: 'ut-boundary-cap', name: ADMIN_TOKEN_SECRET }))['value'] ?? '';
    const { exp } = JSON.parse(Buffer.from(root.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number };
    assert.ok(Math.abs(exp - (Date.now() / 1000 + 48 * 3600)) < 120, `the admin token expires in 48h, not a year (exp ${exp})`);
    const issue = (validFor: string) => call({ method: 'POST', url: new URL('/tokens/user', t.server.httpUrl), headers: { authorization: `Bearer ${root}` }, body: { name: 'ci', validFor } });
    assert.equal((await issue('48h')).status, 200);
    const refused = await issue('49h');
    assert.equal(refused.status, 400);
    assert.equal(code(refused.body), 'token-valid-for-too-long');
  });
});
