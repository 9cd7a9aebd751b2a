export { startServer, type RunningServer, type StartServerOptions } from './server.ts';
export { buildApp, type AppDeps } from './app.ts';
export type { RouteAuth } from './authentication.ts';
export {
  SERVER_ENVIRONMENT,
  ServerConfigSchema,
  parseServerConfig,
  type ServerConfig,
  type ServerConfigInput,
} from './config.ts';
export { toProblem, type Problem } from './problem.ts';
export { ServerMetrics } from './metrics.ts';
export { upstreamPath, K8S_PREFIX } from './k8s-proxy.ts';
export { SESSION_COOKIE, CSRF_COOKIE, CSRF_HEADER, FORWARDED_AUTH_HEADER, FORWARDED_HOST_HEADER, ANONYMOUS_IDENTITY } from './request-auth.ts';
export type { Upstream } from './upstream.ts';
