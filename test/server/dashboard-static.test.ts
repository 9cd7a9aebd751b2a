import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fastify, type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { MESHID_VERSION, MeshidError, createLogger } from '../../src/core/index.ts';
import { DASHBOARD_ROOT, registerDashboard } from '../../src/server/dashboard-static.ts';
import { KUMA_API_PREVIEW } from '../../src/server/kuma-index.ts';
import { sendProblem } from '../../src/server/problem.ts';

const INDEX = '<!doctype html><title>meshid</title><script type="module" src="/assets/index-abc123.js"></script>';
const log = createLogger('dashboard-test', 'silent');

/** An app with the server's error and not-found handling, plus one route of its own under /api. */
async function appServing(root: string): Promise<FastifyInstance> {
  const app = fastify();
  app.setErrorHandler((error, request, reply) => sendProblem(reply, request, error, log));
  app.setNotFoundHandler((request, reply) => sendProblem(reply, request, new MeshidError('ERR_NOT_FOUND', `no route ${request.method} ${request.url}`), log));
  app.get('/api/whoami', async () => ({ name: 'alice' }));
  registerDashboard(app, root);
  await app.ready();
  return app;
}

function problemCode(res: LightMyRequestResponse): string {
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  return (JSON.parse(res.body) as { code: string }).code;
}

const html = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };

describe('dashboard static files', () => {
  let dir: string;
  let app: FastifyInstance;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshid-web-'));
    const root = join(dir, 'web');
    await mkdir(join(root, 'assets'), { recursive: true });
    await writeFile(join(root, 'index.html'), INDEX);
    await writeFile(join(root, 'assets', 'index-abc123.js'), 'console.log("dashboard")');
    await writeFile(join(root, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    await writeFile(join(root, '.env'), 'SECRET=in-root');
    await writeFile(join(dir, 'secret.txt'), 'SECRET=beside-root');
    app = await appServing(root);
  });

  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves index.html at / to a browser without caching, under a CSP that allows no inline code', async () => {
    const res = await app.inject({ method: 'GET', url: '/', headers: html });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.equal(res.body, INDEX);
    assert.equal(res.headers['cache-control'], 'no-store');
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['vary'], 'Accept');
    const head = await app.inject({ method: 'HEAD', url: '/', headers: html });
    assert.equal(head.statusCode, 200);
    assert.match(String(head.headers['content-type']), /^text\/html/);
  });

  it("answers Kuma's index at / to a client that does not ask for HTML, as kumactl asks", async () => {
    for (const accept of [undefined, '*/*', 'application/json']) {
      const res = await app.inject({ method: 'GET', url: '/', headers: accept === undefined ? {} : { accept } });
      assert.equal(res.statusCode, 200, accept);
      assert.match(String(res.headers['content-type']), /^application\/json/, accept);
      assert.equal(res.headers['vary'], 'Accept', accept);
      assert.equal(res.headers['cache-control'], 'no-store', accept);
      const index = res.json<Record<string, unknown>>();
      assert.deepEqual(Object.keys(index).sort(), ['clusterId', 'gui', 'hostname', 'instanceId', 'product', 'version']);
      assert.equal(index['product'], 'meshid');
      // kumactl waives its checks for a version containing "preview".
      assert.equal(index['version'], `${MESHID_VERSION}+${KUMA_API_PREVIEW}`);
      assert.match(String(index['version']), /preview/);
      assert.equal(index['gui'], '/');
      assert.equal(typeof index['hostname'], 'string');
      assert.ok(String(index['instanceId']).startsWith(String(index['hostname'])));
    }
  });

  it('caches hashed assets for a year and other files briefly', async () => {
    const js = await app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    const icon = await app.inject({ method: 'GET', url: '/favicon.svg' });
    assert.equal(icon.statusCode, 200);
    assert.equal(icon.headers['cache-control'], 'public, max-age=300');
  });

  it('answers index.html for a dashboard page a browser navigates to, with a query', async () => {
    for (const url of ['/user-tokens', '/workload-identity?namespace=dev', '/recovery/']) {
      const res = await app.inject({ method: 'GET', url, headers: html });
      assert.equal(res.statusCode, 200, url);
      assert.equal(res.body, INDEX, url);
      assert.equal(res.headers['cache-control'], 'no-store', url);
    }
  });

  it('is a 404 problem, not HTML, for a missing file that is not a page navigation', async () => {
    const res = await app.inject({ method: 'GET', url: '/assets/index-gone.js', headers: { accept: '*/*' } });
    assert.equal(res.statusCode, 404);
    assert.equal(problemCode(res), 'not-found');
  });

  it("leaves the server's prefixes to the server: no fallback there, even for a browser", async () => {
    for (const url of ['/api/nope', '/api', '/tokens/user', '/.well-known/openid-configuration', '/metrics', '/healthz', '/readyz']) {
      const res = await app.inject({ method: 'GET', url, headers: html });
      assert.equal(res.statusCode, 404, url);
      assert.equal(problemCode(res), 'not-found', url);
    }
    const own = await app.inject({ method: 'GET', url: '/api/whoami', headers: html });
    assert.deepEqual(own.json(), { name: 'alice' });
  });

  it('never serves a file outside the root, or a dotfile inside it', async () => {
    for (const url of ['/../secret.txt', '/%2e%2e/secret.txt', '/%2e%2e%2fsecret.txt', '/assets/..%2f..%2fsecret.txt', '/.env', '/%2eenv', '/%00']) {
      const res = await app.inject({ method: 'GET', url, headers: { accept: '*/*' } });
      assert.equal(res.statusCode, 404, url);
      assert.doesNotMatch(res.body, /SECRET=/, url);
      const page = await app.inject({ method: 'GET', url, headers: html });
      assert.doesNotMatch(page.body, /SECRET=/, url);
    }
    // A broken escape does not even reach the route: fastify refuses the URL.
    const broken = await app.inject({ method: 'GET', url: '/%E0%A4%A', headers: html });
    assert.equal(broken.statusCode, 400);
  });

  it('other methods are not routes of the dashboard', async () => {
    const res = await app.inject({ method: 'POST', url: '/', payload: {} });
    assert.equal(res.statusCode, 404);
    assert.equal(problemCode(res), 'not-found');
  });
});

describe('dashboard without a build', () => {
  let dir: string;
  let app: FastifyInstance;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshid-web-empty-'));
    app = await appServing(join(dir, 'missing'));
  });

  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 problem+json that says to run npm run build', async () => {
    for (const url of ['/', '/user-tokens']) {
      const res = await app.inject({ method: 'GET', url, headers: html });
      assert.equal(res.statusCode, 503, url);
      assert.equal(problemCode(res), 'dashboard-not-built');
      assert.match((JSON.parse(res.body) as { detail: string }).detail, /npm run build/);
    }
  });

  it("still answers Kuma's index at / to kumactl", async () => {
    const res = await app.inject({ method: 'GET', url: '/' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json<{ product: string }>().product, 'meshid');
  });

  it("still answers the server's own 404 under its prefixes", async () => {
    const res = await app.inject({ method: 'GET', url: '/api/nope', headers: html });
    assert.equal(res.statusCode, 404);
    assert.equal(problemCode(res), 'not-found');
  });
});

describe('dashboard root', () => {
  it('is dist/web of the package, from src/ and dist/ alike', () => {
    assert.match(DASHBOARD_ROOT, /[/\\]dist[/\\]web[/\\]$/);
    assert.doesNotMatch(DASHBOARD_ROOT, /[/\\]src[/\\]/);
  });
});
