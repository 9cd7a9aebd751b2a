import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { readExtension } from '../../src/kube/index.ts';
import { runCli } from '../support/cli.ts';
import { testEnv } from '../support/env.ts';
import { ownKubeconfig, sessionKeys, signSession } from '../support/session.ts';

const env = testEnv();

interface KubectlRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A session token for a sample user, and the CA meshid's HTTPS port presents, as `meshid login` stores them. */
async function session(user: 'alice' | 'bob'): Promise<{ token: string; caFile: string }> {
  const kubeconfig = await ownKubeconfig(user);
  const res = await runCli(['--kubeconfig', kubeconfig, 'login', '-o', 'json']);
  assert.equal(res.code, 0, res.stderr);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const ca = Buffer.from((await readExtension(kubeconfig, kc.getCurrentContext()))['certificate-authority-data'] ?? '', 'base64');
  const caFile = join(await mkdtemp(join(tmpdir(), 'meshid-kubectl-ca-')), 'ca.crt');
  await writeFile(caFile, ca);
  return { token: (JSON.parse(res.stdout) as { token: string }).token, caFile };
}

/** The real kubectl, with a kubeconfig whose server is meshid's proxy over verified TLS. */
async function kubectl(token: string, caFile: string, args: string[]): Promise<KubectlRun> {
  const dir = await mkdtemp(join(tmpdir(), 'meshid-kubectl-'));
  const kubeconfig = join(dir, 'config');
  await writeFile(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'meshid', cluster: { server: `${env.server.https}/api/k8s`, 'certificate-authority': caFile, 'insecure-skip-tls-verify': false } }],
      users: [{ name: 'session', user: { token } }],
      contexts: [{ name: 'meshid', context: { cluster: 'meshid', user: 'session' } }],
      'current-context': 'meshid',
    }),
  );
  return new Promise((resolve) => {
    execFile(env.kubectl, ['--kubeconfig', kubeconfig, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe("kubectl shows meshid's refusals (Kubernetes Status under /api/k8s)", { timeout: 120_000 }, () => {
  it("--as is refused with meshid's reason and what to do; kubectl exits non-zero", async () => {
    const { token, caFile } = await session('bob');
    // kubectl decodes a Status on a resource request; its discovery step (as in `get pods`) prints
    // only the HTTP reason, whatever the server says, so `get pods` shows Forbidden and exits 1.
    const pods = await kubectl(token, caFile, ['get', 'pods', '-n', 'dev', '--as=admin']);
    assert.notEqual(pods.code, 0, pods.stdout);
    assert.match(pods.stderr, /Error from server \(Forbidden\)/, pods.stderr);
    const raw = await kubectl(token, caFile, ['get', '--raw', '/api/v1/namespaces/dev/pods', '--as=admin']);
    assert.notEqual(raw.code, 0, raw.stdout);
    assert.match(raw.stderr, /Error from server \(Forbidden\): header impersonate-user is not accepted: meshid sets impersonation itself\. Drop --as and --as-group/, raw.stderr);
  });

  it('a garbage or expired session token reads as Unauthorized with what to run', async () => {
    const { caFile } = await session('bob');
    const garbage = await kubectl('not-a-session-token', caFile, ['auth', 'whoami']);
    assert.notEqual(garbage.code, 0, garbage.stdout);
    assert.match(garbage.stderr, /You must be logged in to the server \(session token is invalid.*Run `meshid login`/, garbage.stderr);

    const key = (await sessionKeys()).keys[0];
    assert.ok(key);
    const expired = await kubectl(await signSession({ sub: 'bob', groups: ['ops'] }, key, -60), caFile, ['get', '--raw', '/api/v1/namespaces/dev/pods']);
    assert.notEqual(expired.code, 0, expired.stdout);
    assert.match(expired.stderr, /You must be logged in to the server \(.*expired.*Run `meshid login`/, expired.stderr);
  });

  it("RBAC's own 403, relayed from the apiserver, still reads as Kubernetes wrote it", async () => {
    const { token, caFile } = await session('alice');
    const res = await kubectl(token, caFile, ['get', 'pods', '-n', 'kube-system']);
    assert.notEqual(res.code, 0, res.stdout);
    assert.match(res.stderr, /Error from server \(Forbidden\): pods is forbidden: User "alice" cannot list resource "pods"/, res.stderr);
  });
});
