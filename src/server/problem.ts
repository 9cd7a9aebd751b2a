import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isMeshidError, type ErrorCode, type Logger } from '../core/index.ts';
import { ReviewRateLimitedError, rawHead } from '../kube/index.ts';
import { isK8sProxyUrl } from './k8s-proxy.ts';
import { DASHBOARD_CSP } from './dashboard-static.ts';

/** RFC 9457 problem details; `code` is the stable, machine-readable part. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
}

const TYPE_BASE = 'https://meshid.io/problems/';

/**
 * The one place that maps meshid errors to HTTP. Anything not listed is a 500. `hint` says what
 * to do where the error itself carries no hint; it reaches clients that show one message only
 * (kubectl, through a Kubernetes `Status`).
 */
const HTTP: Partial<Record<ErrorCode, { status: number; code: string; title: string; hint?: string }>> = {
  ERR_INVALID_ARGUMENT: { status: 400, code: 'invalid-request', title: 'The request is invalid' },
  ERR_AUTH_DISABLED: { status: 400, code: 'auth-disabled', title: 'Authentication is disabled (anonymous mode)' },
  ERR_UNAUTHENTICATED: { status: 401, code: 'unauthenticated', title: 'A session token is required', hint: 'Run `meshid login` and use the kubeconfig context it writes.' },
  ERR_LOGIN_FAILED: { status: 401, code: 'login-failed', title: 'The credential was not accepted' },
  ERR_CHALLENGE_INVALID: { status: 401, code: 'challenge-invalid', title: 'The login challenge is invalid or expired' },
  ERR_TOKEN_INVALID: { status: 401, code: 'token-invalid', title: 'The token is invalid', hint: 'Run `meshid login` for a new session token.' },
  ERR_TOKEN_EXPIRED: { status: 401, code: 'token-expired', title: 'The token has expired', hint: 'Run `meshid login` for a new session token.' },
  ERR_TOKEN_REVOKED: { status: 401, code: 'token-revoked', title: 'The token was revoked', hint: 'Run `meshid login` for a new session token.' },
  ERR_TOKEN_NAME_REQUIRED: { status: 400, code: 'token-name-required', title: 'A user token needs a name' },
  ERR_VALID_FOR_INVALID: { status: 400, code: 'token-valid-for-invalid', title: 'validFor must be a positive duration such as 24h' },
  ERR_VALID_FOR_TOO_LONG: { status: 400, code: 'token-valid-for-too-long', title: 'validFor is longer than this control plane issues (userTokens.maxValidFor)' },
  ERR_TOKEN_IDENTITY_RESERVED: { status: 400, code: 'token-identity-reserved', title: 'Names and groups starting with system: are reserved by Kubernetes' },
  ERR_ISSUER_DISABLED: { status: 400, code: 'issuer-disabled', title: 'This control plane does not issue user tokens' },
  ERR_SIGNING_KEY_MISSING: { status: 503, code: 'signing-key-missing', title: 'There is no user-token signing key' },
  ERR_WRAPPED_TOKEN_INVALID: { status: 401, code: 'wrapped-token-invalid', title: 'The wrapped token is invalid or expired' },
  ERR_SESSION_CREDENTIAL_REVOKED: { status: 401, code: 'session-credential-revoked', title: 'Kubernetes no longer accepts the credential this session came from', hint: 'Run `meshid login` with a credential Kubernetes accepts.' },
  ERR_WRAPPED_TOKEN_REPLAYED: { status: 401, code: 'wrapped-token-replayed', title: 'The wrapped token was already used' },
  ERR_FORBIDDEN: { status: 403, code: 'forbidden', title: 'Forbidden' },
  ERR_IMPERSONATION_FORBIDDEN: { status: 403, code: 'impersonation-forbidden', title: 'Impersonate-* headers are not accepted from clients', hint: 'Drop --as and --as-group: meshid already acts as you; ask for RBAC rights instead.' },
  ERR_EXTRA_NOT_GRANTED: { status: 403, code: 'extra-not-granted', title: "meshid's ClusterRole does not let it impersonate this credential's user extras" },
  ERR_RATE_LIMITED: { status: 429, code: 'too-many-requests', title: 'Too many token reviews from this client', hint: 'Wait for the Retry-After seconds, then try again.' },
  ERR_CSRF: { status: 403, code: 'csrf-token-required', title: 'A matching X-CSRF-Token header is required' },
  ERR_CROSS_ORIGIN: { status: 403, code: 'cross-origin-refused', title: 'The browser sent this credential for another origin' },
  ERR_SHARED_ORIGIN: { status: 403, code: 'shared-origin-refused', title: 'A browser session is not planted on a host name other programs share' },
  ERR_HTTPS_REQUIRED: { status: 403, code: 'https-required', title: 'Credentials are accepted only over HTTPS', hint: 'Use the HTTPS port (5682).' },
  ERR_NOT_FOUND: { status: 404, code: 'not-found', title: 'Not found' },
  ERR_PAYLOAD_TOO_LARGE: { status: 413, code: 'payload-too-large', title: 'The request is too large' },
  ERR_HEADERS_TOO_LARGE: { status: 431, code: 'headers-too-large', title: 'The request headers are too large' },
  ERR_REQUEST_TIMEOUT: { status: 408, code: 'request-timeout', title: 'The request was not received in time' },
  ERR_DASHBOARD_NOT_BUILT: { status: 503, code: 'dashboard-not-built', title: 'The dashboard is not built' },
  ERR_KUBE_UNAVAILABLE: { status: 503, code: 'kube-unavailable', title: 'Kubernetes is unavailable', hint: 'Try again in a few seconds.' },
  ERR_SESSION_KEY_UNAVAILABLE: { status: 503, code: 'session-key-unavailable', title: 'The session key is being recreated', hint: 'Try again in a few seconds.' },
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

/** What to do about an error: its own hint, or the one its code has. Only for errors meshid maps. */
function hintOf(error: unknown): string | undefined {
  if (!isMeshidError(error) || !HTTP[error.code]) return undefined;
  return error.hint ?? HTTP[error.code]?.hint;
}

/** A Kubernetes `Status` (meta/v1): the error body kubectl and every client library read. */
export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  code: number;
  /** `causes[0].reason` is meshid's problem code; kubectl shows only `message`. */
  details: { causes: { reason: string; message: string }[]; retryAfterSeconds?: number };
}

