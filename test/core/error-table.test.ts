import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ERROR_CODES, GrpcCode, SERVER_FAULT, errorCodeOfProblem, errorMeaning, type ErrorCode, type GraphqlCode } from '../../src/core/index.ts';

const GRAPHQL_CODES: readonly GraphqlCode[] = ['BAD_USER_INPUT', 'UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'UNAVAILABLE', 'INTERNAL'];

describe('the error table', () => {
  it('has a row for every code of the union, read from errors.ts itself', async () => {
    const { readFile } = await import('node:fs/promises');
    const source = await readFile(new URL('../../src/core/errors.ts', import.meta.url), 'utf8');
    const union = source.slice(source.indexOf('export type ErrorCode'), source.indexOf(';', source.indexOf('export type ErrorCode')));
    const declared = [...union.matchAll(/'(ERR_[A-Z_]+)'/g)].map((m) => m[1]);
    assert.ok(declared.length > 40, 'the union was read');
    assert.deepEqual([...ERROR_CODES].sort(), declared.sort());
  });

  it('gives every code an error status on each wire and a failing exit', () => {
    for (const code of ERROR_CODES) {
      const m = errorMeaning(code);
      assert.ok(m.http >= 400 && m.http <= 599, `${code}: HTTP ${m.http}`);
      assert.ok(Number.isInteger(m.grpc) && m.grpc >= 1 && m.grpc <= 16, `${code}: gRPC ${m.grpc}`);
      assert.ok(GRAPHQL_CODES.includes(m.graphql), `${code}: GraphQL ${m.graphql}`);
      assert.ok(Number.isInteger(m.exit) && m.exit > 0 && m.exit < 126, `${code}: exit ${m.exit}`);
      assert.match(m.problem, /^[a-z]+(-[a-z]+)*$/, `${code}: problem code`);
      assert.ok(m.title.length > 0 && !m.title.endsWith('.'), `${code}: title`);
    }
  });

  it('answers a fault of the server alike everywhere: 500, internal, INTERNAL', () => {
    for (const code of ERROR_CODES) {
      const m = errorMeaning(code);
      const fault = m.problem === SERVER_FAULT.problem;
      assert.equal(m.http === 500, fault, `${code}: HTTP 500 exactly when the problem is internal`);
      assert.equal(m.grpc === GrpcCode.INTERNAL, fault, `${code}: gRPC INTERNAL exactly when the problem is internal`);
    }
  });

  it('reads every problem code back to its one error code', () => {
    const seen = new Map<string, ErrorCode>();
    for (const code of ERROR_CODES) {
      const { problem } = errorMeaning(code);
      if (problem === SERVER_FAULT.problem) {
        assert.equal(errorCodeOfProblem(problem), undefined);
        continue;
      }
      assert.equal(seen.get(problem), undefined, `${problem} names both ${seen.get(problem) ?? ''} and ${code}`);
      seen.set(problem, code);
      assert.equal(errorCodeOfProblem(problem), code);
    }
    assert.equal(errorCodeOfProblem('no-such-problem'), undefined);
    assert.equal(errorCodeOfProblem('toString'), undefined);
    assert.equal(errorCodeOfProblem(42), undefined);
  });

  it("uses the gRPC spec's numbers, as grpc-js does", () => {
    for (const [name, value] of Object.entries(GrpcCode)) assert.equal(value, status[name as keyof typeof status], name);
  });

  it('keeps the values the partial tables had before it', () => {
    const pinned: [ErrorCode, number, string, GraphqlCode, number][] = [
      ['ERR_INVALID_ARGUMENT', 400, 'invalid-request', 'BAD_USER_INPUT', status.INVALID_ARGUMENT],
      ['ERR_TOKEN_NAME_REQUIRED', 400, 'token-name-required', 'BAD_USER_INPUT', status.INVALID_ARGUMENT],
      ['ERR_TOKEN_EXPIRED', 401, 'token-expired', 'UNAUTHENTICATED', status.UNAUTHENTICATED],
      ['ERR_FORBIDDEN', 403, 'forbidden', 'FORBIDDEN', status.PERMISSION_DENIED],
      ['ERR_RATE_LIMITED', 429, 'too-many-requests', 'UNAVAILABLE', status.RESOURCE_EXHAUSTED],
      ['ERR_SIGNING_KEY_MISSING', 503, 'signing-key-missing', 'UNAVAILABLE', status.UNAVAILABLE],
      ['ERR_KUBE_REJECTED', 502, 'kube-rejected', 'INTERNAL', status.UNAVAILABLE],
    ];
    for (const [code, http, problem, graphql, grpc] of pinned) {
      assert.deepEqual({ ...errorMeaning(code), title: '', hint: '' }, { http, problem, title: '', hint: '', graphql, grpc, exit: 1 }, code);
    }
    assert.equal(errorMeaning('ERR_SDS_UNKNOWN_RESOURCE').grpc, status.INVALID_ARGUMENT);
    assert.equal(errorMeaning('ERR_CSR_IDENTITY').grpc, status.PERMISSION_DENIED);
  });
});
