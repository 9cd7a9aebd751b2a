import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { decodeSecret, loadKubeConfig } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { runCli } from '../support/cli.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const STORE = 'reg-int-store';
const [A, B, OUTSIDE] = ['reg-int-a', 'reg-int-b', 'reg-int-outside'];
const common = ['--kubeconfig', env.kubeconfigs.admin, 'registry'];
const scope = ['--registry-namespace', STORE];
const targets = [...scope, '--mesh-namespaces', `${A},${B},reg-int-absent`];
const meshid = (...args: string[]) => runCli([...common, ...args]);
const add = (password: string, ...args: string[]) => runCli([...common, 'add', ...scope, '--password-stdin', ...args], { input: password });

/** Every Secret of a namespace by name and resourceVersion: what "nothing changed" compares. */
async function snapshot(namespace: string): Promise<Record<string, string>> {
  const list = await core.listNamespacedSecret({ namespace });
  return Object.fromEntries(list.items.map((s) => [s.metadata?.name ?? '', s.metadata?.resourceVersion ?? '']));
}

const pullSecrets = async (namespace: string, sa = 'default'): Promise<string[]> =>
  ((await core.readNamespacedServiceAccount({ namespace, name: sa })).imagePullSecrets ?? []).map((r) => r.name ?? '');

