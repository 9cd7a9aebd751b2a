import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SdsClient, type WorkloadTls } from '../agent/index.ts';
import { DEFAULT_TRUST_DOMAIN, parseSpiffeId, type WorkloadIdentity } from '../contract/index.ts';

/**
 * The demo from Istio's "Provisioning Identity through SDS": `httpbin` answers over mTLS to
 * callers whose SPIFFE ID is a `sleep`; `sleep` calls an httpbin on request and checks that
 * the peer really is one. Both get their certificates only from the agent's SDS socket, and
 * pick up renewals and new roots without restarting.
 */
export interface WorkloadOptions {
  role: 'sleep' | 'httpbin';
  namespace: string;
  socket: string;
  tokenFile: string;
  /** Default: the mesh default, cluster.local. */
  trustDomain?: string;
  /** httpbin: its mTLS port. sleep: its plain-HTTP control port (loopback only). */
  port: number;
  /** httpbin's listen address: loopback as a host process, all addresses in a pod. */
  address?: string;
}

const sanOf = (cert: { subjectaltname?: string } | undefined): string | undefined => cert?.subjectaltname?.replace(/^URI:/, '');

function spiffeRole(id: string | undefined, trustDomain: string): WorkloadIdentity | undefined {
  const parsed = id === undefined ? undefined : parseSpiffeId(id);
  return parsed?.trustDomain === trustDomain ? parsed : undefined;
}

export async function runWorkload(options: WorkloadOptions): Promise<{ port: number; close(): void }> {
  const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const { client, tls: first } = await SdsClient.first({ socket: options.socket, token: () => readFileSync(options.tokenFile, 'utf8').trim() });
  let tls: WorkloadTls = first;
  const context = (t: WorkloadTls) => ({ cert: t.certChainPem, key: t.keyPem, ca: t.rootsPem });

  if (options.role === 'httpbin') {
    const server = createHttpsServer({ ...context(tls), requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = sanOf((req.socket as TLSSocket).getPeerCertificate());
      const caller = spiffeRole(peer, trustDomain);
      if (caller?.serviceAccount !== 'sleep') {
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'only sleep may call httpbin', peer }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ me: sanOf(new X509Certificate(tls.certChainPem).toLegacyObject()), peer }));
    });
    client.onUpdate((next) => {
      tls = next;
      server.setSecureContext(context(next));
    });
    await new Promise<void>((resolve) => server.listen(options.port, options.address ?? '127.0.0.1', resolve));
    return { port: (server.address() as AddressInfo).port, close: () => { server.close(); client.close(); } };
  }

  client.onUpdate((next) => (tls = next));
  // GET /call?target=127.0.0.1:PORT&namespace=NS: call that httpbin, expecting httpbin.NS.
  const control = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const target = url.searchParams.get('target') ?? '';
    const expected = `spiffe://${trustDomain}/ns/${url.searchParams.get('namespace') ?? ''}/sa/httpbin`;
    const [host, port] = target.split(':');
    const outgoing = httpsRequest({ host, port: Number(port), path: '/', ...context(tls), servername: 'httpbin', checkServerIdentity: (_name, cert) => (sanOf(cert) === expected ? undefined : new Error(`peer is ${sanOf(cert) ?? 'nobody'}, not ${expected}`)) }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: answer.statusCode, body: Buffer.concat(chunks).toString('utf8') })));
    });
    outgoing.setTimeout(5000, () => outgoing.destroy(new Error('timeout')));
    outgoing.on('error', (error) => res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: error.message })));
    outgoing.end();
  });
  await new Promise<void>((resolve) => control.listen(options.port, '127.0.0.1', resolve));
  return { port: (control.address() as AddressInfo).port, close: () => { control.close(); client.close(); } };
}
