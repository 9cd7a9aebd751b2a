import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { SECRET_TYPE_URL, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse } from '../../src/agent/index.ts';
import { createAuthority } from '../../src/pki/index.ts';
import { bearer, openDelta, rootsOf, startHarness, workloadOf, type Harness } from './support.ts';

function subscribe(names: string[], extra: Partial<DeltaDiscoveryRequest> = {}): Partial<DeltaDiscoveryRequest> {
  return { type_url: SECRET_TYPE_URL, resource_names_subscribe: names, ...extra };
}

function ackOf(response: DeltaDiscoveryResponse): Partial<DeltaDiscoveryRequest> {
  return { type_url: SECRET_TYPE_URL, response_nonce: response.nonce };
}

describe('DeltaSecrets (incremental xDS)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it('sends each subscribed resource with its own version, does not answer an ACK, and pushes only what changed', async () => {
    const token = h.reviewer.add('token-delta', 'delta', 'web');
    const stream = openDelta(h.client(), bearer(token));
    stream.send(subscribe(['default', 'ROOTCA']));
    const first = await stream.next();
    assert.equal(first.type_url, SECRET_TYPE_URL);
    assert.ok(first.nonce);
    assert.deepEqual(first.resources.map((r) => r.name), ['default', 'ROOTCA']);
    for (const r of first.resources) assert.ok(r.version);
    assert.equal(workloadOf(first.resources[0]?.resource).name, 'default');
    assert.equal(rootsOf(first.resources[1]?.resource).name, 'ROOTCA');
    stream.send(ackOf(first));
    await stream.nothingFor(200);

    await h.server.rotateCertificates();
    const pushed = await stream.next();
    assert.deepEqual(pushed.resources.map((r) => r.name), ['default'], 'only the renewed resource');
    assert.notEqual(pushed.resources[0]?.version, first.resources[0]?.version);
    stream.send(ackOf(pushed));

    const root2 = await createAuthority('delta root 2');
    h.bundle.set([h.ca.root.certPem, root2.certPem]);
    const roots = await stream.next();
    assert.deepEqual(roots.resources.map((r) => r.name), ['ROOTCA']);
    stream.send(ackOf(roots));
    h.bundle.set([h.ca.root.certPem]);
    stream.send(ackOf(await stream.next()));
    stream.close();
  });

  it('does not resend what the client says it already holds after a reconnect', async () => {
    const token = h.reviewer.add('token-delta-reconnect', 'delta', 'reconnect');
    const firstStream = openDelta(h.client(), bearer(token));
    firstStream.send(subscribe(['default', 'ROOTCA']));
    const first = await firstStream.next();
    firstStream.close();
    const versions = Object.fromEntries(first.resources.map((r) => [r.name, r.version]));
    const again = openDelta(h.client(), bearer(token));
    // It holds the current ROOTCA and an outdated default.
    again.send(subscribe(['default', 'ROOTCA'], { initial_resource_versions: { ROOTCA: versions['ROOTCA'] ?? '', default: 'outdated' } }));
    const answer = await again.next();
    assert.deepEqual(answer.resources.map((r) => r.name), ['default']);
    again.close();
  });

  it('honours a subscription change even with a stale nonce, and handles unsubscribe', async () => {
    const token = h.reviewer.add('token-delta-sub', 'delta', 'sub');
    const stream = openDelta(h.client(), bearer(token));
    stream.send(subscribe(['default']));
    const first = await stream.next();
    await h.server.rotateCertificates();
    const second = await stream.next();
    assert.notEqual(second.nonce, first.nonce);
    stream.send(subscribe(['ROOTCA'], { response_nonce: first.nonce }));
    const roots = await stream.next();
    assert.deepEqual(roots.resources.map((r) => r.name), ['ROOTCA']);
    stream.send({ type_url: SECRET_TYPE_URL, response_nonce: roots.nonce, resource_names_unsubscribe: ['default'] });
    await h.server.rotateCertificates();
    await stream.nothingFor(300);
    stream.close();
  });

  it('does not resend a version the client NACKed', async () => {
    const token = h.reviewer.add('token-delta-nack', 'delta', 'nack');
    const stream = openDelta(h.client(), bearer(token));
    stream.send(subscribe(['default']));
    const first = await stream.next();
    stream.send({ type_url: SECRET_TYPE_URL, response_nonce: first.nonce, error_detail: { code: 3, message: 'bad key' } });
    await stream.nothingFor(200);
    stream.send(subscribe(['default'], { response_nonce: first.nonce }));
    await stream.nothingFor(200);
    stream.close();
  });

  it('ends a stream that subscribes to an unknown resource, or to nothing, with INVALID_ARGUMENT', async () => {
    const token = h.reviewer.add('token-delta-bad', 'delta', 'bad');
    const unknown = openDelta(h.client(), bearer(token));
    unknown.send(subscribe(['kube://ns/secret']));
    const ended = await unknown.status();
    assert.equal(ended.code, status.INVALID_ARGUMENT);
    assert.match(ended.details ?? '', /kube:\/\/ns\/secret/);
    const wildcard = openDelta(h.client(), bearer(token));
    wildcard.send(subscribe([]));
    assert.equal((await wildcard.status()).code, status.INVALID_ARGUMENT);
  });
});
