import { z } from 'zod';
import { MeshidError, isMeshidError, type ErrorCode } from '../core/index.ts';
import type { HttpAnswer } from './http.ts';
import { proveCertificate, type Connection } from './connect.ts';
import { writeExtension } from '../kube/index.ts';

export const LoginAnswerSchema = z.object({
  user: z.object({ name: z.string(), groups: z.array(z.string()), uid: z.string().optional() }),
  capabilities: z.record(z.string(), z.boolean()),
  token: z.string(),
  wrappedToken: z.string(),
  expiresAt: z.string(),
});
export type LoginAnswer = z.infer<typeof LoginAnswerSchema>;

/** Log in again this long before the ID token expires, so a command never starts with a dying token. */
const EXPIRY_MARGIN_MS = 60_000;

/** Turns a problem+json answer into a MeshidError the CLI prints as one line. */
export function problemError(answer: HttpAnswer, what: string): MeshidError {
  const body = answer.body as { code?: unknown; detail?: unknown; title?: unknown } | string;
  if (typeof body === 'object' && body !== null && typeof body.code === 'string') {
    const codes: Record<string, ErrorCode> = {
      'auth-disabled': 'ERR_AUTH_DISABLED',
      'login-failed': 'ERR_LOGIN_FAILED',
      'token-expired': 'ERR_TOKEN_EXPIRED',
      'token-invalid': 'ERR_TOKEN_INVALID',
      forbidden: 'ERR_FORBIDDEN',
      'kube-unavailable': 'ERR_KUBE_UNAVAILABLE',
      'issuer-disabled': 'ERR_ISSUER_DISABLED',
      'token-name-required': 'ERR_TOKEN_NAME_REQUIRED',
      'token-valid-for-invalid': 'ERR_VALID_FOR_INVALID',
      'token-valid-for-too-long': 'ERR_VALID_FOR_TOO_LONG',
      'token-identity-reserved': 'ERR_TOKEN_IDENTITY_RESERVED',
    };
    const text = typeof body.detail === 'string' ? body.detail : typeof body.title === 'string' ? body.title : body.code;
    return new MeshidError(codes[body.code] ?? 'ERR_KUBE_REJECTED', `${what}: ${text} (${body.code})`);
  }
  const hint =
    answer.status === 503 || answer.status === 404
      ? 'Is meshid installed and running? Try `meshid install`, or pass --url to reach it directly.'
      : undefined;
  return new MeshidError(answer.status === 403 ? 'ERR_FORBIDDEN' : 'ERR_KUBE_REJECTED', `${what}: HTTP ${answer.status}`, hint ? { hint } : {});
}

/** Logs in with the kubeconfig's credential and stores the ID token in the context. */
export async function login(conn: Connection): Promise<LoginAnswer> {
  let answer: HttpAnswer;
  switch (conn.credential.type) {
    case 'bearer':
      answer = await conn.send('POST', '/api/login', { kubeBearer: true });
      break;
    case 'certificate': {
      const challenge = await conn.send('GET', '/api/login/challenge');
      if (challenge.status !== 200) throw problemError(challenge, 'login failed');
      const { challenge: value } = challenge.body as { challenge: string };
      answer = await conn.send('POST', '/api/login', { body: proveCertificate(conn.credential, value) });
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
  const fresh = (): boolean => !!conn.extension.token && Date.parse(conn.extension.expiresAt ?? '') - EXPIRY_MARGIN_MS > Date.now();
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
    await relogin();
    answer = await send();
  }
  return answer;
}
