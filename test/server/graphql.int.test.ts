// The dashboard API against a real apiserver: every answer is what the caller's RBAC allows.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { call, type HttpAnswer } from '../../src/cli/http.ts';
import { STEPS } from '../../src/recovery/index.ts';
import { ISSUED_CONFIGMAP } from '../../src/ca/index.ts';
import { testEnv } from '../support/env.ts';
import { runCli } from '../support/cli.ts';
import { ownKubeconfig } from '../support/session.ts';
import { startTestServer, within, type TestServer } from '../support/server.ts';
import { createCertificate, makeCsr, workloadToken } from '../support/workload.ts';
import { OFF_NODE } from '../support/placement.ts';

const NS = 'meshid-graphql';
const OTHER = 'graphql-other';
const env = testEnv();
const admin = new KubeConfig();
admin.loadFromFile(env.kubeconfigs.admin);
const core = admin.makeApiClient(CoreV1Api);

interface GqlError {
  message: string;
  extensions?: { code?: string; permission?: { verb: string; group: string; resource: string; namespace?: string } };
}
interface GqlAnswer {
  status: number;
  headers: HttpAnswer['headers'];
  data: Record<string, unknown> | null;
  errors: GqlError[];
}

describe('GraphQL dashboard API (/api/graphql) against a real apiserver', () => {
  let t: TestServer;
  let base = '';
  const tokens: Record<string, string> = {};

  async function gql(user: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<GqlAnswer> {
    const res = await call({ method: 'POST', url: new URL('/api/graphql', base), headers: { ...(tokens[user] ? { authorization: `Bearer ${tokens[user]}` } : {}), ...headers }, body: { query, variables }, timeoutMs: 20_000 });
    const body = res.body as { data?: Record<string, unknown> | null; errors?: GqlError[] };
    return { status: res.status, headers: res.headers, data: body.data ?? null, errors: body.errors ?? [] };
  }

  before(async () => {
    t = await startTestServer(NS, { ca: { enabled: true, port: 0, rootConfigMap: `${NS}-root` } });
    base = t.server.httpUrl;
    for (const user of ['admin', 'alice', 'bob'] as const) {
      const res = await runCli(['--kubeconfig', await ownKubeconfig(user), 'login', '--url', base, '-o', 'json']);
      assert.equal(res.code, 0, res.stderr);
      tokens[user] = (JSON.parse(res.stdout) as { token: string }).token;
    }
    await core.createNamespace({ body: { metadata: { name: OTHER } } }).catch(() => undefined);
    for (const namespace of ['dev', OTHER]) {
      await core
        .createNamespacedPod({ namespace, body: { metadata: { name: 'gql-pod' }, spec: { ...OFF_NODE, serviceAccountName: 'default', containers: [{ name: 'c', image: 'example.invalid/none' }] } } })
        .catch(() => undefined);
    }
  });

  after(async () => {
    await core.deleteNamespacedPod({ namespace: 'dev', name: 'gql-pod', gracePeriodSeconds: 0 }).catch(() => undefined);
    await core.deleteNamespace({ name: OTHER }).catch(() => undefined);
    await t?.close();
  });

  it('me: alice is in group dev, may not rotate the CA, and each capability names its permission', async () => {
    const res = await gql('alice', '{ me { name groups anonymous capabilities { key verb group resource allowed } } }');
    assert.equal(res.status, 200);
    const me = res.data?.['me'] as { name: string; groups: string[]; anonymous: boolean; capabilities: { key: string; verb: string; resource: string; allowed: boolean }[] };
    assert.equal(me.name, 'alice');
    assert.ok(me.groups.includes('dev'));
    assert.equal(me.anonymous, false);
    const rotate = me.capabilities.find((c) => c.key === 'certificateauthorities.meshid.io/update');
    assert.deepEqual([rotate?.verb, rotate?.resource, rotate?.allowed], ['update', 'certificateauthorities', false]);
    const adminMe = await gql('admin', '{ me { capabilities { key allowed } } }');
    assert.ok((adminMe.data?.['me'] as { capabilities: { allowed: boolean }[] }).capabilities.every((c) => c.allowed));
  });

  it('a forbidden mutation is FORBIDDEN and names the missing permission; nothing changes', async () => {
    const before = (await gql('admin', '{ certificateAuthority { rootFingerprint newRootSignsAt } }')).data?.['certificateAuthority'] as { rootFingerprint: string; newRootSignsAt: string | null };
    const res = await gql('alice', 'mutation { rotateCA { rootFingerprint } }');
    assert.equal(res.errors[0]?.extensions?.code, 'FORBIDDEN');
    assert.deepEqual(res.errors[0]?.extensions?.permission, { verb: 'update', group: 'meshid.io', resource: 'certificateauthorities' });
    assert.match(res.errors[0]?.message ?? '', /alice may not update certificateauthorities\.meshid\.io/);
    const after = (await gql('admin', '{ certificateAuthority { rootFingerprint newRootSignsAt } }')).data?.['certificateAuthority'];
    assert.deepEqual(after, before);
  });

  it('workloads and namespaces: alice sees dev only; bob (view) sees every namespace', async () => {
    const alice = await gql('alice', '{ namespaces { name } workloads { namespace name serviceAccount spiffeId } }');
    assert.deepEqual(alice.errors, []);
    assert.deepEqual((alice.data?.['namespaces'] as { name: string }[]).map((n) => n.name), ['dev']);
    const pods = alice.data?.['workloads'] as { namespace: string; name: string; spiffeId: string }[];
    assert.ok(pods.length > 0 && pods.every((p) => p.namespace === 'dev'), JSON.stringify(pods));
    assert.ok(pods.some((p) => p.name === 'gql-pod' && p.spiffeId === 'spiffe://cluster.local/ns/dev/sa/default'));
    const denied = await gql('alice', `{ workloads(namespace: "${OTHER}") { name } }`);
    assert.equal(denied.errors[0]?.extensions?.code, 'FORBIDDEN');
    assert.deepEqual(denied.errors[0]?.extensions?.permission, { verb: 'list', group: '', resource: 'pods', namespace: OTHER });
    const bob = await gql('bob', '{ namespaces { name } workloads { namespace } }');
    const names = (bob.data?.['namespaces'] as { name: string }[]).map((n) => n.name);
    assert.ok(names.includes('dev') && names.includes(OTHER) && names.includes(NS));
    assert.ok((bob.data?.['workloads'] as { namespace: string }[]).some((w) => w.namespace === OTHER));
  });

  it('admin issues a user token, revokes it, and the API refuses it afterwards; both are security events', async () => {
    const issued = await gql('admin', 'mutation($n: String!) { generateUserToken(name: $n, groups: ["dev"], validFor: "1h") { id token name groups expiresAt } }', { n: 'ci-bot' });
    assert.deepEqual(issued.errors, []);
    const token = issued.data?.['generateUserToken'] as { id: string; token: string; groups: string[] };
    assert.deepEqual(token.groups, ['dev']);
    const whoami = () => call({ method: 'GET', url: new URL('/api/whoami', base), headers: { authorization: `Bearer ${token.token}` } });
    assert.equal((await whoami()).status, 200);
    const revoked = await gql('admin', 'mutation($id: String!) { revokeToken(id: $id) { id revokedTokens } }', { id: token.id });
    assert.deepEqual(revoked.errors, []);
    assert.notEqual(await within(10_000, async () => (await whoami()).status === 401), undefined);
    assert.equal(((await whoami()).body as { code: string }).code, 'token-revoked');
    const list = await gql('admin', '{ revokedTokens }');
    assert.ok((list.data?.['revokedTokens'] as string[]).includes(token.id));
    const events = async () => (await gql('admin', '{ securityEvents(limit: 100) { reason user message } }')).data?.['securityEvents'] as { reason: string; user: string; message: string }[];
    assert.notEqual(
      await within(10_000, async () => {
        const seen = await events();
        return ['Login', 'TokenIssued', 'TokenRevoked'].every((r) => seen.some((e) => e.reason === r && e.user === 'admin'));
      }),
      undefined,
    );
    assert.ok((await events()).some((e) => e.reason === 'TokenRevoked' && e.message.includes(token.id)));
  });

  it('the CLI records what an operator does as a security event, under their own name', async () => {
    const jti = '5c1e0000-0000-4000-8000-00000000c11e';
    const res = await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'tokens', 'revoke', jti]);
    assert.equal(res.code, 0, res.stderr);
    const seen = await within(10_000, async () =>
      ((await gql('admin', '{ securityEvents(limit: 100) { reason user message } }')).data?.['securityEvents'] as { reason: string; user: string; message: string }[]).some(
        (e) => e.reason === 'TokenRevoked' && e.user === 'admin' && e.message.includes(jti) && e.message.includes('meshid CLI'),
      ),
    );
    assert.notEqual(seen, undefined);
  });

  it('reserved groups and bad durations are BAD_USER_INPUT with meshid codes; alice may not issue', async () => {
    const reserved = await gql('admin', 'mutation { generateUserToken(name: "x", groups: ["system:masters"], validFor: "1h") { id } }');
    assert.equal(reserved.errors[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.equal((reserved.errors[0]?.extensions as { meshidCode?: string }).meshidCode, 'ERR_TOKEN_IDENTITY_RESERVED');
    const duration = await gql('admin', 'mutation { generateUserToken(name: "x", validFor: "forever") { id } }');
    assert.equal((duration.errors[0]?.extensions as { meshidCode?: string }).meshidCode, 'ERR_VALID_FOR_INVALID');
    const alice = await gql('alice', 'mutation { generateUserToken(name: "x", validFor: "1h") { id } }');
    assert.equal(alice.errors[0]?.extensions?.code, 'FORBIDDEN');
    assert.equal(alice.data, null);
  });

  it('signing keys, rotation and events: serials only, never key material; bob and alice are refused', async () => {
    const before = await gql('admin', '{ signingKeys { serial createdAt active } }');
    const keys = before.data?.['signingKeys'] as { serial: number; active: boolean }[];
    assert.equal(keys.filter((k) => k.active).length, 1);
    const rotated = await gql('admin', 'mutation { rotateSigningKey { serial active } }');
    const serial = (rotated.data?.['rotateSigningKey'] as { serial: number }).serial;
    assert.equal(serial, Math.max(...keys.map((k) => k.serial)) + 1);
    assert.notEqual(await within(10_000, async () => ((await gql('admin', '{ signingKeys { serial active } }')).data?.['signingKeys'] as { serial: number; active: boolean }[]).some((k) => k.serial === serial && k.active)), undefined);
    assert.doesNotMatch(JSON.stringify(rotated), /PRIVATE KEY/);
    for (const user of ['alice', 'bob']) {
      const denied = await gql(user, '{ signingKeys { serial } }');
      assert.deepEqual(denied.errors[0]?.extensions?.permission, { verb: 'list', group: 'meshid.io', resource: 'signingkeys' });
    }
    const events = await gql('alice', '{ securityEvents { reason } }');
    assert.deepEqual(events.errors[0]?.extensions?.permission, { verb: 'list', group: '', resource: 'events', namespace: NS });
  });

  it('the CA, its trust bundle and the identities it issued, with expiry', async () => {
    const ca = (await gql('admin', '{ certificateAuthority { mode rootFingerprint notAfter trustBundle { fingerprint subject notAfter pem } } }')).data?.['certificateAuthority'] as {
      mode: string;
      rootFingerprint: string;
      trustBundle: { fingerprint: string; pem: string }[];
    };
    assert.equal(ca.mode, 'self-signed');
    assert.ok(ca.trustBundle.some((r) => r.fingerprint === ca.rootFingerprint && r.pem.includes('BEGIN CERTIFICATE')));
    const { csr } = await makeCsr({ uris: ['spiffe://cluster.local/ns/dev/sa/default'] });
    const root = ca.trustBundle.map((r) => r.pem).join('');
    const issued = await createCertificate(t.server.caAddress ?? '', root, await workloadToken(admin, 'dev', 'default'), csr);
    assert.equal(issued.code, undefined, issued.details);
    // The CA writes its ledger every few seconds, never per certificate.
    const seen = await within(20_000, async () => ((await gql('alice', '{ identities { spiffeId namespace notAfter } }')).data?.['identities'] as { spiffeId: string }[] | undefined)?.some((i) => i.spiffeId === 'spiffe://cluster.local/ns/dev/sa/default') ?? false);
    assert.notEqual(seen, undefined);
    const cm = await core.readNamespacedConfigMap({ namespace: NS, name: ISSUED_CONFIGMAP });
    assert.doesNotMatch(JSON.stringify(cm.data), /PRIVATE KEY|BEGIN CERTIFICATE/);
    const forbidden = await gql('alice', `{ identities(namespace: "${OTHER}") { spiffeId } }`);
    assert.equal(forbidden.errors[0]?.extensions?.code, 'FORBIDDEN');
  });

  it('registries: add, list without secrets, remove; alice is refused before anything is written', async () => {
    const add = await gql('admin', 'mutation { registryAdd(name: "gql-registry", server: "registry.example.com", username: "robot", password: "s3cret-pass") { name servers { server username } } }');
    assert.deepEqual(add.errors, []);
    const list = await gql('admin', '{ registries { name servers { server username } } }');
    assert.ok((list.data?.['registries'] as { name: string }[]).some((r) => r.name === 'gql-registry'));
    assert.doesNotMatch(JSON.stringify(list), /s3cret-pass/);
    const alice = await gql('alice', 'mutation { registryRemove(name: "gql-registry") }');
    assert.deepEqual(alice.errors[0]?.extensions?.permission, { verb: 'delete', group: 'meshid.io', resource: 'registries' });
    const removed = await gql('admin', 'mutation { registryRemove(name: "gql-registry") }');
    assert.equal(removed.data?.['registryRemove'], true);
  });

  it('recoverPlan is the plan of `meshid recover all`, read-only', async () => {
    const before = (await core.readNamespacedSecret({ namespace: NS, name: 'meshid-authentication' })).metadata?.resourceVersion;
    const res = await gql('admin', 'mutation { recoverPlan { meshidNamespace meshNamespaces steps { step summary actions { action kind name } } } }');
    assert.deepEqual(res.errors, []);
    const plan = res.data?.['recoverPlan'] as { meshidNamespace: string; steps: { step: string }[] };
    assert.equal(plan.meshidNamespace, NS);
    assert.deepEqual(plan.steps.map((s) => s.step), [...STEPS]);
    assert.equal((await core.readNamespacedSecret({ namespace: NS, name: 'meshid-authentication' })).metadata?.resourceVersion, before);
    const alice = await gql('alice', 'mutation { recoverPlan { meshidNamespace } }');
    assert.equal(alice.errors[0]?.extensions?.code, 'FORBIDDEN');
  });

  it('refuses the unauthenticated (401 problem), cookies without CSRF (403), and over-deep or costly queries (400), with no stack', async () => {
    const anonymous = await call({ method: 'POST', url: new URL('/api/graphql', base), body: { query: '{ me { name } }' } });
    assert.equal(anonymous.status, 401);
    assert.equal((anonymous.body as { code: string }).code, 'unauthenticated');
    const cookie = await call({ method: 'POST', url: new URL('/api/graphql', base), headers: { cookie: `meshid_session=${tokens['admin'] ?? ''}; meshid_csrf=abc` }, body: { query: '{ me { name } }' } });
    assert.equal(cookie.status, 403);
    assert.equal((cookie.body as { code: string }).code, 'csrf-token-required');
    const deep = await gql('admin', '{ a: me { name } b: me { name } ' + 'c: recoverPlanx }');
    assert.equal(deep.status, 400);
    assert.equal(deep.errors[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
    const nested = await gql('admin', '{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }');
    assert.equal(nested.status, 400);
    assert.match(nested.errors.map((e) => e.message).join(' '), /depth/i);
    const costly = await gql('admin', `{ ${Array.from({ length: 120 }, (_, i) => `m${i}: me { name groups uid anonymous expiresAt }`).join(' ')} }`);
    assert.equal(costly.status, 400);
    assert.match(costly.errors.map((e) => e.message).join(' '), /costs \d+; the limit is 500/);
    for (const res of [deep, nested, costly]) assert.doesNotMatch(JSON.stringify(res.errors), /stack|at .*\.ts:\d+/);
  });
});
