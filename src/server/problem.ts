import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SERVER_FAULT, errorMeaning, isMeshidError, type ErrorCode, type Logger } from '../core/index.ts';
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

/** Fastify's own errors (bad JSON, body too large, …) carry a statusCode and an FST_ code. */
function fastifyProblem(error: unknown): Problem | undefined {
  const e = error as { statusCode?: unknown; code?: unknown; message?: unknown };
  if (typeof e.statusCode !== 'number' || e.statusCode >= 500 || typeof e.code !== 'string' || !e.code.startsWith('FST_')) return undefined;
  const invalid = errorMeaning('ERR_INVALID_ARGUMENT');
  const code = e.statusCode === 413 ? errorMeaning('ERR_PAYLOAD_TOO_LARGE').problem : e.statusCode === 415 ? 'unsupported-media-type' : invalid.problem;
  return { type: TYPE_BASE + code, title: invalid.title, status: e.statusCode, code, detail: String(e.message) };
}

/**
 * The one place an error becomes an HTTP problem, by the error table (core's error-table.ts). A
 * fault of the server, ours or not, is a generic 500: the client gets no detail, the log does.
 */
export function toProblem(error: unknown): Problem {
  if (isMeshidError(error)) {
    const meaning = errorMeaning(error.code);
    if (meaning.problem !== SERVER_FAULT.problem) return { type: TYPE_BASE + meaning.problem, title: meaning.title, status: meaning.http, code: meaning.problem, detail: error.message };
  }
  return fastifyProblem(error) ?? { type: TYPE_BASE + SERVER_FAULT.problem, title: SERVER_FAULT.title, status: SERVER_FAULT.http, code: SERVER_FAULT.problem };
}

/** What to do about an error: its own hint, or the one its code has. Not for faults of the server. */
function hintOf(error: unknown): string | undefined {
  if (!isMeshidError(error)) return undefined;
  const meaning = errorMeaning(error.code);
  return meaning.problem === SERVER_FAULT.problem ? undefined : (error.hint ?? meaning.hint);
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

/** What a person in a browser is told when a dashboard handoff fails, by error code. */
const HANDOFF_PAGES: Partial<Record<ErrorCode, string>> = {
  ERR_WRAPPED_TOKEN_INVALID: 'This login link has expired or is not valid. Links from meshid dashboard work once, within seconds.',
  ERR_WRAPPED_TOKEN_REPLAYED: 'This login link was already used. Each link logs in one browser once.',
  ERR_CROSS_ORIGIN: 'Another site tried to log this browser in to meshid; meshid refused.',
  ERR_SHARED_ORIGIN: 'meshid does not log a browser in on a host name other programs on this machine share.',
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
  const what = (isMeshidError(error) ? HANDOFF_PAGES[error.code] : undefined) ?? `${problem.title}.`;
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
