import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { KubernetesObject } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';
import type { CLUSTER_DOMAIN } from '../contract/index.ts';
import { buildGoBinaries, type EnsureOptions } from './build.ts';

/** The github.com/coredns/coredns module version that peers/coredns/go.mod requires. */
export const COREDNS_VERSION = 'v1.15.0';

/** The wrapper module that builds CoreDNS with a plugin subset; shipped with the package (files: peers). */
export const COREDNS_PEER_MODULE = fileURLToPath(new URL('../../peers/coredns', import.meta.url));

/**
 * The user CoreDNS authenticates as. The kubelet's pods look names up through it, so it gets
 * its own identity with read access to just what the kubernetes plugin watches.
 */
export const COREDNS_USER = 'system:coredns';

/**
 * Returns the path to CoreDNS, built once from its Go module into the peer cache. The build is
 * our own main (peers/coredns/main.go) with a handful of plugins and no forward plugin, so the
 * playground's cluster DNS can never send a query off the machine.
 */
export async function ensureCoreDns(options: EnsureOptions = {}): Promise<string> {
  const paths = await buildGoBinaries({
    ...options,
    moduleDir: COREDNS_PEER_MODULE,
    name: `coredns-${COREDNS_VERSION}`,
    // main.go decides which plugins are in, so a change to it must build afresh.
    hashFiles: ['go.mod', 'go.sum', 'main.go'],
    targets: { coredns: '.' },
    buildFlags: ['-trimpath', '-ldflags=-s -w'],
    goEnv: { CGO_ENABLED: '0' },
    label: `Building CoreDNS ${COREDNS_VERSION} from its Go module`,
    built: 'CoreDNS',
    purpose: 'to build CoreDNS as the playground cluster DNS',
  });
  return paths.coredns;
}

export interface CorefileOptions {
  /** The IP address CoreDNS listens on (UDP and TCP): what pods get as their nameserver. */
  listen: string;
  port: number;
  /** A kubeconfig for {@link COREDNS_USER}; read by the kubernetes plugin. */
  kubeconfig: string;
  /** Context in the kubeconfig; its current-context when left out. */
  kubeContext?: string;
  clusterDomain: typeof CLUSTER_DOMAIN;
  /** Service ClusterIPs; PTR lookups in it are answered from Services. */
  serviceCidr: string;
  /** Pod IPs; PTR lookups in it are answered from EndpointSlices. */
  podCidr: string;
  /** Port on 127.0.0.1 for /ready (200 once the kubernetes plugin has synced); none when left out. */
  readyPort?: number;
  /** Port on 127.0.0.1 for /health; none when left out. */
  healthPort?: number;
  /** Log every query to stdout; for debugging, as it is one line per lookup. */
  log?: boolean;
}

/**
 * Renders the Corefile for the playground's cluster DNS. Two server blocks share one listener:
 * the cluster domain and the reverse zones of both CIDRs go to the kubernetes plugin, and the
 * root zone catches every other name and answers NXDOMAIN itself. A real cluster forwards
 * those to an upstream resolver; the playground has none, and a lookup must not leave the
 * machine, so the binary is built without the forward plugin and this file never names one.
 */
export function renderCorefile(options: CorefileOptions): string {
  const { listen, port } = options;
  checkPort(port, 'port');
  if (isIP(listen) === 0) throw invalid(`listen must be an IP address, not ${JSON.stringify(listen)}`);
  for (const [name, cidr] of [['serviceCidr', options.serviceCidr], ['podCidr', options.podCidr]] as const) {
    if (!isCidr(cidr)) throw invalid(`${name} must be a CIDR such as 10.96.0.0/12, not ${JSON.stringify(cidr)}`);
  }
  // CoreDNS expands a CIDR key into its in-addr.arpa (or ip6.arpa) zones, also for masks that
  // do not end on an octet boundary, so the reverse zones follow the CIDRs exactly.
  const zones = [options.clusterDomain, options.serviceCidr, options.podCidr].map((zone) => `${zone}:${String(port)}`);
  const bind = `  bind ${listen}`;
  const log = options.log === true ? ['  log'] : [];

  const cluster = [
    `${zones.join(' ')} {`,
    bind,
    // ready and health are process-wide, so they go in one block only; loopback keeps them off
    // the pod network, where nothing should reach them.
    ...(options.readyPort === undefined ? [] : [`  ready 127.0.0.1:${String(checkPort(options.readyPort, 'readyPort'))}`]),
    ...(options.healthPort === undefined ? [] : [`  health 127.0.0.1:${String(checkPort(options.healthPort, 'healthPort'))}`]),
    '  errors',
    ...log,
    // Answers carry the kubernetes plugin's 5 s TTL, so a new Service shows up within seconds.
    '  cache 30',
    '  kubernetes {',
    `    kubeconfig ${quote(options.kubeconfig)}${options.kubeContext === undefined ? '' : ` ${quote(options.kubeContext)}`}`,
    '    ttl 5',
    '  }',
    '}',
  ];
  const catchAll = [
    `.:${String(port)} {`,
    bind,
    '  errors',
    ...log,
    // Every name outside the zones above, including lookups that a pod's search list sends here
    // before the absolute name, gets a quick definite "no such name", never a retry or a timeout.
    '  template ANY ANY {',
    '    rcode NXDOMAIN',
    '  }',
    '}',
  ];
  return [
    '# Cluster DNS for the meshid playground (rendered by src/cluster/coredns-peer.ts).',
    ...cluster,
    '',
    ...catchAll,
    '',
  ].join('\n');
}

/**
 * The ClusterRole and ClusterRoleBinding that let {@link COREDNS_USER} run the kubernetes
 * plugin: it lists and watches Services, EndpointSlices and Namespaces across the cluster.
 * Pods are left out because the Corefile keeps pod records off (the plugin watches pods only
 * for `pods verified`), and nothing is writable.
 */
export function coreDnsRbac(): KubernetesObject[] {
  const rbac = 'rbac.authorization.k8s.io';
  const name = 'meshid:coredns';
  const verbs = ['list', 'watch'];
  return [
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRole',
      metadata: { name },
      rules: [
        { apiGroups: [''], resources: ['services', 'namespaces'], verbs },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs },
      ],
    } as KubernetesObject,
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: rbac, kind: 'ClusterRole', name },
      subjects: [{ apiGroup: rbac, kind: 'User', name: COREDNS_USER }],
    } as KubernetesObject,
  ];
}

function invalid(message: string): MeshidError {
  return new MeshidError('ERR_INVALID_ARGUMENT', `Corefile: ${message}`);
}

function checkPort(port: number, name: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(`${name} must be a port number, not ${String(port)}`);
  return port;
}

function isCidr(text: string): boolean {
  const [ip = '', bits, ...rest] = text.split('/');
  if (bits === undefined || rest.length > 0 || !/^\d{1,3}$/.test(bits)) return false;
  const family = isIP(ip);
  return family !== 0 && Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * Quotes a word for the Corefile. The lexer ends a bare word at whitespace, and replaces `{$NAME}`
 * (and `{%NAME%}`) with an environment variable even inside quotes, so a path holding either, or
 * a quote, backslash or line break, is refused rather than read as something else.
 */
function quote(word: string): string {
  if (word === '' || /["\\\r\n]|\{[$%]/.test(word)) throw invalid(`${JSON.stringify(word)} cannot be written into a Corefile`);
  return `"${word}"`;
}
