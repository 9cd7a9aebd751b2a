import { z } from 'zod';
import { MeshidError, checkedConfig, type EnvSetting } from '../core/index.ts';
import { DEFAULT_CA_PORT, DEFAULT_TRUST_DOMAIN, ROOT_CONFIGMAP, TRUST_DOMAIN_HINT, isTrustDomain } from '../contract/index.ts';
import { CA_AUDIENCE, REFUSAL_CACHE_MS } from '../kube/index.ts';
import { DEFAULT_TRUSTED_NODE_ACCOUNTS, parseNodeAccount } from '../ca/index.ts';
import { DEFAULT_IDENTITY_PREFIX, DEFAULT_MAX_VALID_FOR, identityPrefixProblem, parseDuration } from '../tokens/index.ts';

/**
 * Every server setting and its default, in one schema. Errors name the failing field.
 * Flags of `meshid server` and MESHID_* environment variables feed it.
 */
export const ServerConfigSchema = z.object({
  /** Where meshid keeps its Secrets. */
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).default('meshid-system'),
  host: z.string().default('0.0.0.0'),
  httpPort: z.number().int().min(0).max(65535).default(5681),
  httpsPort: z.number().int().min(0).max(65535).default(5682),
  /** PEM files for HTTPS; a self-signed certificate is made when absent. */
  tlsCertFile: z.string().optional(),
  tlsKeyFile: z.string().optional(),
  /** Turns login off: every caller is Kubernetes' anonymous user (system:anonymous), impersonated. */
  anonymousAuth: z.boolean().default(false),
  /** Kubernetes credentials; in-cluster config when neither is set. */
  kubeconfig: z.string().optional(),
  context: z.string().optional(),
  /** Longest request body accepted outside the Kubernetes proxy. */
  bodyLimitBytes: z.number().int().positive().default(64 * 1024),
  /** A client that has not sent its headers by then gets 408 and is disconnected (slowloris). */
  headersTimeoutMs: z.number().int().positive().default(10_000),
  /** The same for the whole request, body included; answers that stream (watches) are not bounded by it. */
  requestTimeoutMs: z.number().int().positive().default(60_000),
  /**
   * An idle keep-alive connection is closed after this. Longer than the 60 s idle timeout
   * of common load balancers, so that they, not the server, close idle connections (a
   * server closing first races the balancer's next request on that connection).
   */
  keepAliveTimeoutMs: z.number().int().positive().default(72_000),
  /** A connection that sends and receives nothing for this long is closed; watches and upgraded (exec) connections are exempt. */
  idleTimeoutMs: z.number().int().positive().default(120_000),
  /**
   * What login and the workload CA may ask TokenReview. Each client address has a token
   * bucket of `burst` reviews refilled at `perSecond` (behind the apiserver's service proxy,
   * or for the CA behind one node agent, many users share an address: keep it generous); a
   * client past it gets 429 (gRPC RESOURCE_EXHAUSTED). A refused token is refused again from
   * memory for `refusalCacheMs`. A JWT is reviewed only when its `iss` is in `issuers`; unset,
   * that is the apiserver's service-account issuer (read at start) and the legacy one, so list
   * your OIDC issuers here if the apiserver accepts OIDC tokens.
   */
  tokenReviews: z
    .object({
      burst: z.number().int().positive().default(50),
      perSecond: z.number().positive().default(10),
      refusalCacheMs: z.number().int().min(0).default(REFUSAL_CACHE_MS),
      issuers: z.array(z.string().min(1)).min(1).optional(),
    })
    .prefault({}),
  /**
   * Deprecated, as in Kuma: on HTTPS, a client certificate signed by this CA authenticates
   * as mesh-system:admin. Prefer user tokens.
   */
  adminClientCerts: z.object({ caFile: z.string().min(1) }).optional(),
  /** The workload CA (Istio's CreateCertificate over gRPC/TLS), off unless enabled. */
  ca: z
    .object({
      enabled: z.boolean().default(false),
      port: z.number().int().min(0).max(65535).default(DEFAULT_CA_PORT),
      /** SPIFFE's alphabet, the one rule the CA and the agent check too. */
      trustDomain: z.string().refine(isTrustDomain, TRUST_DOMAIN_HINT).default(DEFAULT_TRUST_DOMAIN),
      /** Key type of a self-signed root this CA creates; istiod's default is RSA-2048. */
      keyType: z.enum(['rsa', 'ec']).default('rsa'),
      /** Lifetime of a leaf when the request asks for none (0 or less). */
      defaultTtlSeconds: z.number().int().positive().default(24 * 3600),
      /** Longest lifetime a request may ask for; longer requests are refused. */
      maxTtlSeconds: z.number().int().positive().default(90 * 24 * 3600),
      /** Audiences a caller's service-account token must carry. */
      audiences: z.array(z.string().min(1)).min(1).default([CA_AUDIENCE]),
      /** ConfigMap that carries the trust bundle into every namespace; one CA per cluster owns it. */
      rootConfigMap: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/).default(ROOT_CONFIGMAP),
      /**
       * DNS names on the CA's serving certificate (clients may verify any of them). Empty: the
       * Service's names in the server's namespace (see caServiceNames), which install's agent dials.
       */
      serviceNames: z.array(z.string().min(1)).default([]),
      /**
       * Node proxies (Istio ambient's ztunnel) as `namespace/serviceaccount`, Istio's
       * CA_TRUSTED_NODE_ACCOUNTS: they may ask for the certificate of any workload with a pod
       * on their own node (request metadata ImpersonatedIdentity). Empty trusts none.
       */
      trustedNodeAccounts: z
        .array(z.string().refine((account) => parseNodeAccount(account) !== undefined, 'must be namespace/serviceaccount, e.g. istio-system/ztunnel'))
        .default([...DEFAULT_TRUSTED_NODE_ACCOUNTS]),
      /**
       * Worker threads that check and sign CSRs while the event loop keeps gRPC and TLS. Unset:
       * one per usable core (the fewer of the CPUs offered and the cgroup's quota), none on one
       * core. 0 signs on the event loop.
       */
      signingThreads: z.number().int().min(0).max(64).optional(),
    })
    .refine((ca) => ca.defaultTtlSeconds <= ca.maxTtlSeconds, { message: 'defaultTtlSeconds must not exceed maxTtlSeconds', path: ['defaultTtlSeconds'] })
    .prefault({}),
  /** Login sessions (ID tokens). */
  sessions: z
    .object({
      /**
       * How often, at most, a session's kube bearer token is reviewed again (TokenReview), so
       * a deleted or expired credential ends its session within about this long.
       */
      recheckSeconds: z.number().int().positive().default(30),
    })
    .prefault({}),
  /** User tokens, as Kuma's `apiServer.authn.tokens`. */
  userTokens: z
    .object({
      /** When false the server issues no tokens (offline issuing only). */
      enableIssuer: z.boolean().default(true),
      /** Create Secret `admin-user-token` on first start; an existing one is left alone either way. */
      bootstrapAdminToken: z.boolean().default(true),
      /**
       * Every token's Name and Groups reach Kubernetes under this prefix (a value already under
       * it is kept), so issuing a token never names an existing Kubernetes user or group.
       */
      identityPrefix: z
        .string()
        .default(DEFAULT_IDENTITY_PREFIX)
        .superRefine((prefix, ctx) => {
          const problem = identityPrefixProblem(prefix);
          if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
        }),
      /** Longest validFor the issuer accepts (Go duration); the admin token is held to it as well. */
      maxValidFor: z
        .string()
        .default(DEFAULT_MAX_VALID_FOR)
        .refine((text) => {
          try {
            return parseDuration(text) > 0;
          } catch {
            return false;
          }
        }, 'must be a positive duration such as 8760h'),
      validator: z
        .object({
          /** When false, keys held in Secrets are ignored and only `publicKeys` validate. */
          useSecrets: z.boolean().default(true),
          publicKeys: z
            .array(
              z
                .object({ kid: z.string().min(1).max(128), key: z.string().optional(), keyFile: z.string().optional() })
                .refine((k) => (k.key === undefined) !== (k.keyFile === undefined), 'give exactly one of key or keyFile'),
            )
            .default([]),
        })
        .prefault({}),
    })
    .prefault({}),
});

