import type { KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { MeshidError, errorCodeOfProblem, isMeshidError } from '../core/index.ts';
import type { HttpAnswer } from './http.ts';
import { proveCertificate, type Connection } from './connect.ts';
import { writeExtension, type MeshidExtension } from '../kube/index.ts';
import { sessionIsFresh } from './stored-session.ts';

export const LoginAnswerSchema = z.object({
  user: z.object({ name: z.string(), groups: z.array(z.string()), uid: z.string().optional() }),
  capabilities: z.record(z.string(), z.boolean()),
  token: z.string(),
  wrappedToken: z.string(),
  expiresAt: z.string(),
});
export type LoginAnswer = z.infer<typeof LoginAnswerSchema>;

/** Turns a problem+json answer back into the server's MeshidError, which the CLI prints as one line. */
export function problemError(answer: HttpAnswer, what: string): MeshidError {
  const body = answer.body as { code?: unknown; detail?: unknown; title?: unknown } | string;
  if (typeof body === 'object' && body !== null && typeof body.code === 'string') {
    const text = typeof body.detail === 'string' ? body.detail : typeof body.title === 'string' ? body.title : body.code;
    // The server's own code, read back through the error table; one this CLI does not know
    // (a newer server, or a fault of the server: `internal`) stays a refusal it cannot name.
    return new MeshidError(errorCodeOfProblem(body.code) ?? 'ERR_KUBE_REJECTED', `${what}: ${text} (${body.code})`);
  }
  const hint =
    answer.status === 503 || answer.status === 404
      ? 'Is meshid installed and running? Try `meshid install`, or pass --url to reach it directly.'
      : undefined;
  return new MeshidError(answer.status === 403 ? 'ERR_FORBIDDEN' : 'ERR_KUBE_REJECTED', `${what}: HTTP ${answer.status}`, hint ? { hint } : {});
}

/**
 * When the exec plugin said the credential it gave ends (`status.expirationTimestamp`). The
 * apiserver never sees that time, so the CLI tells meshid, which caps the session at it.
 * client-node keeps the ExecCredential it ran in its exec authenticator's cache, by user name,
 * and exposes no accessor: read from there rather than run the plugin a second time (it may
 * prompt). A client-node that stops keeping it there leaves the session capped by the
 * token's own `exp` alone; a unit test runs a real plugin to notice.
 */
export function execCredentialExpiry(kc: KubeConfig): number | undefined {
  const user = kc.getCurrentUser();
  if (!user || (!user.exec && !user.authProvider)) return undefined;
  type Cached = { status?: { expirationTimestamp?: unknown } } | null | undefined;
  const authenticators = (kc as unknown as { authenticators?: { tokenCache?: Record<string, Cached> }[] }).authenticators ?? [];
  for (const authenticator of authenticators) {
    const stamp = authenticator.tokenCache?.[user.name]?.status?.expirationTimestamp;
    const at = typeof stamp === 'string' ? Date.parse(stamp) : Number.NaN;
    if (Number.isFinite(at)) return at;
  }
  return undefined;
}

/** Logs in with the kubeconfig's credential and stores the ID token in the context. */
export async function login(conn: Connection): Promise<LoginAnswer> {
  let answer: HttpAnswer;
  const expiry = execCredentialExpiry(conn.kc);
  const expires = expiry === undefined ? {} : { credentialExpiresAt: new Date(expiry).toISOString() };
  switch (conn.credential.type) {
    case 'bearer':
      answer = await conn.send('POST', '/api/login', { kubeBearer: true, ...(expiry === undefined ? {} : { body: expires }) });
      break;
    case 'certificate': {
      const challenge = await conn.send('GET', '/api/login/challenge');
      if (challenge.status !== 200) throw problemError(challenge, 'login failed');
      const { challenge: value } = challenge.body as { challenge: string };
      answer = await conn.send('POST', '/api/login', { body: { ...proveCertificate(conn.credential, value), ...expires } });
      break;
    }
    case 'none':
      throw new MeshidError('ERR_LOGIN_FAILED', `context "${conn.context}" has no token, exec plugin or client certificate to log in with`);
  }
  if (answer.status !== 200) throw problemError(answer, 'login failed');
  const parsed = LoginAnswerSchema.parse(answer.body);
  await writeExtension(conn.file, conn.context, { ...conn.extension, token: parsed.token, expiresAt: parsed.expiresAt });
  conn.extension = { ...conn.extension, token: parsed.token, expiresAt: parsed.expiresAt };
  return parsed;
}

/**
 * Calls meshid with the stored ID token, logging in first when there is none or it is about
 * to expire, and once more on a 401 (a rotated key, a server that forgot us).
 */
export async function sendWithSession(conn: Connection, method: string, path: string, body?: unknown): Promise<HttpAnswer> {
  const fresh = (): boolean => sessionIsFresh(conn.extension);
  let anonymous = false;
  const relogin = async (): Promise<void> => {
    try {
      await login(conn);
    } catch (error) {
      // Anonymous mode: there is no session to have, and the server acts as itself.
      if (!isMeshidError(error, 'ERR_AUTH_DISABLED')) throw error;
      anonymous = true;
    }
  };
  const send = (): Promise<HttpAnswer> => conn.send(method, path, { body, ...(!anonymous && conn.extension.token ? { sessionToken: conn.extension.token } : {}) });
  if (!fresh()) await relogin();
  let answer = await send();
  if (answer.status === 401 && !anonymous) {
    try {
      await relogin();
    } catch (error) {
      throw explainEndedSession(answer, error);
    }
    answer = await send();
  }
  return answer;
}

/**
 * A session the server ended because Kubernetes refused its credential, and a login that then
 * failed too: say both, since "login failed" alone hides why a working session stopped.
 */
function explainEndedSession(refusal: HttpAnswer, error: unknown): unknown {
  const code = errorCodeOfProblem((refusal.body as { code?: unknown } | undefined)?.code);
  if (code !== 'ERR_SESSION_CREDENTIAL_REVOKED' || !isMeshidError(error)) return error;
  return new MeshidError(error.code, `your meshid session ended because Kubernetes no longer accepts the credential it came from, and logging in again failed: ${error.message}`, {
    hint: error.hint ?? 'Renew the credential in your kubeconfig (`kubectl auth whoami` shows whether it works), then run `meshid login`.',
  });
}

/**
 * Ends the stored session on the server (every replica refuses it from then on), then forgets
 * it here. The kubeconfig is cleaned even when the server cannot be told, and the error then
 * says so: the session stays valid until it expires.
 */
export async function logout(conn: Connection): Promise<{ ended: boolean }> {
  const token = conn.extension.token;
  let failure: MeshidError | undefined;
  if (token) {
    const what = 'the server did not end the session (it stays valid until it expires)';
    try {
      const answer = await conn.send('POST', '/api/logout', { sessionToken: token });
      // 401: the server already refuses the token (expired, revoked, key rotated): nothing to end.
      if (answer.status !== 204 && answer.status !== 401) failure = problemError(answer, what);
    } catch (error) {
      failure = new MeshidError('ERR_KUBE_UNAVAILABLE', `${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const rest: MeshidExtension = { ...conn.extension };
  delete rest.token;
  delete rest.expiresAt;
  await writeExtension(conn.file, conn.context, Object.keys(rest).length > 0 ? rest : undefined);
  conn.extension = rest;
  if (failure) throw failure;
  return { ended: token !== undefined };
}
