import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyServerFactory } from 'fastify';
import { createLogger, systemClock, type Clock, type Logger } from '../core/index.ts';
import { createAuthority, issueLeaf, pemBundle } from '../pki/index.ts';
import {
  ApiServerReviews,
  ClusterClientCa,
  KubeSessionKeys,
  KubeSessionRevocations,
  KubeUsedOnce,
  LoginService,
  SESSION_TTL_MS,
  SessionTokens,
  TokenReviewRecheck,
  installationAudience,
} from '../authn/index.ts';
import type { KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import type { KubeReviews } from '../authn/index.ts';
import { DisabledIssuer, KeyedIssuer, KubeRevocations, KubeSigningKeys, StaticPublicKeys, UserTokenValidator, bootstrapAdminToken, parseDuration, parsePublicKey } from '../tokens/index.ts';
import { caStatus, startCa } from '../ca/index.ts';
import { CLUSTER_DOMAIN, MESHID_SERVICE, caServiceNames } from '../contract/index.ts';
import { SecurityEvents, TokenReviewGuard, loadKubeConfig, serviceAccountIssuers } from '../kube/index.ts';
import type { DashboardDeps } from './graphql/context.ts';
import { buildApp, type UserTokenDeps } from './app.ts';
import { parseServerConfig, type ServerConfig, type ServerConfigInput } from './config.ts';
import { connectionsCheckingInterval, limitListener } from './limits.ts';
import { ServerMetrics } from './metrics.ts';
import { kubeUpstream } from './upstream.ts';

export interface RunningServer {
  httpUrl: string;
  httpsUrl: string;
  /** host:port of the workload CA, when enabled. */
  caAddress?: string;
  config: ServerConfig;
  sessionKeys: KubeSessionKeys;
  /** What `/metrics` serves; tests count TokenReviews with it. */
  metrics: ServerMetrics;
  /**
   * Stops. With `drainMs` (a pod told to stop), it first keeps serving that long while each
   * answer ends its keep-alive connection, so clients reconnect to another replica, and gives
   * requests still running a moment to finish; without, it cuts every connection at once.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** How long requests still running after a drain may take before their connections are cut. */
const IN_FLIGHT_GRACE_MS = 2_000;

export interface StartServerOptions {
  log?: Logger;
  clock?: Clock;
}

/**
 * The composition root: wires the real Kubernetes-backed parts, then serves one app on
 * HTTP (5681) and HTTPS (5682).
 */
export async function startServer(input: ServerConfigInput, options: StartServerOptions = {}): Promise<RunningServer> {
  const config = parseServerConfig(input);
  const log = options.log ?? createLogger('meshid-server');
  const clock = options.clock ?? systemClock;
  const kc = loadKubeConfig({ kubeconfig: config.kubeconfig, context: config.context });

  const sessionKeys = new KubeSessionKeys(kc, { namespace: config.namespace, sessionTtlMs: SESSION_TTL_MS, clock, log });
  // Logouts, and single uses of wrapped tokens and login challenges, are shared by every replica through Kubernetes.
  const sessionRevocations = new KubeSessionRevocations(kc, config.namespace, log, clock);
  const usedOnce = new KubeUsedOnce(kc, config.namespace, log, clock);
  const audience = installationAudience(config.namespace);
  let ready = false;
  if (!config.anonymousAuth) {
    await sessionKeys.start();
    await sessionRevocations.start();
  }
  const metrics = new ServerMetrics();
  // Login and the CA each get a guard of their own: a client flooding one does not use up the other's allowance.
  const issuers = config.tokenReviews.issuers ?? (await serviceAccountIssuers(kc, log));
  const reviewGuard = (source: 'login' | 'ca'): TokenReviewGuard =>
    new TokenReviewGuard({
      rate: { burst: config.tokenReviews.burst, perSecond: config.tokenReviews.perSecond },
      refusalCacheMs: config.tokenReviews.refusalCacheMs,
      issuers,
      jwtOnly: source === 'ca',
      clock,
      observe: (outcome) => metrics.tokenReviews.inc({ source, outcome }),
    });
  const reviews = new ApiServerReviews(kc, clock, reviewGuard('login'));
  const recheck = new TokenReviewRecheck(reviews, { intervalMs: config.sessions.recheckSeconds * 1000, sessionTtlMs: SESSION_TTL_MS, clock, log });
  const tokens = new SessionTokens(sessionKeys, clock, { usedOnce, recheck, revocations: sessionRevocations, audience });
  const login = new LoginService({ reviews, clientCa: new ClusterClientCa(kc, clock), tokens, keys: sessionKeys, usedOnce, audience, clock });
  const userTokens = config.anonymousAuth ? undefined : await startUserTokens(kc, config, reviews, log, clock);
  const upstream = await kubeUpstream(kc);
  const tls = await servingCertificate(config);
  const clientCa = config.adminClientCerts ? await readFile(config.adminClientCerts.caFile, 'utf8') : undefined;
  if (clientCa) log.warn('admin client certificates are deprecated: every HTTPS client with a certificate from the configured CA is mesh-system:admin. Move to user tokens.');

  let httpServer: HttpServer | undefined;
  let httpsServer: HttpsServer | undefined;
  const serverFactory: FastifyServerFactory = (handler) => {
    // Node looks for requests past their deadlines only every so often; often enough here.
    const listener = { connectionsCheckingInterval: connectionsCheckingInterval(config) };
    httpServer = createHttpServer(listener, handler);
    // Ask for, but do not require, a client certificate: the deprecated admin mode checks it.
    httpsServer = createHttpsServer({ ...tls, ...listener, ...(clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: false } : {}) }, handler);
    return httpsServer;
  };
  const ca = config.ca.enabled
    ? await startCa(kc, { ...config.ca, serviceNames: config.ca.serviceNames.length > 0 ? config.ca.serviceNames : caServiceNames(config.namespace), namespace: config.namespace, host: config.host }, log, clock, reviewGuard('ca'))
    : undefined;
  const dashboard: DashboardDeps = {
    kc,
    namespace: config.namespace,
    trustDomain: config.ca.trustDomain,
    rootConfigMap: config.ca.rootConfigMap,
    reviews,
    events: new SecurityEvents(kc, config.namespace, log, clock),
    // The running CA's own view, or the Secrets' when this replica runs none.
    caStatus: async () => ca?.ca.status() ?? caStatus(kc, config.namespace, clock),
    ...(userTokens ? { userTokens: { issuer: userTokens.deps.issuer, keys: userTokens.keys, revocations: userTokens.revocations } } : {}),
    clock,
    log,
  };
  const deps = { log, tokens, login, upstream, clock, dashboard, metrics, anonymousAuth: config.anonymousAuth, bodyLimitBytes: config.bodyLimitBytes, ready: () => ready, adminClientCerts: clientCa !== undefined, ...(userTokens ? { userTokens: userTokens.deps } : {}) };
  const app = buildApp(deps, serverFactory);
  await app.ready();
  const listen = (server: HttpServer | HttpsServer, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.on('upgrade', (req, socket, head) => app.handleUpgrade(req, socket, head));
      server.once('error', reject);
      server.listen(port, config.host, () => resolve((server.address() as AddressInfo).port));
    });
  if (!httpServer || !httpsServer) throw new Error('server factory was not called');
  // After buildApp, which gives one of the two listeners fastify's own client-error handler.
  for (const s of [httpServer, httpsServer]) limitListener(s, config, log);
  const httpPort = await listen(httpServer, config.httpPort);
  const httpsPort = await listen(httpsServer, config.httpsPort);
  ready = true;
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  log.info({ httpPort, httpsPort, anonymousAuth: config.anonymousAuth, namespace: config.namespace }, 'meshid server listening');
  if (config.anonymousAuth) log.warn('anonymous mode: login is off; every caller acts as system:anonymous (group system:unauthenticated), so RBAC decides what the mode exposes');

  const servers = [httpServer, httpsServer];
  let draining = false;
  // Before fastify's handler, which answers with what this decides (Connection: close).
  for (const s of servers) s.prependListener('request', (_req, res) => { if (draining) res.shouldKeepAlive = false; });
  return {
    httpUrl: `http://${host}:${httpPort}`,
    httpsUrl: `https://${host}:${httpsPort}`,
    config,
    sessionKeys,
    metrics,
    ...(ca ? { caAddress: ca.address.replace(/^0\.0\.0\.0:/, '127.0.0.1:') } : {}),
    async close(options = {}) {
      if (options.drainMs !== undefined && options.drainMs > 0) {
        // The listeners stay open while kube-proxy may still send new connections here.
        // /readyz stays 200 meanwhile: a terminating pod is out of the endpoints whatever it
        // says, and a 503 would only reach the clients being moved off.
        draining = true;
        await sleep(options.drainMs);
        const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
        for (const s of servers) s.closeIdleConnections();
        await Promise.race([closed, sleep(IN_FLIGHT_GRACE_MS)]);
      }
      ready = false;
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      await app.close();
      await sessionKeys.stop();
      await sessionRevocations.stop();
      await userTokens?.stop();
      await ca?.stop();
      upstream.close();
    },
  };
}

