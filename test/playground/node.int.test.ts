import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { isAlive } from '../../src/cluster/index.ts';
import { KUBELET_SYSCTLS } from '../../src/playground/node-namespace.ts';
import { PlaygroundEnvSchema, type PlaygroundEnv } from '../../src/playground/index.ts';
import { runCli } from '../support/cli.ts';
import { FULL_MATRIX, demoMatrix } from '../support/node-demo.ts';

const run = promisify(execFile);

/** Host paths a kubelet, containerd or CNI would write to if the node leaked onto the host. */
const HOST_PATHS = ['/var/lib/kubelet', '/var/lib/containerd', '/var/lib/cni', '/var/log/pods', '/var/log/containers', '/run/containerd', '/var/run/sds', '/etc/cni/net.d', '/usr/libexec/kubernetes', '/opt/containerd', '/run/meshid-node-sysctls.json'];

interface HostState {
  links: string;
  routes: string;
  iptables: string;
  sysctls: string[];
  paths: string[];
  cgroups: string[];
}

/** What `down` must give back exactly: the host's links, routes, rules, settings and paths. */
async function hostState(): Promise<HostState> {
  const text = async (command: string, args: string[]): Promise<string> => (await run(command, args)).stdout;
  return {
    links: (await text('ip', ['-o', 'link', 'show'])).replace(/^\d+: /gm, '').split('\n').map((l) => l.split(' ')[0]).sort().join('\n'),
    routes: await text('ip', ['route', 'show']),
    // Counters change by themselves; the rules must not.
    iptables: (await text('iptables-save', [])).split('\n').filter((l) => !l.startsWith('#') && !l.startsWith(':')).join('\n'),
    sysctls: await Promise.all(KUBELET_SYSCTLS.map(async (key) => `${key}=${(await readFile(join('/proc/sys', key), 'utf8')).trim()}`)),
    paths: HOST_PATHS.filter((p) => existsSync(p)),
    cgroups: (await readdir('/sys/fs/cgroup/memory').catch(() => [] as string[])).filter((name) => name.startsWith('meshid-')),
  };
}

