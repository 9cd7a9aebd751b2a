import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isMeshidError, type ErrorCode, type Logger } from '../core/index.ts';
import { ReviewRateLimitedError } from '../kube/index.ts';

/** RFC 9457 problem details; `code` is the stable, machine-readable part. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
}

const TYPE_BASE = 'https://meshid.io/problems/';

/** The one place that maps meshid errors to HTTP. Anything not listed is a 500. */
const HTTP: Partial<Record<ErrorCode, { status: number; code: string; title: string }>> = {
  ERR_INVALID_ARGUMENT: { status: 400, code: 'invalid-request', title: 'The request is invalid' },
  ERR_AUTH_DISABLED: { status: 400, code: 'auth-disabled', title: 'Authentication is disabled (anonymous mode)' },
  ERR_UNAUTHENTICATED: { status: 401, code: 'unauthenticated', title: 'A session token is required' },
  ERR_LOGIN_FAILED: { status: 401, code: 'login-failed', title: 'The credential was not accepted' },
  ERR_CHALLENGE_INVALID: { status: 401, code: 'challenge-invalid', title: 'The login challenge is invalid or expired' },
  ERR_TOKEN_INVALID: { status: 401, code: 'token-invalid', title: 'The token is invalid' },
  ERR_TOKEN_EXPIRED: { status: 401, code: 'token-expired', title: 'The token has expired' },
  ERR_TOKEN_REVOKED: { status: 401, code: 'token-revoked', title: 'The token was revoked' },
  ERR_TOKEN_NAME_REQUIRED: { status: 400, code: 'token-name-required', title: 'A user token needs a name' },
  ERR_VALID_FOR_INVALID: { status: 400, code: 'token-valid-for-invalid', title: 'validFor must be a positive duration such as 24h' },
  ERR_VALID_FOR_TOO_LONG: { status: 400, code: 'token-valid-for-too-long', title: 'validFor is longer than this control plane issues (userTokens.maxValidFor)' },
  ERR_TOKEN_IDENTITY_RESERVED: { status: 400, code: 'token-identity-reserved', title: 'Names and groups starting with system: are reserved by Kubernetes' },
  ERR_ISSUER_DISABLED: { status: 400, code: 'issuer-disabled', title: 'This control plane does not issue user tokens' },
  ERR_SIGNING_KEY_MISSING: { status: 503, code: 'signing-key-missing', title: 'There is no user-token signing key' },
  ERR_WRAPPED_TOKEN_INVALID: { status: 401, code: 'wrapped-token-invalid', title: 'The wrapped token is invalid or expired' },
  ERR_SESSION_CREDENTIAL_REVOKED: { status: 401, code: 'session-credential-revoked', title: 'Kubernetes no longer accepts the credential this session came from' },
  ERR_WRAPPED_TOKEN_REPLAYED: { status: 401, code: 'wrapped-token-replayed', title: 'The wrapped token was already used' },
  ERR_FORBIDDEN: { status: 403, code: 'forbidden', title: 'Forbidden' },
  ERR_IMPERSONATION_FORBIDDEN: { status: 403, code: 'impersonation-forbidden', title: 'Impersonate-* headers are not accepted from clients' },
  ERR_EXTRA_NOT_GRANTED: { status: 403, code: 'extra-not-granted', title: "meshid's ClusterRole does not let it impersonate this credential's user extras" },
  ERR_RATE_LIMITED: { status: 429, code: 'too-many-requests', title: 'Too many token reviews from this client' },
  ERR_CSRF: { status: 403, code: 'csrf-token-required', title: 'A matching X-CSRF-Token header is required' },
  ERR_CROSS_ORIGIN: { status: 403, code: 'cross-origin-refused', title: 'The browser sent this credential for another origin' },
  ERR_SHARED_ORIGIN: { status: 403, code: 'shared-origin-refused', title: 'A browser session is not planted on a host name other programs share' },
  ERR_HTTPS_REQUIRED: { status: 403, code: 'https-required', title: 'Credentials are accepted only over HTTPS' },
  ERR_NOT_FOUND: { status: 404, code: 'not-found', title: 'Not found' },
  ERR_PAYLOAD_TOO_LARGE: { status: 413, code: 'payload-too-large', title: 'The request is too large' },
  ERR_HEADERS_TOO_LARGE: { status: 431, code: 'headers-too-large', title: 'The request headers are too large' },
  ERR_REQUEST_TIMEOUT: { status: 408, code: 'request-timeout', title: 'The request was not received in time' },
  ERR_DASHBOARD_NOT_BUILT: { status: 503, code: 'dashboard-not-built', title: 'The dashboard is not built' },
  ERR_KUBE_UNAVAILABLE: { status: 503, code: 'kube-unavailable', title: 'Kubernetes is unavailable' },
  ERR_SESSION_KEY_UNAVAILABLE: { status: 503, code: 'session-key-unavailable', title: 'The session key is being recreated' },
  ERR_KUBE_REJECTED: { status: 502, code: 'kube-rejected', title: 'Kubernetes refused a request meshid needs' },
};

