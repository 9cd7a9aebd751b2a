import { statSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fastifyStatic } from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MeshidError } from '../core/index.ts';
import { kumaIndex } from './kuma-index.ts';

/**
 * The Vite build of `web/`. Resolved from this module, so it is `dist/web` both from
 * `src/server` under tsx and from the compiled `dist/server`.
 */
export const DASHBOARD_ROOT = fileURLToPath(new URL('../../dist/web/', import.meta.url));

/** Paths the server's own routes own: an unknown one there is a 404, never the dashboard. */
const SERVER_PREFIXES = ['/api', '/tokens', '/metrics', '/healthz', '/readyz', '/.well-known'];

/**
 * Only the dashboard's own files, no inline code: a token pasted into the login window or a
 * session the page holds is out of reach of injected script. `style-src` allows no inline
 * styles either; React sets styles through the DOM, which CSP does not restrict.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const NO_STORE = 'no-store';
/** Vite puts a content hash in every name under assets/: a new build is a new URL. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const SHORT = 'public, max-age=300';

const ownedByServer = (path: string): boolean => SERVER_PREFIXES.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));

const isFile = (path: string): boolean => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/** Where the dashboard is served; the Kuma index names it as its `gui`. */
const DASHBOARD_PATH = '/';

/**
 * Serves the dashboard at `/`: its files, and `index.html` for any other page the browser
 * asks for (the dashboard routes by path), except under the server's own prefixes. Without
 * a build it answers a 503 that says how to make one. A client at `/` that does not ask for
 * HTML gets Kuma's index instead, as kuma-cp answers there: kumactl asks with no Accept.
 */
export function registerDashboard(app: FastifyInstance, root: string = DASHBOARD_ROOT): void {
  const base = resolve(root);
  void app.register(async (scope) => {
    // serve: false: the routes below decide what is a file, what is a page and what is a 404.
    await scope.register(fastifyStatic, { root: base, serve: false, cacheControl: false, suppressWarning: true });

    const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const path = requestPath(request.url);
      if (path === undefined || ownedByServer(path)) {
        reply.callNotFound();
        return reply;
      }
      if (path === DASHBOARD_PATH) {
        // One URL, two representations: caches must key on Accept.
        void reply.header('vary', 'Accept');
        // Before the build check: kumactl needs the index whether or not a dashboard is built.
        if (!acceptsHtml(request)) return reply.header('cache-control', NO_STORE).send(kumaIndex(DASHBOARD_PATH));
      }
      if (!isFile(resolve(base, 'index.html'))) {
        throw new MeshidError('ERR_DASHBOARD_NOT_BUILT', 'the dashboard is not built: run `npm run build` (it writes dist/web)');
      }
      void reply.header('content-security-policy', DASHBOARD_CSP).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
      const file = fileUnder(base, path);
      if (file && file !== 'index.html') {
        return reply.header('cache-control', file.startsWith('assets/') ? IMMUTABLE : SHORT).sendFile(file, base);
      }
      // A page of the dashboard: only for a browser navigation, so a missing script or a typo
      // in an API call is a 404 and not a page of HTML.
      if (path === DASHBOARD_PATH || file === 'index.html' || acceptsHtml(request)) return reply.header('cache-control', NO_STORE).sendFile('index.html', base);
      reply.callNotFound();
      return reply;
    };
    // The dashboard's files hold no data: its API calls authenticate.
    scope.get('/', { config: { auth: 'public' } }, handler);
    scope.get('/*', { config: { auth: 'public' } }, handler);
  });
}

/** The decoded path of a request URL; undefined when it is not one (bad escapes, NUL). */
function requestPath(url: string): string | undefined {
  const raw = url.split('?')[0] ?? '/';
  try {
    const path = decodeURIComponent(raw);
    return path.includes('\0') ? undefined : path;
  } catch {
    return undefined;
  }
}

/** The path as a file under the root, relative to it; undefined when there is none or it would leave the root or name a dotfile. */
function fileUnder(base: string, path: string): string | undefined {
  if (path.split('/').some((segment) => segment.startsWith('.'))) return undefined;
  const full = resolve(base, `.${path}`);
  if (!full.startsWith(base + sep) || !isFile(full)) return undefined;
  return full.slice(base.length + 1).split(sep).join('/');
}

function acceptsHtml(request: FastifyRequest): boolean {
  return String(request.headers.accept ?? '').toLowerCase().includes('text/html');
}
