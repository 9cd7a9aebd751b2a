import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { COREDNS_PEER_MODULE, COREDNS_USER, coreDnsRbac, renderCorefile, type CorefileOptions } from '../../src/cluster/coredns-peer.ts';

const base: CorefileOptions = {
  listen: '10.88.0.10',
  port: 53,
  kubeconfig: '/var/lib/meshid/coredns.kubeconfig',
  clusterDomain: 'cluster.local',
  serviceCidr: '10.96.0.0/16',
  podCidr: '10.244.0.0/16',
};

interface Block {
  keys: string[];
  lines: string[];
}

/** Splits a Corefile into its server blocks; enough for the flat files renderCorefile writes. */
function blocks(corefile: string): Block[] {
  const result: Block[] = [];
  let depth = 0;
  for (const raw of corefile.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (depth === 0) {
      assert.match(line, /\{$/, `a server block starts with its keys and {: ${line}`);
      result.push({ keys: line.slice(0, -1).trim().split(/\s+/), lines: [] });
    } else {
      result.at(-1)?.lines.push(line);
    }
    depth += (line.endsWith('{') ? 1 : 0) - (line === '}' ? 1 : 0);
    assert.ok(depth >= 0, 'braces balance');
  }
  assert.equal(depth, 0, 'braces balance');
  return result;
}

describe('CoreDNS peer: renderCorefile', () => {
  it('names no plugin that could send a query elsewhere', () => {
    const text = renderCorefile({ ...base, readyPort: 8181, healthPort: 8080, log: true });
    for (const plugin of ['forward', 'grpc', 'proxy', 'etcd', 'route53', 'clouddns', 'azure', 'secondary', 'loop']) {
      assert.doesNotMatch(text, new RegExp(`^\\s*${plugin}\\b`, 'm'), `${plugin} must not appear`);
    }
  });

  it('serves cluster.local and the reverse zones of both CIDRs from the kubernetes plugin with the given kubeconfig', () => {
    const [cluster] = blocks(renderCorefile(base));
    assert.deepEqual(cluster?.keys, ['cluster.local:53', '10.96.0.0/16:53', '10.244.0.0/16:53']);
    assert.ok(cluster.lines.includes('kubernetes {'));
    assert.ok(cluster.lines.includes('kubeconfig "/var/lib/meshid/coredns.kubeconfig"'));
    assert.ok(cluster.lines.includes('bind 10.88.0.10'));
    assert.ok(cluster.lines.includes('cache 30'));
  });

  it('passes a kubeconfig context when one is given', () => {
    assert.match(renderCorefile({ ...base, kubeContext: 'coredns@meshid-playground' }), /^\s*kubeconfig "\/var\/lib\/meshid\/coredns.kubeconfig" "coredns@meshid-playground"$/m);
  });

  it('answers every other name in a root-zone block with NXDOMAIN on the same address and port', () => {
    const [, root, ...rest] = blocks(renderCorefile(base));
    assert.equal(rest.length, 0);
    assert.deepEqual(root?.keys, ['.:53']);
    assert.ok(root.lines.includes('bind 10.88.0.10'));
    assert.ok(root.lines.includes('rcode NXDOMAIN'));
    assert.ok(!root.lines.some((line) => line.startsWith('kubernetes')), 'the root zone never asks the cluster');
  });

  it('puts ready and health on loopback only, and only when asked for', () => {
    const without = renderCorefile(base);
    assert.doesNotMatch(without, /^\s*(ready|health)\b/m);
    const [cluster, root] = blocks(renderCorefile({ ...base, readyPort: 18181, healthPort: 18080 }));
    assert.ok(cluster && root);
    assert.ok(cluster.lines.includes('ready 127.0.0.1:18181'));
    assert.ok(cluster.lines.includes('health 127.0.0.1:18080'));
    // Both are process-wide in CoreDNS: a second copy would fight over the port.
    assert.ok(!root.lines.some((line) => /^(ready|health)\b/.test(line)));
  });

  it('logs queries only when asked', () => {
    assert.doesNotMatch(renderCorefile(base), /^\s*log$/m);
    assert.equal(renderCorefile({ ...base, log: true }).match(/^\s*log$/gm)?.length, 2);
  });

  it('listens on IPv6 and takes IPv6 CIDRs', () => {
    const [cluster] = blocks(renderCorefile({ ...base, listen: 'fd00::a', serviceCidr: 'fd00:96::/108', podCidr: 'fd00:244::/64' }));
    assert.deepEqual(cluster?.keys, ['cluster.local:53', 'fd00:96::/108:53', 'fd00:244::/64:53']);
    assert.ok(cluster.lines.includes('bind fd00::a'));
  });

  it('refuses input that would change the meaning of the file', () => {
    const bad: Partial<CorefileOptions>[] = [
      { listen: 'localhost' },
      { listen: '127.0.0.1 { forward . 1.1.1.1 }' },
      { port: 0 },
      { port: 70000 },
      { serviceCidr: '10.96.0.0' },
      { podCidr: '10.244.0.0/33' },
      { kubeconfig: '/tmp/a"b' },
      { kubeconfig: '/tmp/{$HOME}/kc' },
      { kubeconfig: '/tmp/a\n}\n. {\nforward . 8.8.8.8' },
      { kubeconfig: '' },
      { readyPort: -1 },
    ];
    for (const override of bad) {
      assert.throws(() => renderCorefile({ ...base, ...override }), { code: 'ERR_INVALID_ARGUMENT' }, JSON.stringify(override));
    }
  });

  it('keeps a kubeconfig path with spaces as one word', () => {
    assert.match(renderCorefile({ ...base, kubeconfig: '/tmp/my cluster/kc' }), /^\s*kubeconfig "\/tmp\/my cluster\/kc"$/m);
  });
});

describe('CoreDNS peer: coreDnsRbac', () => {
  const [role, binding] = coreDnsRbac() as [Record<string, unknown>, Record<string, unknown>];

  it('grants list and watch on services, namespaces and endpointslices, and nothing else', () => {
    assert.equal(role['kind'], 'ClusterRole');
    assert.equal(role['apiVersion'], 'rbac.authorization.k8s.io/v1');
    const rules = role['rules'] as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    const granted = rules.flatMap((rule) => rule.apiGroups.flatMap((group) => rule.resources.map((resource) => `${group}/${resource}:${[...rule.verbs].sort().join(',')}`)));
    assert.deepEqual(granted.sort(), ['/namespaces:list,watch', '/services:list,watch', 'discovery.k8s.io/endpointslices:list,watch']);
    assert.ok(!JSON.stringify(rules).includes('*'), 'no wildcards');
  });

  it('binds that role to the system:coredns user', () => {
    assert.equal(COREDNS_USER, 'system:coredns');
    assert.equal(binding['kind'], 'ClusterRoleBinding');
    assert.deepEqual(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: (role['metadata'] as { name: string }).name });
    assert.deepEqual(binding['subjects'], [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'system:coredns' }]);
  });
});

describe('CoreDNS peer: wrapper module', () => {
  it('builds its own main, which imports no forwarding plugin', async () => {
    const main = await readFile(`${COREDNS_PEER_MODULE}/main.go`, 'utf8');
    assert.match(main, /"github.com\/coredns\/coredns\/plugin\/kubernetes"/);
    assert.doesNotMatch(main, /coredns\/plugin\/(forward|grpc|etcd|loop)"/);
    // The stock plugin list would bring every plugin back.
    assert.doesNotMatch(main, /coredns\/core\/plugin"/);
  });
});
