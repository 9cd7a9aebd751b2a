import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { PLAYGROUND_CLUSTER } from '../../src/cluster/index.ts';
import { renderKubeconfig } from '../../src/cluster/kubeconfig.ts';
import { tokenAuthFile } from '../../src/cluster/users.ts';

const load = (yaml: string): KubeConfig => {
  const kc = new KubeConfig();
  kc.loadFromString(yaml);
  return kc;
};

describe('playground kubeconfigs', () => {
  it('renders a certificate user that client-node loads, with the context <user>@meshid-playground', () => {
    const kc = load(renderKubeconfig('https://127.0.0.1:6443', 'CA', 'alice', { type: 'certificate', certPem: 'CERT', keyPem: 'KEY' }));
    assert.equal(kc.getCurrentContext(), `alice@${PLAYGROUND_CLUSTER}`);
    assert.equal(kc.getCurrentCluster()?.server, 'https://127.0.0.1:6443');
    assert.equal(Buffer.from(kc.getCurrentUser()?.certData ?? '', 'base64').toString(), 'CERT');
    assert.equal(Buffer.from(kc.getCurrentUser()?.keyData ?? '', 'base64').toString(), 'KEY');
  });

  it('renders token and exec users', () => {
    assert.equal(load(renderKubeconfig('https://h', 'CA', 'bob', { type: 'token', token: 't0k' })).getCurrentUser()?.token, 't0k');
    const user = load(renderKubeconfig('https://h', 'CA', 'carol', { type: 'exec', command: '/bin/node', args: ['x'] })).getCurrentUser();
    const exec = user?.exec as { command?: string; apiVersion?: string } | undefined;
    assert.equal(exec?.command, '/bin/node');
    assert.equal(exec?.apiVersion, 'client.authentication.k8s.io/v1');
  });

  it('writes the static token file in the apiserver format', () => {
    assert.equal(
      tokenAuthFile([{ name: 'bob', uid: 'u1', groups: ['ops', 'qa'], token: 'abc' }]),
      'abc,bob,u1,"ops,qa"\n',
    );
  });
});
