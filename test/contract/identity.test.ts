import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshidError } from '../../src/core/index.ts';
import { checkTrustDomain, isNamespaceName, isServiceAccountName, isTrustDomain, parseSpiffeId, spiffeId } from '../../src/contract/index.ts';
import { splitPem } from '../../src/pki/index.ts';

describe('the shared workload identity', () => {
  it('holds names to what Kubernetes enforces: namespaces DNS-1123 labels, service accounts subdomains', () => {
    assert.ok(isNamespaceName('istio-system'));
    assert.ok(isNamespaceName('a'.repeat(63)));
    assert.ok(!isNamespaceName('a'.repeat(64)));
    assert.ok(!isNamespaceName('team.a'), 'a namespace is a label, without dots');
    assert.ok(isServiceAccountName('a.b-c'));
    assert.ok(isServiceAccountName(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`));
    assert.ok(!isServiceAccountName('a'.repeat(254)));
    for (const bad of ['', 'A', '-a', 'a-', 'a..b', 'a/b', 'a?b', 'a#b']) {
      assert.ok(!isServiceAccountName(bad), bad);
      assert.ok(!isNamespaceName(bad), bad);
    }
  });

  it('takes SPIFFE trust domains, "_" included, and names the field when refusing one', () => {
    for (const good of ['cluster.local', 'mesh_1.example', 'td-2']) assert.ok(isTrustDomain(good), good);
    for (const bad of ['', 'Cluster.Local', 'a/b', 'a:1', 'x'.repeat(256)]) {
      assert.throws(() => checkTrustDomain(bad), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT') && /trustDomain/.test(e.message), bad);
    }
  });

  it('parses exactly what it formats', () => {
    const id = { trustDomain: 'mesh_1.example', namespace: 'default', serviceAccount: 'a.b-c' };
    assert.deepEqual(parseSpiffeId(spiffeId(id)), id);
    for (const bad of ['spiffe://cluster.local/ns/default/sa/', 'spiffe://cluster.local/ns/Default/sa/x', 'spiffe://cluster.local/ns/a/sa/b/c', 'https://cluster.local/ns/a/sa/b']) {
      assert.equal(parseSpiffeId(bad), undefined, bad);
    }
  });
});

describe('splitPem', () => {
  it('answers each certificate with one trailing newline, whatever the bundle ended with', () => {
    const block = '-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----';
    assert.deepEqual(splitPem(`${block}\r\n${block}`), [`${block}\r\n`, `${block}\n`]);
    assert.deepEqual(splitPem(`junk\n${block}\n\n`), [`${block}\n`]);
    assert.deepEqual(splitPem(''), []);
  });
});