async function waitForDefaultAccount(namespace: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await core.readNamespacedServiceAccount({ namespace, name: 'default' }).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no default ServiceAccount in ${namespace} after 10 s`);
}

describe('meshid registry against the real apiserver', () => {
  before(async () => {
    for (const ns of [A, B, OUTSIDE]) await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const ns of [A, B]) await waitForDefaultAccount(ns);
    // Something of the user's own, which reconcile must keep.
    const sa = await core.readNamespacedServiceAccount({ namespace: A, name: 'default' });
    await core.replaceNamespacedServiceAccount({ namespace: A, name: 'default', body: { ...sa, imagePullSecrets: [{ name: 'users-own' }] } });
  });
  after(async () => {
    for (const ns of [A, B, OUTSIDE, STORE]) await core.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('adds an entry from --password-stdin as a labelled dockerconfigjson Secret, and lists it without any secret', async () => {
    const res = await add('hunter2\n', '--name', 'corp', '--server', 'registry.example.com:5000', '--username', 'robot');
    assert.equal(res.code, 0, res.stderr);
    const secret = await core.readNamespacedSecret({ namespace: STORE, name: 'corp' });
    assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
    assert.equal(secret.metadata?.labels?.['app.kubernetes.io/part-of'], 'meshid');
    const stored = JSON.parse(decodeSecret(secret)['.dockerconfigjson'] ?? '') as { auths: Record<string, { auth: string }> };
    assert.equal(Buffer.from(stored.auths['registry.example.com:5000']?.auth ?? '', 'base64').toString(), 'robot:hunter2', 'the trailing newline of stdin is not part of the password');

    const list = await meshid('list', ...scope);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^corp +registry\.example\.com:5000 +robot /m);
    const json = await meshid('list', ...scope, '-o', 'json');
    const entries = JSON.parse(json.stdout) as { name: string; servers: { server: string; username: string }[] }[];
    assert.deepEqual(entries.map((e) => [e.name, e.servers]), [['corp', [{ server: 'registry.example.com:5000', username: 'robot' }]]]);
    for (const out of [list.stdout, list.stderr, json.stdout, res.stdout, res.stderr]) {
      assert.ok(!out.includes('hunter2') && !out.includes(Buffer.from('robot:hunter2').toString('base64')), 'no password or auth string is ever printed');
    }
  });

  it('refuses bad input with a clear error and changes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshid-registry-'));
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{"auths": {"registry.example.com": {"auth": ');
    const helperOnly = join(dir, 'helper.json');
    await writeFile(helperOnly, JSON.stringify({ auths: { 'registry.example.com': {} }, credsStore: 'desktop' }));
    const before = await snapshot(STORE);
    const cases: [string, () => Promise<{ code: number | null; stderr: string }>, string, RegExp][] = [
      ['missing server', () => add('pw', '--name', 'nosrv', '--username', 'u'), 'ERR_REGISTRY_INVALID', /needs a server/],
      ['bad server', () => add('pw', '--name', 'badsrv', '--server', 'not a host', '--username', 'u'), 'ERR_REGISTRY_INVALID', /not a registry address/],
      ['empty password', () => add('\n', '--name', 'nopw', '--server', 'r.example.com', '--username', 'u'), 'ERR_REGISTRY_INVALID', /password is empty/],
      ['password on the command line', () => meshid('add', ...scope, '--name', 'x', '--server', 'r.example.com', '--username', 'u'), 'ERR_REGISTRY_INVALID', /--password-stdin/],
      ['invalid JSON', () => meshid('add', ...scope, '--name', 'broken', '--docker-config', broken), 'ERR_REGISTRY_INVALID', /not valid JSON/],
      ['credentials in a helper', () => meshid('add', ...scope, '--name', 'helper', '--docker-config', helperOnly), 'ERR_REGISTRY_INVALID', /holds no credentials/],
      ['unreadable file', () => meshid('add', ...scope, '--name', 'missing', '--docker-config', join(dir, 'nope.json')), 'ERR_REGISTRY_INVALID', /cannot read it \(ENOENT\)/],
      ['bad name', () => add('pw', '--name', 'Corp_1', '--server', 'r.example.com', '--username', 'u'), 'ERR_REGISTRY_INVALID', /not a valid entry name/],
      ['existing entry', () => add('new', '--name', 'corp', '--server', 'registry.example.com:5000', '--username', 'robot'), 'ERR_REGISTRY_EXISTS', /already exists/],
    ];
    for (const [what, run, code, message] of cases) {
      const res = await run();
      assert.equal(res.code, 1, `${what}: exit code`);
      assert.match(res.stderr, new RegExp(`\\[${code}\\]`), `${what}: ${res.stderr}`);
      assert.match(res.stderr, message, what);
    }
    assert.deepEqual(await snapshot(STORE), before, 'not one Secret was created or changed');
    const removeMissing = await meshid('remove', ...scope, 'no-such-entry');
    assert.equal(removeMissing.code, 1);
    assert.match(removeMissing.stderr, /\[ERR_NOT_FOUND\]/);
  });

  it('reconciles into the mesh namespaces: copies, imagePullSecrets, idempotent, never outside them', async () => {
    const dry = await meshid('reconcile', ...targets, '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`Secret ${A}/corp: would be created`));
    assert.equal((await snapshot(A))['corp'], undefined, '--dry-run created nothing');

    const first = await meshid('reconcile', ...targets, '-o', 'json');
    assert.equal(first.code, 0, first.stderr);
    const result = JSON.parse(first.stdout) as { namespaces: string[]; absentNamespaces: string[]; copies: { namespace: string; action: string }[] };
    assert.deepEqual(result.namespaces, [A, B]);
    assert.deepEqual(result.absentNamespaces, ['reg-int-absent']);
    assert.deepEqual(result.copies.map((c) => `${c.namespace}:${c.action}`), [`${A}:created`, `${B}:created`]);
    const original = await core.readNamespacedSecret({ namespace: STORE, name: 'corp' });
    for (const ns of [A, B]) {
      const copy = await core.readNamespacedSecret({ namespace: ns, name: 'corp' });
      assert.equal(copy.type, 'kubernetes.io/dockerconfigjson');
      assert.deepEqual(copy.data, original.data);
    }
    assert.deepEqual(await pullSecrets(A), ['users-own', 'corp'], "the user's own pull secret is kept");
    assert.deepEqual(await pullSecrets(B), ['corp']);
    assert.equal((await snapshot(OUTSIDE))['corp'], undefined, 'nothing outside the mesh namespaces');

    const versions = { a: await snapshot(A), sa: (await core.readNamespacedServiceAccount({ namespace: A, name: 'default' })).metadata?.resourceVersion };
    const second = await meshid('reconcile', ...targets, '-o', 'json');
    assert.deepEqual((JSON.parse(second.stdout) as { copies: { action: string }[] }).copies.map((c) => c.action), ['unchanged', 'unchanged']);
    assert.deepEqual(await snapshot(A), versions.a, 'a second run writes nothing');
    assert.equal((await core.readNamespacedServiceAccount({ namespace: A, name: 'default' })).metadata?.resourceVersion, versions.sa);
  });

  it('re-keys with add --replace, and reconcile carries the new credentials out', async () => {
    const res = await add('rotated-pw', '--name', 'corp', '--server', 'registry.example.com:5000', '--username', 'robot2', '--replace');
    assert.equal(res.code, 0, res.stderr);
    const again = await meshid('reconcile', ...targets);
    assert.equal(again.code, 0, again.stderr);
    const copy = JSON.parse(decodeSecret(await core.readNamespacedSecret({ namespace: B, name: 'corp' }))['.dockerconfigjson'] ?? '') as { auths: Record<string, { username: string }> };
    assert.equal(copy.auths['registry.example.com:5000']?.username, 'robot2');
  });

  it("leaves a Secret that is not meshid's alone, and says so with a non-zero exit", async () => {
    await core.createNamespacedSecret({ namespace: B, body: { metadata: { name: 'other' }, type: 'Opaque', stringData: { x: 'y' } } });
    const added = await runCli([...common, 'add', ...scope, '--name', 'other', '--docker-config', '-'], { input: JSON.stringify({ auths: { 'ghcr.io': { username: 'u', password: 'p' } } }) });
    assert.equal(added.code, 0, added.stderr);
    const res = await meshid('reconcile', ...targets);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, new RegExp(`warning: Secret ${B}/other: .*not a meshid copy`));
    assert.equal(decodeSecret(await core.readNamespacedSecret({ namespace: B, name: 'other' }))['x'], 'y');
    assert.ok(!(await pullSecrets(B)).includes('other'), 'a conflicting name is not referenced');
    assert.ok((await pullSecrets(A)).includes('other'), 'where there is no conflict it is placed');
    assert.equal((await meshid('remove', ...scope, 'other')).code, 0);
  });

  it('after remove, reconcile deletes the copies and takes back only its own references', async () => {
    const removed = await meshid('remove', ...scope, 'corp');
    assert.equal(removed.code, 0, removed.stderr);
    const res = await meshid('reconcile', ...targets);
    assert.equal(res.code, 0, res.stderr);
    for (const ns of [A, B]) assert.equal((await snapshot(ns))['corp'], undefined, `copy in ${ns} deleted`);
    assert.deepEqual(await pullSecrets(A), ['users-own']);
    assert.deepEqual(await pullSecrets(B), []);
    assert.ok((await snapshot(B))['other'], "the user's Secret named like a removed entry is still there");
  });
});
