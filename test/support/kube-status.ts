import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** A Kubernetes `Status` as meshid answers its own refusals under /api/k8s. */
export interface KubeStatusBody {
  kind: string;
  apiVersion: string;
  status: string;
  message: string;
  reason: string;
  code: number;
  details: { causes: { reason: string; message: string }[]; retryAfterSeconds?: number };
}

/** Reads a `Status` body and returns meshid's problem code from its first cause. */
export function kubeStatusCode(body: string): string | undefined {
  const status = JSON.parse(body) as KubeStatusBody;
  assert.equal(status.kind, 'Status', body);
  return status.details.causes[0]?.reason;
}

/**
 * Asserts a refusal under /api/k8s: a `Status` kubectl can print, with this HTTP status and
 * meshid's problem code as its first cause, so tests keep asserting the code.
 */
export function assertKubeStatus(res: { statusCode: number | undefined; headers: OutgoingHttpHeaders | IncomingHttpHeaders; body: string }, status: number, code: string): KubeStatusBody {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.equal(kubeStatusCode(res.body), code);
  const body = JSON.parse(res.body) as KubeStatusBody;
  assert.equal(body.apiVersion, 'v1');
  assert.equal(body.status, 'Failure');
  assert.equal(body.code, status);
  assert.ok(body.message.length > 0);
  return body;
}

/**
 * meshid's problem code from a refusal, whichever form it took: `code` of problem+json, or the
 * first cause of a `Status` (under /api/k8s). For tests that assert the code, not the form.
 */
export function refusalCode(body: unknown): unknown {
  const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { kind?: unknown; code?: unknown; details?: { causes?: { reason?: unknown }[] } } | null;
  if (parsed?.kind === 'Status') return parsed.details?.causes?.[0]?.reason;
  return parsed?.code;
}
