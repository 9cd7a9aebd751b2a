import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { SignJWT, decodeProtectedHeader } from 'jose';
import { call } from '../../src/cli/http.ts';
import { loadKubeConfig, decodeSecret } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { runCli } from '../support/cli.ts';
import { startReplica, startTestServer, within, type TestServer } from '../support/server.ts';
import { ownKubeconfig, playgroundServer } from '../support/session.ts';
import { createAuthority, issueLeaf } from '../../src/pki/index.ts';
import { refusalCode } from '../support/kube-status.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);

async function adminToken(namespace: string): Promise<string> {
  const secret = await core.readNamespacedSecret({ namespace, name: 'admin-user-token' });
  return decodeSecret(secret)['value'] ?? '';
}

/** `tls` for the playground's own meshid, which is reached over HTTPS. */
const whoami = (base: string, token: string, tls?: { ca: string }) => call({ method: 'GET', url: new URL('/api/whoami', base), headers: { authorization: `Bearer ${token}` }, ...(tls ? { tls } : {}) });
const issue = (base: string, token: string | undefined, body: unknown) =>
  call({ method: 'POST', url: new URL('/tokens/user', base), headers: token ? { authorization: `Bearer ${token}` } : {}, body });
const code = refusalCode;
const meshid = (namespace: string, ...args: string[]) => runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', namespace, ...args]);

