// The floor under meshid's Kubernetes proxy: node:https in, the same keep-alive TLS agent out
// (src/kube/transport.ts) with the Impersonate-* headers meshid would add, and the answer piped
// back. Nothing else: no authentication, header filtering, deadline, metrics or routing. Run as
// its own process by bench/proxy.bench.ts, which charges its CPU per request like meshid's, so
// the table shows what any Node.js proxy pays on this path before meshid does anything.
// Usage: node --import tsx node-floor-proxy.ts <port> <cert.pem> <key.pem> <kubeconfig> <user> <group>
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { request } from 'node:https';
import { impersonationHeaders, kubeTlsAgent, kubeTransport, loadKubeConfig } from '../../src/kube/index.ts';

const [port, certFile, keyFile, kubeconfig, user, group] = process.argv.slice(2);
if (!port || !certFile || !keyFile || !kubeconfig || !user || !group) throw new Error('usage: node-floor-proxy.ts <port> <cert.pem> <key.pem> <kubeconfig> <user> <group>');
const transport = await kubeTransport(loadKubeConfig({ kubeconfig }));
const server = transport.server;
if (!server) throw new Error(`${kubeconfig} names no server`);
const agent = kubeTlsAgent(transport.tls, { maxSockets: 256 });
const impersonation = impersonationHeaders({ name: user, groups: [group] });
const prefix = '/api/k8s';

createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
  const headers = { accept: req.headers.accept ?? '*/*', ...(transport.authorization ? { authorization: transport.authorization } : {}), ...impersonation };
  const out = request({ hostname: server.hostname, port: server.port, method: req.method, path: (req.url ?? '').slice(prefix.length), agent, headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  out.on('error', () => res.destroy());
  req.pipe(out);
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
process.once('SIGTERM', () => process.exit(0));
