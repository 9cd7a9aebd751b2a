import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshidError } from '../../src/core/index.ts';
import { withinDeadline } from '../../src/server/deadline.ts';

describe('withinDeadline', () => {
  it('answers kube-unavailable for work that never ends', async () => {
    await assert.rejects(withinDeadline(new Promise(() => undefined), 20), (e) => isMeshidError(e, 'ERR_KUBE_UNAVAILABLE') && /within 0.02 s/.test(e.message));
  });

  it('passes through an answer, and the work\'s own error, given in time', async () => {
    assert.equal(await withinDeadline(Promise.resolve(42), 1000), 42);
    await assert.rejects(withinDeadline(Promise.reject(new Error('refused')), 1000), /refused/);
  });
});