describe('meshid up --node: a real node, meshid and the demo as pods', () => {
  let dir = '';
  let env: PlaygroundEnv;
  let before_: HostState;
  const kubectl = async (args: string[], timeout = 30_000): Promise<{ code: number; stdout: string; stderr: string }> =>
    run(env.kubectl, ['--kubeconfig', env.kubeconfigs.admin, ...args], { timeout }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof error.code === 'number' ? error.code : 1, stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
    );

  before(async () => {
    before_ = await hostState();
    dir = await mkdtemp(join(tmpdir(), 'meshid-node-'));
    const up = await runCli(['up', '--node', '--dir', dir, '--detach', '-o', 'json'], { timeoutMs: 300_000 });
    assert.equal(up.code, 0, up.stderr);
    env = PlaygroundEnvSchema.parse(JSON.parse(await readFile(join(dir, 'env.json'), 'utf8')));
  });

  after(async () => {
    if (dir) {
      await runCli(['down', '--dir', dir], { timeoutMs: 120_000 }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('registers a Ready node of the built version, reached by InternalIP', async () => {
    assert.ok(env.node, 'env.json has the node');
    const nodes = JSON.parse((await kubectl(['get', 'nodes', '-o', 'json'])).stdout) as { items: Array<{ metadata: { name: string }; status: { nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string }; addresses: Array<{ type: string; address: string }>; conditions: Array<{ type: string; status: string }> } }> };
    assert.equal(nodes.items.length, 1);
    const [node] = nodes.items;
    assert.equal(node?.metadata.name, env.node.name);
    assert.equal(node?.status.nodeInfo.kubeletVersion, 'v1.37.2');
    assert.match(node?.status.nodeInfo.containerRuntimeVersion ?? '', /^containerd:\/\/2\./);
    assert.deepEqual(node?.status.addresses.find((a) => a.type === 'InternalIP')?.address, env.node.ip);
    assert.equal(node?.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');
    // kubectl parses the stamped version (an unstamped build fails here).
    const version = await kubectl(['version', '-o', 'json']);
    assert.equal(version.code, 0, version.stderr);
    assert.equal((JSON.parse(version.stdout) as { serverVersion: { gitVersion: string } }).serverVersion.gitVersion, 'v1.37.2');
  });

  it('runs meshid as pods only: two server replicas behind the Service, the agent as a DaemonSet', async () => {
    const pods = JSON.parse((await kubectl(['-n', 'meshid-system', 'get', 'pods', '-o', 'json'])).stdout) as { items: Array<{ metadata: { labels: Record<string, string> }; spec: { nodeName: string; containers: Array<{ image: string }> }; status: { phase: string } }> };
    const servers = pods.items.filter((p) => p.metadata.labels['app.kubernetes.io/name'] === 'meshid');
    const agents = pods.items.filter((p) => p.metadata.labels['app.kubernetes.io/name'] === 'meshid-agent');
    assert.equal(servers.length, 2);
    assert.equal(agents.length, 1);
    for (const pod of [...servers, ...agents]) {
      assert.equal(pod.status.phase, 'Running');
      assert.equal(pod.spec.nodeName, env.node?.name);
      assert.match(pod.spec.containers[0]?.image ?? '', /^meshid:\d+\.\d+\.\d+/);
    }
    // The host reaches the Service's ClusterIP through the node, as kube-proxy routes it.
    const ready = await fetch(`${env.server.http}/readyz`, { signal: AbortSignal.timeout(5_000) });
    assert.equal(ready.status, 200);
    assert.match(env.server.https, /^https:\/\/10\.(9[6-9]|10[0-3])\.\d+\.\d+:5682$/, 'the ClusterIP of the node slot');
    // Nothing of meshid is a host process: only the cluster's own and the node's are recorded.
    for (const pid of env.pids) {
      const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
      assert.doesNotMatch(comm, /^node$|meshid/, `pid ${pid} (${comm}) is not meshid`);
    }
  });

  it('gives sleep in foo and bar mTLS to httpbin in both, from inside the pods (4 x 200)', async () => {
    assert.deepEqual(await demoMatrix(kubectl), FULL_MATRIX);
  });

  it('refuses a pod that has no mesh certificate', async () => {
    const image = JSON.parse((await kubectl(['-n', 'foo', 'get', 'deploy', 'sleep', '-o', 'json'])).stdout) as { spec: { template: { spec: { containers: Array<{ image: string }> } } } };
    const script = "require('tls').connect({host:'httpbin.bar',port:8443,rejectUnauthorized:false},function(){this.write('GET / HTTP/1.0\\r\\n\\r\\n')}).on('data',d=>{console.log('ANSWER '+d);process.exit(0)}).on('error',e=>{console.log('REFUSED '+(e.code||e.message));process.exit(0)}).on('close',()=>{console.log('REFUSED closed');process.exit(0)})";
    const created = await kubectl(['-n', 'foo', 'run', 'outsider', `--image=${image.spec.template.spec.containers[0]?.image ?? ''}`, '--image-pull-policy=Never', '--restart=Never', '--command', '--', 'node', '-e', script]);
    assert.equal(created.code, 0, created.stderr);
    const done = await kubectl(['-n', 'foo', 'wait', '--for=jsonpath={.status.phase}=Succeeded', 'pod/outsider', '--timeout=60s'], 70_000);
    assert.equal(done.code, 0, done.stderr);
    const logs = (await kubectl(['-n', 'foo', 'logs', 'outsider'])).stdout;
    assert.match(logs, /^REFUSED /m, logs);
    assert.doesNotMatch(logs, /ANSWER/);
  });

  it('meshid down stops every process and gives the host back as it was', async () => {
    const down = await runCli(['down', '--dir', dir], { timeoutMs: 120_000 });
    assert.equal(down.code, 0, down.stderr);
    assert.ok(env.pids.every((pid) => !isAlive(pid)), 'every recorded process has exited');
    const cleanup = env.node?.cleanup;
    assert.ok(cleanup);
    const left: number[] = [];
    for (const entry of await readdir('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      for (const kind of ['mnt', 'net']) {
        const ns = await import('node:fs/promises').then((fs) => fs.readlink(`/proc/${pid}/ns/${kind}`)).catch(() => '');
        if (cleanup.namespaces.includes(ns)) left.push(pid);
      }
    }
    assert.deepEqual(left, [], 'no process is left in the node namespaces (containerd shims, pods)');
    assert.deepEqual(await hostState(), before_);
  });
});
