// What every hostile-input property shares: one seed (so every run sees the same cases, and a
// failure names the seed and path to replay it), the JWT-shaped generators, and the "refused
// with one of these codes, never anything else" assertions.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isMeshidError, type ErrorCode } from '../../src/core/index.ts';

export const SEED = 20261123;

// The failing assertion goes into the report: the counterexample alone rarely says what went wrong.
export const settings = (numRuns: number): { seed: number; numRuns: number; includeErrorInReport: boolean } => ({ seed: SEED, numRuns, includeErrorInReport: true });

export const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Strings shaped like JWTs and JWEs, with the header tricks attackers use. */
export const jwtLike = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc
    .tuple(
      fc.record({ alg: fc.constantFrom('none', 'None', 'HS256', 'RS256', 'ES256', 'dir', ''), kid: fc.oneof(fc.string(), fc.constant('../../etc/passwd'), fc.integer()), typ: fc.constantFrom('JWT', 'jwt', undefined) }, { requiredKeys: ['alg'] }),
      fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 }),
      fc.string({ maxLength: 80 }),
    )
    .map(([header, payload, signature]) => `${b64(header)}.${b64(payload)}.${b64(signature)}`),
  fc.array(fc.base64String({ maxLength: 60 }), { minLength: 2, maxLength: 6 }).map((parts) => parts.join('.')),
);

/** Strings with the characters that change meaning on the way to Kubernetes: controls, padding, the reserved prefix. */
export const trickyName = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('system:masters', 'System:Masters', ' system:masters', '\tsystem:masters', 'system:masters ', 'a\r\nImpersonate-Group: system:masters', 'dev\u0000', 'ſystem:masters', '\u00a0system:masters'),
  fc.string({ minLength: 250, maxLength: 300 }),
);

export function refusedWith(codes: ErrorCode[], run: () => unknown): void {
  try {
    run();
  } catch (error) {
    assert.ok(isMeshidError(error) && codes.includes(error.code), `unexpected failure: ${String(error)}`);
    return;
  }
  assert.fail('accepted a forged input');
}

export async function refusedWithAsync(codes: ErrorCode[], run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (error) {
    assert.ok(isMeshidError(error) && codes.includes(error.code), `unexpected failure: ${String(error)}`);
    return;
  }
  assert.fail('accepted a forged input');
}
