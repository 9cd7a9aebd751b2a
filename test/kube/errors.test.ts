import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isConflict, isNotFound } from '../../src/kube/index.ts';

describe('Kubernetes error helpers', () => {
  // @kubernetes/client-node's ApiException carries the HTTP status as a numeric `code`.
  const answer = (code: number): Error => Object.assign(new Error('HTTP-Code'), { code });

  it('tell a missing object (404) from a lost race or taken name (409)', () => {
    assert.ok(isNotFound(answer(404)) && !isConflict(answer(404)));
    assert.ok(isConflict(answer(409)) && !isNotFound(answer(409)));
  });

  it('say no for anything else, string error codes included', () => {
    for (const error of [answer(500), Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), undefined, 'text']) {
      assert.ok(!isNotFound(error) && !isConflict(error));
    }
  });
});
