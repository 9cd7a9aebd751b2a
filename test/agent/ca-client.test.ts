import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Server, ServerCredentials, status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { createKeyAndCsr } from '../../src/agent/index.ts';
import { GrpcCaClient, caServiceDefinition, type CertificateRequestMessage, type CertificateResponseMessage } from '../../src/contract/index.ts';
import { isMeshidError, type ErrorCode } from '../../src/core/index.ts';
import { createAuthority, issueLeaf, type Authority } from '../../src/pki/index.ts';
import { bearer, openStream, pemBlocks, request, startHarness, workloadOf, type TestCa } from './support.ts';

const TOKEN = 'header.payload-of-a-secret-token.signature';

interface Seen {
  request: CertificateRequestMessage;
  authorization: string | undefined;
}

describe('GrpcCaClient', () => {
  let ca: Authority;
  let server: Server;
  let address: string;
  const seen: Seen[] = [];
  // What the fake CA does with the next call; each test sets it. 'real' signs with `backend`.
  let behaviour: 'ok' | 'empty' | 'hang' | 'real' | { code: status; details: string } = 'ok';
  let backend: TestCa | undefined;
  const chain = ['-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n', '-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n'];

  before(async () => {
    ca = await createAuthority('ca-client test root');
    const serving = await issueLeaf(ca, { commonName: 'meshid-ca', usage: 'server', dnsNames: ['localhost', 'meshid-ca.meshid-system.svc'], ips: ['127.0.0.1'] });
    server = new Server();
    server.addService(caServiceDefinition(), {
      CreateCertificate: (call: ServerUnaryCall<CertificateRequestMessage, CertificateResponseMessage>, callback: sendUnaryData<CertificateResponseMessage>) => {
        const authorization = call.metadata.get('authorization')[0];
        seen.push({ request: call.request, authorization: typeof authorization === 'string' ? authorization : undefined });
        if (behaviour === 'hang') return;
        if (behaviour === 'real') {
          backend?.sign(call.request.csr, (typeof authorization === 'string' ? authorization : '').replace(/^Bearer /, ''), Number(call.request.validity_duration)).then(
            (certChain) => callback(null, { cert_chain: certChain }),
            (error: Error) => callback({ code: status.UNAUTHENTICATED, details: error.message }),
          );
        } else if (behaviour === 'ok') callback(null, { cert_chain: chain });
        else if (behaviour === 'empty') callback(null, { cert_chain: [] });
        else callback({ code: behaviour.code, details: behaviour.details });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(serving.certPem), private_key: Buffer.from(serving.keyPem) }], false), (error, p) =>
        error ? reject(error) : resolve(p),
      ),
    );
    address = `127.0.0.1:${port}`;
  });

  after(() => {
    server.forceShutdown();
  });

  it('sends the CSR, the TTL and the token as Bearer metadata over TLS, and answers the chain', async () => {
    behaviour = 'ok';
    const client = new GrpcCaClient({ address, rootCertPem: ca.certPem });
    try {
      const { csrPem } = await createKeyAndCsr('spiffe://cluster.local/ns/a/sa/b');
      assert.deepEqual(await client.sign(csrPem, TOKEN, 3600), chain);
      const last = seen.at(-1);
      assert.equal(last?.authorization, `Bearer ${TOKEN}`);
      assert.equal(last?.request.csr, csrPem);
      assert.equal(String(last?.request.validity_duration), '3600');
    } finally {
      client.close();
    }
  });

  it('checks the serving certificate against serverName when it differs from the address', async () => {
    behaviour = 'ok';
    const client = new GrpcCaClient({ address, rootCertPem: ca.certPem, serverName: 'meshid-ca.meshid-system.svc' });
    try {
      assert.deepEqual(await client.sign('csr', TOKEN, 60), chain);
    } finally {
      client.close();
    }
    const wrong = new GrpcCaClient({ address, rootCertPem: ca.certPem, serverName: 'elsewhere.example', timeoutMs: 2_000 });
    try {
      await assert.rejects(wrong.sign('csr', TOKEN, 60), (e: unknown) => isMeshidError(e, 'ERR_CA_UNAVAILABLE'));
    } finally {
      wrong.close();
    }
  });

  const refusals: [string, status, ErrorCode][] = [
    ['UNAUTHENTICATED', status.UNAUTHENTICATED, 'ERR_SDS_CREDENTIAL'],
    ['PERMISSION_DENIED', status.PERMISSION_DENIED, 'ERR_CSR_IDENTITY'],
    ['INVALID_ARGUMENT', status.INVALID_ARGUMENT, 'ERR_CSR_INVALID'],
    ['UNAVAILABLE', status.UNAVAILABLE, 'ERR_CA_UNAVAILABLE'],
    ['INTERNAL', status.INTERNAL, 'ERR_CA_UNAVAILABLE'],
  ];
  for (const [name, code, expected] of refusals) {
    it(`maps ${name} to ${expected}, without the token in the message`, async () => {
      behaviour = { code, details: `fake CA says ${name}` };
      const client = new GrpcCaClient({ address, rootCertPem: ca.certPem });
      try {
        await assert.rejects(client.sign('csr', TOKEN, 60), (e: unknown) => {
          assert.ok(isMeshidError(e, expected), String(e));
          assert.match(e.message, new RegExp(`fake CA says ${name}`));
          assert.ok(!e.message.includes(TOKEN));
          return true;
        });
      } finally {
        client.close();
      }
    });
  }

  it('maps a deadline to ERR_CA_UNAVAILABLE', async () => {
    behaviour = 'hang';
    const client = new GrpcCaClient({ address, rootCertPem: ca.certPem, timeoutMs: 200 });
    try {
      const started = Date.now();
      await assert.rejects(client.sign('csr', TOKEN, 60), (e: unknown) => isMeshidError(e, 'ERR_CA_UNAVAILABLE') && /DEADLINE|[Dd]eadline/.test(e.message));
      assert.ok(Date.now() - started < 3_000);
    } finally {
      client.close();
    }
  });

  it('treats an answer without a chain as ERR_CA_UNAVAILABLE', async () => {
    behaviour = 'empty';
    const client = new GrpcCaClient({ address, rootCertPem: ca.certPem });
    try {
      await assert.rejects(client.sign('csr', TOKEN, 60), (e: unknown) => isMeshidError(e, 'ERR_CA_UNAVAILABLE'));
    } finally {
      client.close();
    }
  });

  it('maps an unreachable CA and an untrusted one to ERR_CA_UNAVAILABLE', async () => {
    const nobody = new GrpcCaClient({ address: '127.0.0.1:1', rootCertPem: ca.certPem, timeoutMs: 2_000 });
    const other = await createAuthority('not the CA root');
    const untrusted = new GrpcCaClient({ address, rootCertPem: other.certPem, timeoutMs: 2_000 });
    try {
      await assert.rejects(nobody.sign('csr', TOKEN, 60), (e: unknown) => isMeshidError(e, 'ERR_CA_UNAVAILABLE'));
      await assert.rejects(untrusted.sign('csr', TOKEN, 60), (e: unknown) => isMeshidError(e, 'ERR_CA_UNAVAILABLE'));
    } finally {
      nobody.close();
      untrusted.close();
    }
  });

  it('serves an SDS stream end to end through it', async () => {
    behaviour = 'real';
    const signer = new GrpcCaClient({ address, rootCertPem: ca.certPem });
    const h = await startHarness({ server: { signer } });
    backend = h.ca;
    try {
      const token = h.reviewer.add('token-e2e', 'e2e', 'web');
      const stream = openStream(h.client(), bearer(token));
      stream.send(request(['default']));
      const leaf = new X509Certificate(pemBlocks(workloadOf((await stream.next()).resources[0]).chainPem)[0] ?? '');
      assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/e2e/sa/web');
      assert.equal(h.ca.tokensSeen.at(-1), token);
      stream.close();
    } finally {
      await h.close();
      signer.close();
    }
  });

  it('refuses options that cannot work', () => {
    assert.throws(() => new GrpcCaClient({ address: '', rootCertPem: ca.certPem }), /address/);
    assert.throws(() => new GrpcCaClient({ address, rootCertPem: 'not pem' }), /rootCertPem/);
  });
});