/** Fastify's own errors (bad JSON, body too large, …) carry a statusCode and an FST_ code. */
function fastifyProblem(error: unknown): Problem | undefined {
  const e = error as { statusCode?: unknown; code?: unknown; message?: unknown };
  if (typeof e.statusCode !== 'number' || e.statusCode >= 500 || typeof e.code !== 'string' || !e.code.startsWith('FST_')) return undefined;
  const code = e.statusCode === 413 ? 'payload-too-large' : e.statusCode === 415 ? 'unsupported-media-type' : 'invalid-request';
  return { type: TYPE_BASE + code, title: 'The request is invalid', status: e.statusCode, code, detail: String(e.message) };
}

export function toProblem(error: unknown): Problem {
  if (isMeshidError(error)) {
    const mapped = HTTP[error.code];
    if (mapped) return { type: TYPE_BASE + mapped.code, title: mapped.title, status: mapped.status, code: mapped.code, detail: error.message };
  }
  return fastifyProblem(error) ?? { type: TYPE_BASE + 'internal', title: 'Internal error', status: 500, code: 'internal' };
}

/** Logs a problem: the detail of a server fault goes to the log, never to the client. */
function logProblem(log: Logger, error: unknown, problem: Problem, method: string | undefined, url: string | undefined): void {
  // A 503 is an outage meshid reports, not a fault in it: one line each, no stack.
  if (problem.status === 503) log.warn({ code: problem.code, url, method, reason: problem.detail }, problem.title);
  else if (problem.status >= 500) log.error({ err: error, url, method }, problem.title);
  else log.debug({ code: problem.code, url }, problem.title);
}

function problemHeaders(problem: Problem, error: unknown): Record<string, string> {
  // A rate-limited client is told when its allowance has a review again.
  const retryAfter = problem.status === 503 ? 5 : error instanceof ReviewRateLimitedError ? error.retryAfterSeconds : undefined;
  return { 'content-type': 'application/problem+json', ...(retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {}) };
}

/** Sends a problem through fastify. */
export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: unknown, log: Logger): FastifyReply {
  const problem = toProblem(error);
  logProblem(log, error, problem, request.method, request.url);
  return reply.code(problem.status).headers(problemHeaders(problem, error)).send(problem);
}

/** Sends a problem on a raw response (a hijacked reply). */
export function writeProblem(res: ServerResponse, error: unknown, log: Logger, method?: string, url?: string): void {
  const problem = toProblem(error);
  logProblem(log, error, problem, method, url);
  res.writeHead(problem.status, problemHeaders(problem, error)).end(JSON.stringify(problem));
}

/** Answers a refused connection upgrade on the bare socket, then closes it. */
export function endSocketWithProblem(socket: Duplex, error: unknown, log: Logger, url?: string): void {
  const problem = toProblem(error);
  logProblem(log, error, problem, 'UPGRADE', url);
  const body = JSON.stringify(problem);
  const headers = { ...problemHeaders(problem, error), 'content-length': String(Buffer.byteLength(body)), connection: 'close' };
  // Closed for good once the answer is out: a client that never closes its side keeps nothing.
  socket.end(`HTTP/1.1 ${problem.status} ${problem.title}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`, () => socket.destroy());
}