export type ServerConfig = z.infer<typeof ServerConfigSchema>;
export type ServerConfigInput = z.input<typeof ServerConfigSchema>;

export function parseServerConfig(input: ServerConfigInput): ServerConfig {
  const config = checkedConfig(ServerConfigSchema.safeParse(input), 'server config');
  if (config.headersTimeoutMs > config.requestTimeoutMs) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', 'server config headersTimeoutMs must not exceed requestTimeoutMs: the headers are part of the request');
  }
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', 'server config tlsCertFile and tlsKeyFile must be given together');
  }
  return config;
}

/**
 * The MESHID_* variables `meshid server` reads, each with the config key it sets. A list
 * rather than a naming rule, so that the README can print it and a typo is not silently a
 * new key. They override the --config file and are overridden by flags given.
 */
export const SERVER_ENVIRONMENT: Readonly<Record<string, EnvSetting>> = {
  MESHID_NAMESPACE: { path: 'namespace', type: 'string' },
  MESHID_HOST: { path: 'host', type: 'string' },
  MESHID_HTTP_PORT: { path: 'httpPort', type: 'number' },
  MESHID_HTTPS_PORT: { path: 'httpsPort', type: 'number' },
  MESHID_TLS_CERT_FILE: { path: 'tlsCertFile', type: 'string' },
  MESHID_TLS_KEY_FILE: { path: 'tlsKeyFile', type: 'string' },
  MESHID_ANONYMOUS_AUTH: { path: 'anonymousAuth', type: 'boolean' },
  MESHID_CA_ENABLED: { path: 'ca.enabled', type: 'boolean' },
  MESHID_CA_PORT: { path: 'ca.port', type: 'number' },
  MESHID_CA_TRUST_DOMAIN: { path: 'ca.trustDomain', type: 'string' },
  MESHID_CA_ROOT_CONFIG_MAP: { path: 'ca.rootConfigMap', type: 'string' },
  MESHID_CA_SIGNING_THREADS: { path: 'ca.signingThreads', type: 'number' },
  MESHID_USER_TOKENS_ENABLE_ISSUER: { path: 'userTokens.enableIssuer', type: 'boolean' },
};
