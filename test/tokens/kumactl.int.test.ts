// Interop: Kuma's own kumactl and Kuma's own token validator, built from github.com/kumahq/kuma,
// used against meshid exactly as a Kuma user would use them against kuma-cp.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { KUMA_VERSION, ensureKumaPeer, type KumaPeer } from '../../src/cluster/index.ts';
import { call } from '../../src/cli/http.ts';
import { decodeSecret, loadKubeConfig } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { runCli, runProgram, type CliResult } from '../support/cli.ts';
import { refusalCode } from '../support/kube-status.ts';
import { startTestServer, within, type TestServer } from '../support/server.ts';

const NAMESPACE = 'kumactl-interop';
const env = testEnv();
const core = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin }).makeApiClient(CoreV1Api);

interface Identity {
  name: string;
  groups: string[];
}

const whoami = (base: string, token: string) => call({ method: 'GET', url: new URL('/api/whoami', base), headers: { authorization: `Bearer ${token}` } });
/** Who meshid takes `token` for (name and groups of /api/whoami), or its refusal code. */
async function identity(base: string, token: string): Promise<Identity | string> {
  const res = await whoami(base, token);
  if (res.status !== 200) return `${res.status} ${String(refusalCode(res.body))}`;
  const { name, groups } = res.body as Identity;
  return { name, groups };
}
const meshid = (...args: string[]) => runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NAMESPACE, ...args]);
const claimsOf = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

/** Succeeded, and without kumactl's WARNING line (printed on stderr when it cannot vouch for the server's version). */
function assertClean(result: CliResult, what: string): void {
  assert.equal(result.code, 0, `${what}: ${result.stderr}`);
  assert.doesNotMatch(result.stderr, /WARNING/i, what);
}