describe('user tokens: issuing, rotation and RBAC', () => {
  let t: TestServer;
  let base = '';
  let root = '';
  before(async () => {
    t = await startTestServer('ut-rotate');
    base = t.server.httpUrl;
    root = await adminToken('ut-rotate');
  });
  after(async () => t.close());

  it('bootstraps an admin token for mesh-system:admin that may issue tokens', async () => {
    const me = await whoami(base, root);
    assert.equal(me.status, 200);
    assert.equal((me.body as { name: string }).name, 'mesh-system:admin');
    assert.deepEqual((me.body as { groups: string[] }).groups, ['mesh-system:admin', 'mesh-system:authenticated']);
    const token = await issue(base, root, { name: 'john', groups: ['team-a'], validFor: '24h' });
    assert.equal(token.status, 200);
    assert.match(String(token.headers['content-type']), /^text\/plain/);
    const header = decodeProtectedHeader(String(token.body));
    assert.deepEqual(header, { alg: 'RS256', kid: '1', typ: 'JWT' });
  });

  it('rotates as Kuma documents: key 2 signs new tokens, old ones pass until key 1 is removed', async () => {
    const old = String((await issue(base, root, { name: 'jane', groups: [], validFor: '1h' })).body);
    assert.equal(decodeProtectedHeader(old).kid, '1');

    assert.equal((await meshid('ut-rotate', 'signing-keys', 'rotate')).code, 0);
    const rotated = await within(5000, async () => decodeProtectedHeader(String((await issue(base, root, { name: 'jane', validFor: '1h' })).body)).kid === '2');
    assert.notEqual(rotated, undefined, 'new tokens carry kid 2 within 5 s');
    const fresh = String((await issue(base, root, { name: 'jane', validFor: '1h' })).body);
    assert.equal((await whoami(base, old)).status, 200, 'tokens signed by key 1 still pass');

    // The admin token was signed by key 1 too: re-issue it first, as an operator would.
    const newRoot = String((await issue(base, root, { name: 'mesh-system:admin', groups: ['mesh-system:admin'], validFor: '1h' })).body);
    const removed = await meshid('ut-rotate', 'signing-keys', 'remove', '1');
    assert.equal(removed.code, 0, removed.stderr);
    const refused = await within(5000, async () => (await whoami(base, old)).status === 401);
    assert.notEqual(refused, undefined, 'tokens of key 1 are refused within 5 s');
    const res = await whoami(base, old);
    assert.equal(code(res.body), 'token-invalid');
    assert.equal((await whoami(base, fresh)).status, 200);
    assert.equal((await whoami(base, newRoot)).status, 200);
    root = newRoot;
  });

  it('lets RBAC decide: no create on usertokens.meshid.io is a 403, and proxied calls obey bindings on the token groups', async () => {
    const john = String((await issue(base, root, { name: 'john', groups: ['team-a'], validFor: '1h' })).body);
    const denied = await issue(base, john, { name: 'eve', validFor: '1h' });
    assert.equal(denied.status, 403);
    assert.equal(code(denied.body), 'forbidden');
    const anonymous = await issue(base, undefined, { name: 'eve', validFor: '1h' });
    assert.equal(anonymous.status, 403, 'no credential is mesh-system:anonymous, which RBAC does not allow');

    const pods = () => call({ method: 'GET', url: new URL('/api/k8s/api/v1/namespaces/dev/pods', base), headers: { authorization: `Bearer ${john}` } });
    assert.equal((await pods()).status, 403);
    const bindings = admin.makeApiClient(RbacAuthorizationV1Api);
    await bindings.createNamespacedRoleBinding({
      namespace: 'dev',
      body: { metadata: { name: 'ut-rotate-team-a-view' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'mesh-system:team-a' }] },
    });
    try {
      assert.notEqual(await within(5000, async () => (await pods()).status === 200), undefined, 'a binding on group mesh-system:team-a applies to the token user');
    } finally {
      await bindings.deleteNamespacedRoleBinding({ namespace: 'dev', name: 'ut-rotate-team-a-view' });
    }
  });

  it('issues online with `meshid generate user-token`, logged in with the kubeconfig', async () => {
    const res = await runCli(['--kubeconfig', await ownKubeconfig('admin'), 'generate', 'user-token', '--name', 'robot', '--group', 'bots', '--valid-for', '2h']);
    assert.equal(res.code, 0, res.stderr);
    const playground = await playgroundServer(env);
    const me = await whoami(playground.url, res.stdout.trim(), { ca: playground.ca });
    assert.equal(me.status, 200);
    assert.deepEqual((me.body as { groups: string[] }).groups, ['mesh-system:bots', 'mesh-system:authenticated']);
    const bob = await runCli(['--kubeconfig', await ownKubeconfig('bob'), 'generate', 'user-token', '--name', 'robot', '--valid-for', '2h']);
    assert.equal(bob.code, 1);
    assert.match(bob.stderr, /may not create usertokens\.meshid\.io.*\[ERR_FORBIDDEN\]/);
  });

  it("reports the server's own code for bad input to `meshid generate user-token`, not a Kubernetes refusal", async () => {
    // Before the error table the CLI knew 13 problem codes and named every other one
    // ERR_KUBE_REJECTED ("Kubernetes refused a request") even for a plain typo.
    const res = await runCli(['--kubeconfig', await ownKubeconfig('admin'), 'generate', 'user-token', '--name', ' ci', '--valid-for', '1h']);
    assert.notEqual(res.code, 0);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /start or end with a space.*\(invalid-request\) \[ERR_INVALID_ARGUMENT\]/);
    assert.doesNotMatch(res.stderr, /ERR_KUBE_REJECTED/);
  });

  it('never issues a token that would impersonate system:masters or a service account', async () => {
    for (const body of [{ name: 'eve', groups: ['system:masters'], validFor: '1h' }, { name: 'system:serviceaccount:kube-system:default', validFor: '1h' }]) {
      const res = await issue(base, root, body);
      assert.equal(res.status, 400);
      assert.equal(code(res.body), 'token-identity-reserved');
    }
  });

  it('names each bad issue request with its own problem code', async () => {
    const cases: [unknown, number, string][] = [
      [{ groups: ['a'], validFor: '1h' }, 400, 'token-name-required'],
      [{ name: 'x' }, 400, 'token-valid-for-invalid'],
      [{ name: 'x', validFor: '0s' }, 400, 'token-valid-for-invalid'],
      [{ name: 'x', validFor: 'soon' }, 400, 'token-valid-for-invalid'],
      [{ name: 'x', validFor: '1h', groups: 'admins' }, 400, 'invalid-request'],
    ];
    for (const [body, status, problem] of cases) {
      const res = await issue(base, root, body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(code(res.body), problem, JSON.stringify(body));
    }
    const garbage = await call({ method: 'POST', url: new URL('/tokens/user', base), headers: { authorization: `Bearer ${root}`, 'content-type': 'application/json' } });
    assert.equal(garbage.status, 400);
    const huge = await issue(base, root, { name: 'x'.repeat(3 * 1024 * 1024), validFor: '1h' });
    assert.equal(huge.status, 413);
    assert.equal(code(huge.body), 'payload-too-large');
  });

  it('refuses forged and malformed user tokens with 401 and a code', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const claims = { Name: 'mallory', Groups: ['system:masters'] };
    const jwt = (header: Record<string, unknown>, key = privateKey, exp = '1h') =>
      new SignJWT(claims).setProtectedHeader({ alg: 'RS256', ...header }).setJti('x').setIssuedAt().setExpirationTime(exp).sign(key);
    const pem = publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: '2' }).setJti('x').setExpirationTime('1h').sign(new TextEncoder().encode(pem));
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: '2' })).toString('base64url')}.${Buffer.from(JSON.stringify({ ...claims, jti: 'x', exp: 9999999999 })).toString('base64url')}.`;
    const cases: [string, string, string][] = [
      ['foreign key, real kid', await jwt({ kid: '2' }), 'token-invalid'],
      ['no kid', await jwt({}), 'token-invalid'],
      ['numeric kid', await jwt({ kid: 2 }), 'token-invalid'],
      ['unknown kid', await jwt({ kid: '99' }), 'token-invalid'],
      ['path traversal kid', await jwt({ kid: '../../etc/passwd' }), 'token-invalid'],
      ['alg none', none, 'token-invalid'],
      ['HS256 with the public key', hs, 'token-invalid'],
    ];
    for (const [label, token, problem] of cases) {
      const res = await whoami(base, token);
      assert.equal(res.status, 401, label);
      assert.equal(code(res.body), problem, label);
    }
  });
});

describe('user tokens: revocation on two replicas', () => {
  let t: TestServer;
  let replica: Awaited<ReturnType<typeof startReplica>>;
  before(async () => {
    t = await startTestServer('ut-revoke');
    replica = await startReplica('ut-revoke');
  });
  after(async () => {
    await replica.close();
    await t.close();
  });

  it('refuses a revoked jti on every replica, through the watch', async () => {
    const root = await adminToken('ut-revoke');
    const token = String((await issue(t.server.httpUrl, root, { name: 'john', validFor: '1h' })).body);
    const { jti } = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { jti: string };
    for (const base of [t.server.httpUrl, replica.httpUrl]) assert.equal((await whoami(base, token)).status, 200);
    const revoke = await meshid('ut-revoke', 'tokens', 'revoke', jti);
    assert.equal(revoke.code, 0, revoke.stderr);
    for (const base of [t.server.httpUrl, replica.httpUrl]) {
      assert.notEqual(await within(5000, async () => (await whoami(base, token)).status === 401), undefined);
      assert.equal(code((await whoami(base, token)).body), 'token-revoked');
    }
    assert.equal((await whoami(replica.httpUrl, root)).status, 200, 'other tokens are untouched');
  });
});

describe('user tokens: offline issuing', () => {
  let t: TestServer;
  let keyFile = '';
  let privateKey: KeyObject;
  before(async () => {
    // The kumactl flow: generate signing-key, generate public-key, configure the server with
    // the public key only (kid key-1, as a PEM file), and turn its own issuer off.
    const dir = await mkdtemp(join(tmpdir(), 'meshid-offline-'));
    keyFile = join(dir, 'key-private.pem');
    const key = await runCli(['generate', 'signing-key', '--format', 'pem']);
    assert.equal(key.code, 0, key.stderr);
    await writeFile(keyFile, key.stdout);
    privateKey = createPrivateKey(key.stdout);
    const pub = await runCli(['generate', 'public-key', '--signing-key-path', keyFile]);
    assert.equal(pub.code, 0, pub.stderr);
    assert.match(pub.stdout, /^-----BEGIN RSA PUBLIC KEY-----/);
    await writeFile(join(dir, 'key-public.pem'), pub.stdout);
    t = await startTestServer('ut-offline', {
      userTokens: { enableIssuer: false, validator: { useSecrets: false, publicKeys: [{ kid: 'key-1', keyFile: join(dir, 'key-public.pem') }] } },
    });
  });
  after(async () => t.close());

  it('validates a token minted by `meshid generate user-token --signing-key-path` with only the public key configured', async () => {
    const minted = await runCli(['generate', 'user-token', '--name', 'ci-bot', '--group', 'ci', '--valid-for', '1h', '--signing-key-path', keyFile, '--kid', 'key-1']);
    assert.equal(minted.code, 0, minted.stderr);
    const token = minted.stdout.trim();
    const me = await whoami(t.server.httpUrl, token);
    assert.equal(me.status, 200);
    assert.equal((me.body as { name: string }).name, 'mesh-system:ci-bot');
    assert.deepEqual((me.body as { groups: string[] }).groups, ['mesh-system:ci', 'mesh-system:authenticated']);
  });

  it('validates a token built by an independent JWT library with the documented claims', async () => {
    const token = await new SignJWT({ Name: 'zone-cp', Groups: ['zones'] }).setProtectedHeader({ alg: 'RS256', kid: 'key-1', typ: 'JWT' }).setJti(crypto.randomUUID()).setIssuedAt().setNotBefore('0s').setExpirationTime('10m').sign(privateKey);
    const me = await whoami(t.server.httpUrl, token);
    assert.equal(me.status, 200);
    assert.equal((me.body as { name: string }).name, 'mesh-system:zone-cp');
  });

  it('refuses expired and not-yet-valid offline tokens', async () => {
    const expired = await new SignJWT({ Name: 'old' }).setProtectedHeader({ alg: 'RS256', kid: 'key-1' }).setJti('a').setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(privateKey);
    assert.equal(code((await whoami(t.server.httpUrl, expired)).body), 'token-expired');
    const early = await new SignJWT({ Name: 'early' }).setProtectedHeader({ alg: 'RS256', kid: 'key-1' }).setJti('b').setNotBefore('1h').setExpirationTime('2h').sign(privateKey);
    const res = await whoami(t.server.httpUrl, early);
    assert.equal(res.status, 401);
    assert.equal(code(res.body), 'token-invalid');
  });

  it('has no issuer, no signing-key Secret and no admin token when the issuer is disabled', async () => {
    const res = await issue(t.server.httpUrl, undefined, { name: 'x', validFor: '1h' });
    assert.equal(res.status, 400);
    assert.equal(code(res.body), 'issuer-disabled');
    const secrets = await core.listNamespacedSecret({ namespace: 'ut-offline' });
    const names = secrets.items.map((s) => s.metadata?.name ?? '');
    assert.ok(!names.includes('admin-user-token'));
    assert.ok(!names.some((n) => n.startsWith('user-token-signing-key-')));
    const jwks = await call({ method: 'GET', url: new URL('/.well-known/jwks.json', t.server.httpUrl) });
    assert.deepEqual((jwks.body as { keys: { kid: string }[] }).keys.map((k) => k.kid), ['key-1']);
  });
});

describe('user tokens: admin bootstrap turned off', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer('ut-noadmin', { userTokens: { bootstrapAdminToken: false } });
  });
  after(async () => t.close());

  it('creates a signing key but no admin-user-token', async () => {
    const names = (await core.listNamespacedSecret({ namespace: 'ut-noadmin' })).items.map((s) => s.metadata?.name ?? '');
    assert.ok(names.includes('user-token-signing-key-1'));
    assert.ok(!names.includes('admin-user-token'));
  });
});

describe('admin client certificates (deprecated)', () => {
  let t: TestServer;
  let ca: Awaited<ReturnType<typeof createAuthority>>;
  before(async () => {
    ca = await createAuthority('meshid-admin-clients');
    const caFile = join(await mkdtemp(join(tmpdir(), 'meshid-admin-ca-')), 'ca.crt');
    await writeFile(caFile, ca.certPem);
    t = await startTestServer('ut-admincert', { adminClientCerts: { caFile } });
  });
  after(async () => t.close());

  it('authenticates an HTTPS client certificate from the configured CA as mesh-system:admin, and no other', async () => {
    const client = await issueLeaf(ca, { commonName: 'anyone', usage: 'client' });
    const tls = { rejectUnauthorized: false, cert: client.certPem, key: client.keyPem };
    const me = await call({ method: 'GET', url: new URL('/api/whoami', t.server.httpsUrl), tls });
    assert.equal(me.status, 200);
    assert.equal((me.body as { name: string }).name, 'mesh-system:admin');
    const issued = await call({ method: 'POST', url: new URL('/tokens/user', t.server.httpsUrl), tls, body: { name: 'john', validFor: '1h' } });
    assert.equal(issued.status, 200, 'mesh-system:admin may create user tokens');

    const stranger = await issueLeaf(await createAuthority('someone-else'), { commonName: 'admin', usage: 'client' });
    const refused = await call({ method: 'GET', url: new URL('/api/whoami', t.server.httpsUrl), tls: { rejectUnauthorized: false, cert: stranger.certPem, key: stranger.keyPem } });
    assert.equal(refused.status, 401);
    assert.equal(code(refused.body), 'unauthenticated');
    const plain = await call({ method: 'GET', url: new URL('/api/whoami', t.server.httpUrl) });
    assert.equal(plain.status, 401, 'the HTTP port never sees certificates');
  });
});

describe('control-plane contexts in the CLI (kumactl style)', () => {
  let t: TestServer;
  let cliEnv: NodeJS.ProcessEnv;
  before(async () => {
    t = await startTestServer('ut-cp');
    // No kubeconfig at all: the control plane's token is the only credential.
    cliEnv = { ...process.env, MESHID_CONFIG: join(await mkdtemp(join(tmpdir(), 'meshid-cp-')), 'config.yaml'), KUBECONFIG: '/nonexistent/kubeconfig' };
  });
  after(async () => t.close());
  const cli = (...args: string[]) => runCli(args, { env: cliEnv });

  it('talks to the current control plane with its user token, and falls back to the kubeconfig when it is removed', async () => {
    const token = await adminToken('ut-cp');
    const added = await cli('config', 'control-planes', 'add', '--name', 'prod', '--address', t.server.httpsUrl, '--auth-type', 'tokens', '--auth-conf', `token=${token}`, '--skip-verify');
    assert.equal(added.code, 0, added.stderr);

    const me = await cli('-o', 'json', 'whoami');
    assert.equal(me.code, 0, me.stderr);
    assert.equal((JSON.parse(me.stdout) as { name: string }).name, 'mesh-system:admin');

    const issued = await cli('generate', 'user-token', '--name', 'ci', '--group', 'ci', '--valid-for', '1h');
    assert.equal(issued.code, 0, issued.stderr);
    const ci = await whoami(t.server.httpUrl, issued.stdout.trim());
    assert.equal((ci.body as { name: string }).name, 'mesh-system:ci');

    const listed = await cli('-o', 'json', 'config', 'control-planes', 'list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(!listed.stdout.includes(token), 'list never prints the token');
    assert.equal((JSON.parse(listed.stdout) as { currentControlPlane: string }).currentControlPlane, 'prod');

    assert.equal((await cli('config', 'control-planes', 'remove', 'prod')).code, 0);
    const fallback = await cli('whoami');
    assert.notEqual(fallback.code, 0, 'with no control plane and no kubeconfig there is nothing to log in with');
  });

  it('refuses a wrong token and bad flags with one line and a non-zero exit', async () => {
    const bad = await cli('config', 'control-planes', 'add', '--name', 'bad', '--address', t.server.httpUrl, '--auth-type', 'tokens', '--auth-conf', 'token=not-a-token');
    assert.equal(bad.code, 0, bad.stderr);
    const me = await cli('whoami');
    assert.notEqual(me.code, 0);
    assert.match(me.stderr, /whoami failed/);
    assert.equal(me.stderr.trim().split('\n').length <= 2, true, me.stderr);

    const noScheme = await cli('config', 'control-planes', 'add', '--name', 'x', '--address', 'localhost:5681', '--auth-type', 'tokens', '--auth-conf', 'token=t');
    assert.notEqual(noScheme.code, 0);
    assert.match(noScheme.stderr, /--address/);
    const unknown = await cli('config', 'control-planes', 'use', 'nope');
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /no control plane is named "nope"/);
  });
});
