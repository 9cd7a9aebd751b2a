// The floor under meshid's CA: the same grpc-js server, service definition, message limit and
// TLS as src/ca/grpc-server.ts, answering every CreateCertificate with a fixed chain and no
// work at all (no token review, no CSR check, no signing, no log line). Run as its own process
// by bench/ca.bench.ts, which charges its CPU per call like the real CA's.
// Usage: node --import tsx grpc-floor-server.ts <port> <cert.pem> <key.pem>
import { readFileSync } from 'node:fs';
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { caServiceDefinition, type CertificateRequestMessage, type CertificateResponseMessage } from '../../src/contract/index.ts';

const [port, certFile, keyFile] = process.argv.slice(2);
if (!port || !certFile || !keyFile) throw new Error('usage: grpc-floor-server.ts <port> <cert.pem> <key.pem>');
const cert = readFileSync(certFile);
const chain = [cert.toString('utf8'), cert.toString('utf8')];
const server = new Server({ 'grpc.max_receive_message_length': 64 * 1024, 'grpc.enable_channelz': 0 });
server.addService(caServiceDefinition(), {
  CreateCertificate: (_call: ServerUnaryCall<CertificateRequestMessage, CertificateResponseMessage>, callback: sendUnaryData<CertificateResponseMessage>) => callback(null, { cert_chain: chain }),
});
const credentials = ServerCredentials.createSsl(null, [{ cert_chain: cert, private_key: readFileSync(keyFile) }], false);
server.bindAsync(`127.0.0.1:${port}`, credentials, (error) => {
  if (error) throw error;
  process.stdout.write('ready\n');
});
// The bench ends it with SIGTERM; exiting on it (rather than being killed) lets --cpu-prof write.
process.once('SIGTERM', () => process.exit(0));