describe(`kumactl (${KUMA_VERSION}) against meshid`, () => {
  let peer: KumaPeer;
  let t: TestServer;
  let home = '';
  let kumactl: (...args: string[]) => Promise<CliResult>;
  /** Asks Kuma's own validator, holding the public key `pem` under `kid`, what it makes of `token`. */
  let kumaValidates: (token: string, kid: string, pem: string) => Promise<CliResult>;

  before(async () => {
    peer = await ensureKumaPeer();
    t = await startTestServer(NAMESPACE);
    // kumactl keeps its config under $HOME/.kumactl unless told: a home of its own, and the file named too.
    home = await mkdtemp(join(tmpdir(), 'meshid-kumactl-'));
    const kumaEnv = { PATH: '/usr/bin:/bin', HOME: home };
    kumactl = (...args) => runProgram(peer.kumactl, [...args, '--config-file', join(home, 'kumactl.yaml')], { env: kumaEnv });
    kumaValidates = async (token, kid, pem) => {
      const file = join(home, `${kid}.pub`);
      await writeFile(file, pem);
      return runProgram(peer.validateUserToken, ['-kid', kid, '-public-key', file], { env: kumaEnv, input: token });
    };
  });
  after(async () => {
    await t.close();
    await rm(home, { recursive: true, force: true });
  });

  it('adds meshid with `config control-planes add` and only Kuma\'s documented flags', async () => {
    const admin = decodeSecret(await core.readNamespacedSecret({ namespace: NAMESPACE, name: 'admin-user-token' }))['value'] ?? '';
    const added = await kumactl('config', 'control-planes', 'add', '--name', 'meshid', '--address', t.server.httpUrl, '--auth-type=tokens', '--auth-conf', `token=${admin}`);
    assertClean(added, 'control-planes add');
    assert.match(added.stdout, /added Control Plane "meshid"/);
    const listed = await kumactl('config', 'control-planes', 'list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`\\*\\s+meshid\\s+${t.server.httpUrl.replace(/[.]/g, '\\.')}`));
  });

  it('issues online through POST /tokens/user with `generate user-token`, with no warning, with and without --group', async () => {
    const issued = await kumactl('generate', 'user-token', '--name', 'ci-bot', '--group', 'ci', '--group', 'deployers', '--valid-for', '1h');
    assertClean(issued, 'generate user-token');
    assert.deepEqual(await identity(t.server.httpUrl, issued.stdout.trim()), { name: 'mesh-system:ci-bot', groups: ['mesh-system:ci', 'mesh-system:deployers', 'mesh-system:authenticated'] });

    const bare = await kumactl('generate', 'user-token', '--name', 'solo', '--valid-for', '1h');
    assertClean(bare, 'generate user-token without --group');
    assert.deepEqual(await identity(t.server.httpUrl, bare.stdout.trim()), { name: 'mesh-system:solo', groups: ['mesh-system:authenticated'] });
  });

  it("issues tokens Kuma's own validator accepts, with meshid's key given to Kuma as a public key", async () => {
    const exported = await meshid('signing-keys', 'export', '1');
    assert.equal(exported.code, 0, exported.stderr);
    const keyFile = join(home, 'meshid-key-1.pem');
    await writeFile(keyFile, exported.stdout, { mode: 0o600 });
    // kumactl derives the public key from meshid's private key file, as it would from its own.
    const pub = await kumactl('generate', 'public-key', '--signing-key-path', keyFile);
    assertClean(pub, 'generate public-key');

    const issued = await kumactl('generate', 'user-token', '--name', 'zone-cp', '--group', 'zones', '--valid-for', '10m');
    assertClean(issued, 'generate user-token');
    const token = issued.stdout.trim();
    const claims = claimsOf(token);
    assert.equal(claims['iat'], Number(claims['nbf']) + 300, 'nbf 5 minutes before iat, as Kuma issues them');
    const accepted = await kumaValidates(token, '1', pub.stdout);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.deepEqual(JSON.parse(accepted.stdout), { Name: 'zone-cp', Groups: ['zones'] });

    // And the control: Kuma refuses it under a key that did not sign it.
    const other = await kumactl('generate', 'signing-key', '--format=pem');
    await writeFile(join(home, 'other.pem'), other.stdout, { mode: 0o600 });
    const otherPub = await kumactl('generate', 'public-key', '--signing-key-path', join(home, 'other.pem'));
    const refused = await kumaValidates(token, '1', otherPub.stdout);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /verification error|signature/i);
  });

  it('accepts tokens kumactl signs offline with its own key once meshid holds that key, groups or none', async () => {
    const generated = await kumactl('generate', 'signing-key', '--format=pem');
    assertClean(generated, 'generate signing-key');
    const keyFile = join(home, 'kumactl-key.pem');
    await writeFile(keyFile, generated.stdout, { mode: 0o600 });
    const imported = await meshid('signing-keys', 'import', '2', '--file', keyFile);
    assert.equal(imported.code, 0, imported.stderr);

    const withGroups = await kumactl('generate', 'user-token', '--name', 'offline', '--group', 'ops', '--valid-for', '1h', '--signing-key-path', keyFile, '--kid', '2');
    assertClean(withGroups, 'offline generate user-token');
    // Without --group kumactl writes "Groups": null (Go's nil slice).
    const bare = await kumactl('generate', 'user-token', '--name', 'n', '--valid-for', '1h', '--signing-key-path', keyFile, '--kid', '2');
    assertClean(bare, 'offline generate user-token without --group');
    assert.equal(claimsOf(bare.stdout.trim())['Groups'], null);

    // Every replica picks the imported key up from its Secret through a watch.
    assert.notEqual(await within(5000, async () => (await whoami(t.server.httpUrl, withGroups.stdout.trim())).status === 200), undefined, 'a token of the imported key passes within 5 s');
    assert.deepEqual(await identity(t.server.httpUrl, withGroups.stdout.trim()), { name: 'mesh-system:offline', groups: ['mesh-system:ops', 'mesh-system:authenticated'] });
    assert.deepEqual(await identity(t.server.httpUrl, bare.stdout.trim()), { name: 'mesh-system:n', groups: ['mesh-system:authenticated'] });

    // The highest serial signs, so meshid now issues online with kumactl's key, and Kuma's validator
    // takes those tokens with the public key kumactl derived from it.
    const online = await kumactl('generate', 'user-token', '--name', 'after-import', '--valid-for', '10m');
    assertClean(online, 'generate user-token after import');
    const pub = await kumactl('generate', 'public-key', '--signing-key-path', keyFile);
    const accepted = await kumaValidates(online.stdout.trim(), '2', pub.stdout);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.deepEqual(JSON.parse(accepted.stdout), { Name: 'after-import', Groups: [] });
  });

  it('refuses a token kumactl issued once it is revoked, with token-revoked, and no other', async () => {
    const kept = (await kumactl('generate', 'user-token', '--name', 'kept', '--valid-for', '1h')).stdout.trim();
    const doomed = await kumactl('generate', 'user-token', '--name', 'doomed', '--valid-for', '1h');
    assertClean(doomed, 'generate user-token');
    const token = doomed.stdout.trim();
    assert.deepEqual(await identity(t.server.httpUrl, token), { name: 'mesh-system:doomed', groups: ['mesh-system:authenticated'] });
    const revoked = await meshid('tokens', 'revoke', String(claimsOf(token)['jti']));
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.notEqual(await within(5000, async () => (await whoami(t.server.httpUrl, token)).status === 401), undefined, 'refused within 5 s');
    assert.equal(await identity(t.server.httpUrl, token), '401 token-revoked');
    assert.deepEqual(await identity(t.server.httpUrl, kept), { name: 'mesh-system:kept', groups: ['mesh-system:authenticated'] });
  });

  it("validates kumactl's offline tokens on a control plane given only kumactl's public key, as Kuma configures one", async () => {
    const generated = await kumactl('generate', 'signing-key', '--format=pem');
    assertClean(generated, 'generate signing-key');
    const keyFile = join(home, 'offline-key.pem');
    await writeFile(keyFile, generated.stdout, { mode: 0o600 });
    const pub = await kumactl('generate', 'public-key', '--signing-key-path', keyFile);
    assertClean(pub, 'generate public-key');
    const pubFile = join(home, 'offline-key.pub');
    await writeFile(pubFile, pub.stdout);
    // Kuma's apiServer.authn.tokens: no issuer, no keys in Secrets, one static public key by kid.
    const offline = await startTestServer(`${NAMESPACE}-static`, {
      userTokens: { enableIssuer: false, validator: { useSecrets: false, publicKeys: [{ kid: 'kumactl-1', keyFile: pubFile }] } },
    });
    try {
      const bare = await kumactl('generate', 'user-token', '--name', 'edge', '--valid-for', '1h', '--signing-key-path', keyFile, '--kid', 'kumactl-1');
      assertClean(bare, 'offline generate user-token');
      assert.deepEqual(await identity(offline.server.httpUrl, bare.stdout.trim()), { name: 'mesh-system:edge', groups: ['mesh-system:authenticated'] });
      const wrongKid = await kumactl('generate', 'user-token', '--name', 'edge', '--valid-for', '1h', '--signing-key-path', keyFile, '--kid', 'kumactl-2');
      assert.equal(await identity(offline.server.httpUrl, wrongKid.stdout.trim()), '401 token-invalid');
    } finally {
      await offline.close();
    }
  });
});
