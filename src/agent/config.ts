import { z } from 'zod';
import { checkedConfig, type EnvSetting } from '../core/index.ts';
import { DEFAULT_CA_PORT, DEFAULT_TRUST_DOMAIN, ROOT_CONFIGMAP, TRUST_DOMAIN_HINT, isTrustDomain } from '../contract/index.ts';
import { CA_AUDIENCE } from '../kube/index.ts';

const fileMode = z.number().int().min(0).max(0o777);

/**
 * Every setting of `meshid agent` and its default, in one schema: a --config file, MESHID_*
 * variables and the flags given feed it, in that order. Errors name the failing field.
 */
export const AgentConfigSchema = z.object({
  /** Where the CA publishes its trust bundle for the agent: meshid's namespace. */
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).default('meshid-system'),
  /** Kubernetes credentials; in-cluster config when neither is set. */
  kubeconfig: z.string().optional(),
  context: z.string().optional(),
  /** The Unix socket Envoy's SDS client connects to. */
  socketPath: z.string().min(1).default('/var/run/sds/uds_path'),
  socketMode: fileMode.default(0o660),
  /** Mode of the socket's directory when the agent creates it. */
  directoryMode: fileMode.default(0o750),
  /** host:port of the workload CA: the in-cluster Service on Istio's CA port. */
  caAddress: z.string().min(1).default(`meshid.meshid-system.svc:${DEFAULT_CA_PORT}`),
  /** The name to check the CA's certificate against, when the address is an IP or alias. */
  caServerName: z.string().min(1).optional(),
  trustDomain: z.string().refine(isTrustDomain, TRUST_DOMAIN_HINT).default(DEFAULT_TRUST_DOMAIN),
  /** Workload keys: ec (P-256) or rsa (2048). */
  keyType: z.enum(['ec', 'rsa']).default('ec'),
  /** Lifetime asked of the CA, renewed at about half of it. Whole seconds: the CA reads 0 as "its default". */
  certificateTtlSeconds: z.number().int().min(1).default(24 * 3600),
  /** The ConfigMap in `namespace` that carries the trust bundle. */
  rootConfigMap: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/).default(ROOT_CONFIGMAP),
  /** Audiences the workload's token must carry, as the CA checks them. */
  audiences: z.array(z.string().min(1)).min(1).default([CA_AUDIENCE]),
});

export type AgentConfig = z.infer<typeof AgentConfigSchema>;
export type AgentConfigInput = z.input<typeof AgentConfigSchema>;

/** The MESHID_* variables `meshid agent` reads, each with the setting it sets. */
export const AGENT_ENVIRONMENT: Readonly<Record<string, EnvSetting>> = {
  MESHID_NAMESPACE: { path: 'namespace', type: 'string' },
  MESHID_SOCKET: { path: 'socketPath', type: 'string' },
  MESHID_CA_ADDRESS: { path: 'caAddress', type: 'string' },
  MESHID_CA_SERVER_NAME: { path: 'caServerName', type: 'string' },
  MESHID_TRUST_DOMAIN: { path: 'trustDomain', type: 'string' },
  MESHID_KEY_TYPE: { path: 'keyType', type: 'string' },
  MESHID_CERTIFICATE_TTL_SECONDS: { path: 'certificateTtlSeconds', type: 'number' },
  MESHID_ROOT_CONFIG_MAP: { path: 'rootConfigMap', type: 'string' },
};

export function parseAgentConfig(input: unknown): AgentConfig {
  return checkedConfig(AgentConfigSchema.safeParse(input), 'agent config');
}
