// The dashboard's only way to the server: same-origin fetch with the session cookie, and
// the CSRF cookie echoed in X-CSRF-Token on every POST (the server refuses a POST without it).

import type { Permission } from './permissions.ts';

export const CSRF_COOKIE = 'meshid_csrf';

export interface GraphQLErrorEntry {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; permission?: Permission };
}

/**
 * A failed call. `code` is the server's stable code: a problem+json `code`
 * (`wrapped-token-invalid`, …) or a GraphQL `extensions.code` (`FORBIDDEN`, `UNAUTHENTICATED`).
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly code: string;
  readonly permission: Permission | undefined;

  constructor(code: string, message: string, permission?: Permission) {
    super(message);
    this.code = code;
    this.permission = permission;
  }
}

export const isUnauthenticated = (error: unknown): boolean => error instanceof ApiError && error.code === 'UNAUTHENTICATED';

function cookie(name: string): string | undefined {
  for (const part of document.cookie.split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return decodeURIComponent(value.join('='));
  }
  return undefined;
}

/**
 * The CSRF cookie is readable and lives exactly as long as the HttpOnly session cookie, so
 * its absence means there is no session: the login window shows without asking the server.
 */
export const hasSession = (): boolean => cookie(CSRF_COOKIE) !== undefined;

function postHeaders(json: boolean): Record<string, string> {
  return { accept: 'application/json', ...(json ? { 'content-type': 'application/json' } : {}), 'x-csrf-token': cookie(CSRF_COOKIE) ?? '' };
}

interface ProblemBody {
  code?: string;
  title?: string;
  detail?: string;
}

async function problem(response: Response): Promise<ApiError> {
  const body = (await response.json().catch(() => ({}))) as ProblemBody;
  // Session problems (expired, revoked, missing) all mean: log in again.
  const code = response.status === 401 && body.code !== 'wrapped-token-invalid' && body.code !== 'wrapped-token-replayed' ? 'UNAUTHENTICATED' : (body.code ?? `http-${response.status}`);
  return new ApiError(code, body.detail ?? body.title ?? `the server answered ${response.status}`);
}

export interface GraphQLAnswer<T> {
  data: T | null;
  errors: GraphQLErrorEntry[];
}

/** One GraphQL call. Partial answers come back with their errors; a lost session throws. */
export async function graphql<T>(query: string, variables: Record<string, unknown> = {}): Promise<GraphQLAnswer<T>> {
  let response: Response;
  try {
    response = await fetch('/api/graphql', { method: 'POST', credentials: 'same-origin', headers: postHeaders(true), body: JSON.stringify({ query, variables }) });
  } catch {
    throw new ApiError('NETWORK', 'the meshid server did not answer');
  }
  if ((response.headers.get('content-type') ?? '').startsWith('application/problem+json')) throw await problem(response);
  const body = (await response.json().catch(() => null)) as { data?: T | null; errors?: GraphQLErrorEntry[] } | null;
  if (!body) throw new ApiError(`http-${response.status}`, `the server answered ${response.status} without a GraphQL body`);
  const errors = body.errors ?? [];
  const lost = errors.find((e) => e.extensions?.code === 'UNAUTHENTICATED');
  if (lost) throw new ApiError('UNAUTHENTICATED', lost.message);
  return { data: body.data ?? null, errors };
}

/** The error of an answer as one ApiError, keeping the permission a refusal names. */
export function answerError(errors: GraphQLErrorEntry[]): ApiError | undefined {
  const first = errors[0];
  if (!first) return undefined;
  return new ApiError(first.extensions?.code ?? 'GRAPHQL', first.message, first.extensions?.permission);
}

/** Trades a wrapped token (from `meshid login`) for the session cookies. */
export async function logIn(wrappedToken: string): Promise<void> {
  let response: Response;
  try {
    // The server answers 303 to the dashboard; the cookies are set by then, nothing to follow.
    response = await fetch('/api/login', { method: 'POST', credentials: 'same-origin', redirect: 'manual', headers: postHeaders(true), body: JSON.stringify({ wrappedToken }) });
  } catch {
    throw new ApiError('NETWORK', 'the meshid server did not answer');
  }
  if (response.type === 'opaqueredirect' || response.ok) return;
  throw await problem(response);
}

export async function logOut(): Promise<void> {
  await fetch('/api/logout', { method: 'POST', credentials: 'same-origin', headers: postHeaders(false) }).catch(() => undefined);
}