/** Kubernetes' StatusReason for each status meshid answers (k8s.io/apimachinery metav1). */
const KUBE_REASONS: Partial<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  408: 'Timeout',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  429: 'TooManyRequests',
  503: 'ServiceUnavailable',
};

function kubeStatus(problem: Problem, hint: string | undefined, retryAfter: number | undefined): KubeStatus {
  // kubectl prints `message` alone, so it carries what happened and what to do.
  const what = (problem.detail ?? problem.title).replace(/\.$/, '');
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: hint ? `${what}. ${hint}` : what,
    reason: KUBE_REASONS[problem.status] ?? (problem.status >= 500 ? 'InternalError' : 'BadRequest'),
    code: problem.status,
    details: { causes: [{ reason: problem.code, message: problem.title }], ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}) },
  };
}

/**
 * An error as an HTTP answer. Under the Kubernetes proxy the client is kubectl or a client
 * library, which reads a `Status` and nothing else; everywhere else it is problem+json.
 */
interface Answer {
  problem: Problem;
  headers: Record<string, string>;
  body: string;
}

function answer(error: unknown, url: string | undefined): Answer {
  const problem = toProblem(error);
  // A rate-limited client is told when its allowance has a review again.
  const retryAfter = problem.status === 503 ? 5 : error instanceof ReviewRateLimitedError ? error.retryAfterSeconds : undefined;
  const retryHeader: Record<string, string> = retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {};
  if (url !== undefined && isK8sProxyUrl(url)) {
    return { problem, headers: { 'content-type': 'application/json', ...retryHeader }, body: JSON.stringify(kubeStatus(problem, hintOf(error), retryAfter)) };
  }
  return { problem, headers: { 'content-type': 'application/problem+json; charset=utf-8', ...retryHeader }, body: JSON.stringify(problem) };
}

