import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { isMeshidError } from '../../src/core/index.ts';
import type { Connection } from '../../src/cli/connect.ts';
import type { HttpAnswer } from '../../src/cli/http.ts';
import { execCredentialExpiry, logout, problemError, sendWithSession } from '../../src/cli/session.ts';
import { readExtension } from '../../src/kube/index.ts';
import { writeKubeconfig } from '../support/kubeconfig-file.ts';

const dir = await mkdtemp(join(tmpdir(), 'meshid-cli-session-'));
after(() => rm(dir, { recursive: true, force: true }));

/** A kubeconfig whose user is `user`, in a file of its own. */
async function kubeconfig(name: string, user: Record<string, unknown>, extension?: Record<string, unknown>): Promise<{ file: string; kc: KubeConfig }> {
  const file = await writeKubeconfig(join(dir, `${name}.yaml`), { user, extension });
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return { file, kc };
}

const answer = (status: number, body: unknown = {}): HttpAnswer => ({ status, headers: {}, body });

/** A Connection whose server answers from `route`, recording what it was sent. */
async function connection(file: string, kc: KubeConfig, route: (method: string, path: string, options: Parameters<Connection['send']>[2]) => HttpAnswer): Promise<Connection & { sent: string[] }> {
  const sent: string[] = [];
  return {
    kc, file, context: 'ctx', extension: await readExtension(file, 'ctx'), mode: 'url', base: new URL('http://meshid.test'), credential: { type: 'bearer', token: 'kube-token' }, sent,
    send: async (method, path, options) => {
      sent.push(`${method} ${path}${options?.sessionToken ? ` session=${options.sessionToken}` : ''}`);
      return route(method, path, options);
    },
  };
}

describe('CLI sessions', () => {
  it("rebuilds the server's error from its problem code, and names only unknown ones a Kubernetes refusal", () => {
    const bad = problemError(answer(400, { code: 'invalid-request', title: 'The request is invalid', detail: 'names may not start with a space' }), 'issuing failed');
    assert.ok(isMeshidError(bad, 'ERR_INVALID_ARGUMENT'), String(bad));
    assert.match(bad.message, /names may not start with a space \(invalid-request\)/);
    assert.ok(isMeshidError(problemError(answer(401, { code: 'unauthenticated' }), 'x'), 'ERR_UNAUTHENTICATED'));
    assert.ok(isMeshidError(problemError(answer(409, { code: 'registry-exists' }), 'x'), 'ERR_REGISTRY_EXISTS'));
    assert.ok(isMeshidError(problemError(answer(500, { code: 'internal', title: 'Internal error' }), 'x'), 'ERR_KUBE_REJECTED'));
    assert.ok(isMeshidError(problemError(answer(418, { code: 'from-a-newer-server' }), 'x'), 'ERR_KUBE_REJECTED'));
    assert.ok(isMeshidError(problemError(answer(403, 'no body'), 'x'), 'ERR_FORBIDDEN'));
  });

  it('reads the expirationTimestamp of the ExecCredential a real exec plugin returned, and nothing for a plain token', async () => {
    const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 't', expirationTimestamp: '2031-01-01T00:00:00Z' } };
    const { kc } = await kubeconfig('exec', { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', `console.log(${JSON.stringify(JSON.stringify(credential))})`], interactiveMode: 'Never' } });
    const opts = { headers: {} as Record<string, string> };
    await kc.applyToHTTPSOptions(opts);
    assert.equal(opts.headers['Authorization'], 'Bearer t');
    assert.equal(execCredentialExpiry(kc), Date.UTC(2031, 0, 1));

    const { kc: plain } = await kubeconfig('plain', { token: 'static' });
    assert.equal(execCredentialExpiry(plain), undefined);
  });

  it('logs in again on 401 session-credential-revoked, and when that fails says the session ended because its credential did', async () => {
    const { file, kc } = await kubeconfig('revoked', { token: 'kube-token' }, { token: 'old-session', expiresAt: '2099-01-01T00:00:00Z' });
    const conn = await connection(file, kc, (method, path) =>
      path === '/api/login' ? answer(401, { code: 'login-failed', detail: 'Kubernetes did not accept the token' }) : answer(401, { code: 'session-credential-revoked' }),
    );
    await assert.rejects(sendWithSession(conn, 'GET', '/api/whoami'), (e: unknown) => {
      assert.ok(isMeshidError(e, 'ERR_LOGIN_FAILED'), String(e));
      assert.match(e.message, /no longer accepts the credential it came from/);
      assert.match(e.message, /Kubernetes did not accept the token/);
      return true;
    });
    assert.deepEqual(conn.sent, ['GET /api/whoami session=old-session', 'POST /api/login']);
  });

  it('logs in again on 401 session-credential-revoked and retries with the new session when the credential works', async () => {
    const { file, kc } = await kubeconfig('renewed', { token: 'kube-token' }, { token: 'old-session', expiresAt: '2099-01-01T00:00:00Z' });
    const login = { user: { name: 'bob', groups: [] }, capabilities: {}, token: 'new-session', wrappedToken: 'w', expiresAt: '2099-01-01T00:00:00Z' };
    const conn = await connection(file, kc, (method, path, options) =>
      path === '/api/login' ? answer(200, login) : options?.sessionToken === 'new-session' ? answer(200, { name: 'bob' }) : answer(401, { code: 'session-credential-revoked' }),
    );
    assert.equal((await sendWithSession(conn, 'GET', '/api/whoami')).status, 200);
    assert.deepEqual(conn.sent, ['GET /api/whoami session=old-session', 'POST /api/login', 'GET /api/whoami session=new-session']);
  });

  it('logout ends the session on the server, then forgets it; a server that cannot be told is an error, the kubeconfig is cleaned anyway', async () => {
    const ended = await kubeconfig('logout', { token: 'kube-token' }, { token: 'the-session', expiresAt: '2099-01-01T00:00:00Z', server: 'http://meshid.test' });
    const conn = await connection(ended.file, ended.kc, () => answer(204));
    assert.deepEqual(await logout(conn), { ended: true });
    assert.deepEqual(conn.sent, ['POST /api/logout session=the-session']);
    assert.deepEqual(await readExtension(ended.file, 'ctx'), { server: 'http://meshid.test' });

    const down = await kubeconfig('logout-down', { token: 'kube-token' }, { token: 'the-session', expiresAt: '2099-01-01T00:00:00Z' });
    const failing = await connection(down.file, down.kc, () => answer(503, { code: 'kube-unavailable', detail: 'Kubernetes is unavailable' }));
    await assert.rejects(logout(failing), (e: unknown) => isMeshidError(e, 'ERR_KUBE_UNAVAILABLE') && /stays valid until it expires/.test(e.message));
    assert.deepEqual(await readExtension(down.file, 'ctx'), {});

    const none = await kubeconfig('logout-none', { token: 'kube-token' });
    const idle = await connection(none.file, none.kc, () => answer(500));
    assert.deepEqual(await logout(idle), { ended: false });
    assert.deepEqual(idle.sent, [], 'no session, no call');
  });
});