/**
 * User tokens as Kuma wires them: keys from Secrets and/or static config, revocations from a
 * watched Secret, an issuer unless disabled, and the admin token bootstrap.
 */
async function startUserTokens(
  kc: KubeConfig,
  config: ServerConfig,
  reviews: KubeReviews,
  log: Logger,
  clock: Clock,
): Promise<{ deps: UserTokenDeps; keys: KubeSigningKeys | undefined; revocations: KubeRevocations; stop(): Promise<void> }> {
  const settings = config.userTokens;
  const staticKeys = new StaticPublicKeys(
    await Promise.all(settings.validator.publicKeys.map(async (k) => ({ kid: k.kid, key: parsePublicKey(k.key ?? (await readFile(k.keyFile ?? '', 'utf8'))) }))),
  );
  const secretKeys = settings.enableIssuer || settings.validator.useSecrets ? new KubeSigningKeys(kc, config.namespace, log) : undefined;
  await secretKeys?.start();
  if (secretKeys && settings.enableIssuer) {
    await secretKeys.ensureFirst();
    // The watch delivers the key a moment after it is created.
    for (let i = 0; i < 100 && secretKeys.list().length === 0; i++) await sleep(50);
  }
  const revocations = new KubeRevocations(kc, config.namespace, log);
  await revocations.start();
  const validator = new UserTokenValidator([staticKeys, ...(secretKeys && settings.validator.useSecrets ? [secretKeys] : [])], revocations, clock, settings.identityPrefix);
  const maxValidForMs = parseDuration(settings.maxValidFor);
  const issuer = secretKeys && settings.enableIssuer ? new KeyedIssuer(() => secretKeys.signingKey(), clock, maxValidForMs) : new DisabledIssuer();
  if (settings.enableIssuer && settings.bootstrapAdminToken) await bootstrapAdminToken(kc, config.namespace, issuer, maxValidForMs, log);
  const publicKeys = (): { kid: string; key: KeyObject }[] => [
    ...staticKeys.entries(),
    ...(secretKeys && settings.validator.useSecrets
      ? secretKeys.list().flatMap(({ serial }) => {
          const key = secretKeys.publicKey(String(serial));
          return key ? [{ kid: String(serial), key }] : [];
        })
      : []),
  ];
  return {
    deps: { validator, issuer, reviews, publicKeys },
    keys: secretKeys,
    revocations,
    async stop() {
      await secretKeys?.stop();
      await revocations.stop();
    },
  };
}

async function servingCertificate(config: ServerConfig): Promise<{ cert: string; key: string }> {
  if (config.tlsCertFile && config.tlsKeyFile) {
    return { cert: await readFile(config.tlsCertFile, 'utf8'), key: await readFile(config.tlsKeyFile, 'utf8') };
  }
  const ca = await createAuthority('meshid-self-signed');
  const service = `${MESHID_SERVICE}.${config.namespace}.svc`;
  const leaf = await issueLeaf(ca, { commonName: MESHID_SERVICE, usage: 'server', dnsNames: ['localhost', MESHID_SERVICE, service, `${service}.${CLUSTER_DOMAIN}`], ips: ['127.0.0.1'] });
  return { cert: pemBundle(leaf.certPem, ca.certPem), key: leaf.keyPem };
}