/** Logs a problem: the detail of a server fault goes to the log, never to the client. */
function logProblem(log: Logger, error: unknown, problem: Problem, method: string | undefined, url: string | undefined): void {
  // A 503 is an outage meshid reports, not a fault in it: one line each, no stack.
  if (problem.status === 503) log.warn({ code: problem.code, url, method, reason: problem.detail }, problem.title);
  else if (problem.status >= 500) log.error({ err: error, url, method }, problem.title);
  else log.debug({ code: problem.code, url }, problem.title);
}

/** Sends a problem through fastify. */
export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: unknown, log: Logger): FastifyReply {
  const { problem, headers, body } = answer(error, request.url);
  logProblem(log, error, problem, request.method, request.url);
  // Bytes, so the content type goes out exactly as set (no charset appended), as the apiserver sends it.
  return reply.code(problem.status).headers(headers).send(Buffer.from(body));
}

/** Sends a problem on a raw response (a hijacked reply). */
export function writeProblem(res: ServerResponse, error: unknown, log: Logger, method?: string, url?: string): void {
  const { problem, headers, body } = answer(error, url);
  logProblem(log, error, problem, method, url);
  res.writeHead(problem.status, headers).end(body);
}

/** Answers a refused connection upgrade on the bare socket, then closes it. */
export function endSocketWithProblem(socket: Duplex, error: unknown, log: Logger, url?: string): void {
  const answered = answer(error, url);
  const { problem, body } = answered;
  logProblem(log, error, problem, 'UPGRADE', url);
  const headers = { ...answered.headers, 'content-length': String(Buffer.byteLength(body)), connection: 'close' };
  // Closed for good once the answer is out: a client that never closes its side keeps nothing.
  socket.end(`${rawHead(problem.status, problem.title, headers)}${body}`, () => socket.destroy());
}

/** What a person in a browser is told when a dashboard handoff fails, by problem code. */
const HANDOFF_PAGES: Partial<Record<string, string>> = {
  'wrapped-token-invalid': 'This login link has expired or is not valid. Links from meshid dashboard work once, within seconds.',
  'wrapped-token-replayed': 'This login link was already used. Each link logs in one browser once.',
  'cross-origin-refused': 'Another site tried to log this browser in to meshid; meshid refused.',
  'shared-origin-refused': 'meshid does not log a browser in on a host name other programs on this machine share.',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A failed dashboard handoff, for a browser (it asks for text/html): a page that says what
 * happened and what to run, with the problem's status. Other clients get problem+json. The
 * page has no script or style, so the dashboard's CSP applies to it unchanged.
 */
export function sendHandoffProblem(reply: FastifyReply, request: FastifyRequest, error: unknown, log: Logger): FastifyReply {
  if (!String(request.headers.accept ?? '').toLowerCase().includes('text/html')) return sendProblem(reply, request, error, log);
  const problem = toProblem(error);
  logProblem(log, error, problem, request.method, request.url.split('?')[0]);
  const what = HANDOFF_PAGES[problem.code] ?? `${problem.title}.`;
  const body = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><title>meshid: login link refused</title></head><body>',
    '<h1>meshid could not log this browser in</h1>',
    `<p>${escapeHtml(what)}</p>`,
    '<p>Run <code>meshid dashboard</code> again: it opens the dashboard with a fresh link.</p>',
    `<p>Status ${problem.status}, code <code>${escapeHtml(problem.code)}</code>.</p>`,
    '</body></html>',
    '',
  ].join('\n');
  return reply
    .code(problem.status)
    .headers({ 'content-type': 'text/html; charset=utf-8', 'content-security-policy': DASHBOARD_CSP, 'x-content-type-options': 'nosniff', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
    .send(body);
}
