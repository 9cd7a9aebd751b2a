// In-memory versions of the agent's own interfaces (DESIGN.md §4: fakes of our interfaces
// only), a CA that signs real certificates, and a grpc-js SDS client over the Unix socket.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Metadata, credentials, type Client, type ClientDuplexStream, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { pino } from 'pino';
import { ManualClock, MeshidError, type Clock, type Logger } from '../../src/core/index.ts';
import { createAuthority, type Authority } from '../../src/pki/index.ts';
import {
  ManualScheduler,
  SDS_CREDENTIAL_HEADER,
  SECRET_TYPE_URL,
  SdsServer,
  StaticTrustBundle,
  decodeSecret,
  sdsClientConstructor,
  type CertificateSigner,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type SdsServerOptions,
} from '../../src/agent/index.ts';
import type { CallerReviewer, WorkloadIdentity } from '../../src/contract/index.ts';

export const START = Date.UTC(2030, 0, 1);
export const HOUR_S = 3600;

/** Tokens are opaque strings here; the reviewer knows which identity each proves. */
export class MemoryReviewer implements CallerReviewer {
  readonly tokens = new Map<string, WorkloadIdentity>();
  calls = 0;
  down = false;

  add(token: string, namespace: string, serviceAccount: string): string {
    this.tokens.set(token, { namespace, serviceAccount });
    return token;
  }

  async review(token: string): Promise<WorkloadIdentity> {
    this.calls += 1;
    if (this.down) throw new MeshidError('ERR_KUBE_UNAVAILABLE', 'test reviewer cannot reach Kubernetes');
    const identity = this.tokens.get(token);
    if (!identity) throw new MeshidError('ERR_UNAUTHENTICATED', 'test reviewer does not know this token');
    return identity;
  }
}

const EC_SIGN = { name: 'ECDSA', hash: 'SHA-256' };

/**
 * A CA that signs real leaves for the identity the token proves (as meshid's CA does), on the
 * test's clock, optionally under an intermediate. `hold()` parks every call until released.
 */
export class TestCa implements CertificateSigner {
  readonly tokens: Map<string, WorkloadIdentity>;
  calls = 0;
  down = false;
  readonly refused = new Set<string>();
  readonly csrs: x509.Pkcs10CertificateRequest[] = [];
  readonly tokensSeen: string[] = [];
  /** Makes the CA misbehave: sign another identity, or another key, than asked. */
  tamper: 'identity' | 'key' | undefined;
  /** How far before the signing time notBefore lies; meshid's CA backdates by a minute. */
  backdateMs = 0;
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;

  private constructor(
    readonly root: Authority,
    readonly issuer: Authority | undefined,
    reviewer: MemoryReviewer,
    private readonly clock: Clock,
    private readonly trustDomain: string,
  ) {
    this.tokens = reviewer.tokens;
  }

  static async create(reviewer: MemoryReviewer, clock: Clock, options: { intermediate?: boolean; trustDomain?: string } = {}): Promise<TestCa> {
    const root = await createAuthority('meshid test root');
    const issuer = options.intermediate ? await intermediateOf(root) : undefined;
    return new TestCa(root, issuer, reviewer, clock, options.trustDomain ?? 'cluster.local');
  }

  hold(): void {
    this.#held = new Promise((resolve) => (this.#release = resolve));
  }

  release(): void {
    this.#release?.();
    this.#held = undefined;
  }

  async sign(csrPem: string, token: string, ttlSeconds: number): Promise<string[]> {
    this.calls += 1;
    this.tokensSeen.push(token);
    if (this.#held) await this.#held;
    if (this.down) throw new MeshidError('ERR_CA_UNAVAILABLE', 'the test CA is down');
    const identity = this.tokens.get(token);
    if (!identity || this.refused.has(token)) throw new MeshidError('ERR_SDS_CREDENTIAL', 'the test CA refuses this token');
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    if (!(await csr.verify())) throw new MeshidError('ERR_CSR_INVALID', 'bad CSR signature');
    this.csrs.push(csr);
    const signer = this.issuer ?? this.root;
    const now = this.clock.now();
    const named = this.tamper === 'identity' ? { namespace: 'victim', serviceAccount: 'admin' } : identity;
    const publicKey = this.tamper === 'key' ? (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])).publicKey : csr.publicKey;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
      issuer: signer.cert.subject,
      notBefore: new Date(now - this.backdateMs),
      notAfter: new Date(now + ttlSeconds * 1000),
      signingAlgorithm: EC_SIGN,
      publicKey,
      signingKey: signer.keys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        // The identity comes from the token, never from the CSR.
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${this.trustDomain}/ns/${named.namespace}/sa/${named.serviceAccount}` }], true),
      ],
    });
    return [cert.toString('pem'), ...(this.issuer ? [this.issuer.certPem] : []), this.root.certPem];
  }
}

async function intermediateOf(root: Authority): Promise<Authority> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0a01',
    subject: 'CN=meshid test intermediate',
    issuer: root.cert.subject,
    notBefore: new Date(now - 86_400_000),
    notAfter: new Date(Date.UTC(2040, 0, 1)),
    signingAlgorithm: EC_SIGN,
    publicKey: keys.publicKey,
    signingKey: root.keys.privateKey,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { keys, cert, certPem: cert.toString('pem'), keyPem: '' };
}

/** Captures log lines so tests can assert what was (and was not) logged. */
export function memoryLog(level = 'debug'): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { log: pino({ level }, sink), lines };
}

export interface Harness {
  dir: string;
  socketPath: string;
  clock: ManualClock;
  scheduler: ManualScheduler;
  reviewer: MemoryReviewer;
  ca: TestCa;
  bundle: StaticTrustBundle;
  server: SdsServer;
  lines: string[];
  client(): Client;
  close(): Promise<void>;
}

/** A started agent in a fresh temp dir, with the clock and timers in the test's hands. */
export async function startHarness(
  options: { intermediate?: boolean; start?: boolean; server?: Partial<SdsServerOptions>; socketDir?: string; trustDomain?: string } = {},
): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'meshid-agent-'));
  const socketPath = join(options.socketDir ?? join(dir, 'sds'), 'agent.sock');
  const clock = new ManualClock(START);
  const scheduler = new ManualScheduler(clock);
  const reviewer = new MemoryReviewer();
  const ca = await TestCa.create(reviewer, clock, { intermediate: options.intermediate ?? false, trustDomain: options.trustDomain ?? 'cluster.local' });
  const bundle = new StaticTrustBundle([ca.root.certPem]);
  const { log, lines } = memoryLog();
  const server = new SdsServer({ socketPath, reviewer, signer: ca, trustBundle: bundle, log, clock, scheduler, random: () => 0.5, ...options.server });
  if (options.start !== false) await server.start();
  const clients: Client[] = [];
  return {
    dir,
    socketPath,
    clock,
    scheduler,
    reviewer,
    ca,
    bundle,
    server,
    lines,
    client() {
      const Ctor = sdsClientConstructor();
      const client = new Ctor(`unix://${socketPath}`, credentials.createInsecure());
      clients.push(client);
      return client;
    },
    async close() {
      for (const c of clients) c.close();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

export function binaryCredential(token: string): Metadata {
  const md = new Metadata();
  md.set(SDS_CREDENTIAL_HEADER, Buffer.from(token));
  return md;
}

type Message = DiscoveryResponse | DeltaDiscoveryResponse;

/** One client stream with a queue of what it received; every wait is bounded. */
export class Probe<Req, Res extends Message> {
  readonly received: Res[] = [];
  #next = 0;
  #status: Partial<StatusObject> | undefined;
  #waiters: (() => void)[] = [];

  constructor(readonly call: ClientDuplexStream<Req, Res>) {
    call.on('data', (message: Res) => {
      this.received.push(message);
      this.#wake();
    });
    call.on('error', (error: ServiceError) => {
      this.#status = { code: error.code, details: error.details };
      this.#wake();
    });
    call.on('status', (status: StatusObject) => {
      this.#status ??= status;
      this.#wake();
    });
  }

  send(request: Partial<Req>): void {
    this.call.write(request as Req);
  }

  /** The next message not yet taken, waiting up to `ms`. */
  async next(ms = 5_000): Promise<Res> {
    await this.#until(() => this.received.length > this.#next || this.#status !== undefined, ms, 'a response');
    const message = this.received[this.#next];
    if (!message) throw new Error(`stream ended instead: ${JSON.stringify(this.#status)}`);
    this.#next += 1;
    return message;
  }

  /** Asserts that nothing arrives within `ms`. */
  async nothingFor(ms = 300): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    if (this.received.length > this.#next) throw new Error(`unexpected response: ${JSON.stringify(this.received[this.#next])}`);
  }

  async status(ms = 5_000): Promise<Partial<StatusObject>> {
    await this.#until(() => this.#status !== undefined, ms, 'the stream to end');
    return this.#status ?? {};
  }

  get ended(): boolean {
    return this.#status !== undefined;
  }

  close(): void {
    this.call.cancel();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  async #until(check: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

type StreamMethod<Req, Res> = (metadata: Metadata) => ClientDuplexStream<Req, Res>;

export function openStream(client: Client, metadata: Metadata): Probe<DiscoveryRequest, DiscoveryResponse> {
  const method = (client as unknown as { StreamSecrets: StreamMethod<DiscoveryRequest, DiscoveryResponse> }).StreamSecrets.bind(client);
  return new Probe(method(metadata));
}

export function openDelta(client: Client, metadata: Metadata): Probe<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  const method = (client as unknown as { DeltaSecrets: StreamMethod<DeltaDiscoveryRequest, DeltaDiscoveryResponse> }).DeltaSecrets.bind(client);
  return new Probe(method(metadata));
}

export function fetchSecrets(client: Client, metadata: Metadata, request: Partial<DiscoveryRequest>): Promise<DiscoveryResponse> {
  const method = (client as unknown as {
    FetchSecrets: (req: Partial<DiscoveryRequest>, md: Metadata, cb: (error: ServiceError | null, response?: DiscoveryResponse) => void) => void;
  }).FetchSecrets.bind(client);
  return new Promise((resolve, reject) => method(request, metadata, (error, response) => (error ? reject(error) : resolve(response as DiscoveryResponse))));
}

export function request(names: string[], extra: Partial<DiscoveryRequest> = {}): Partial<DiscoveryRequest> {
  return { type_url: SECRET_TYPE_URL, resource_names: names, ...extra };
}

/** The ACK Envoy sends after applying a response. */
export function ack(response: DiscoveryResponse, names: string[]): Partial<DiscoveryRequest> {
  return request(names, { version_info: response.version_info, response_nonce: response.nonce });
}

export interface WorkloadSecret {
  name: string;
  chainPem: string;
  keyPem: string;
}

export function workloadOf(any: { type_url: string; value: Buffer } | undefined): WorkloadSecret {
  if (!any) throw new Error('no resource');
  if (any.type_url !== SECRET_TYPE_URL) throw new Error(`type_url ${any.type_url}`);
  const secret = decodeSecret(any.value);
  if (!('tls_certificate' in secret)) throw new Error(`${secret.name} is not a tls_certificate`);
  return { name: secret.name, chainPem: secret.tls_certificate.certificate_chain.inline_bytes.toString('utf8'), keyPem: secret.tls_certificate.private_key.inline_bytes.toString('utf8') };
}

export function rootsOf(any: { type_url: string; value: Buffer } | undefined): { name: string; trustedCa: string } {
  if (!any) throw new Error('no resource');
  const secret = decodeSecret(any.value);
  if (!('validation_context' in secret)) throw new Error(`${secret.name} is not a validation_context`);
  return { name: secret.name, trustedCa: secret.validation_context.trusted_ca.inline_bytes.toString('utf8') };
}

/** Splits concatenated PEM certificates. */
export function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

/** Polls until `check` holds, for at most `ms`. */
export async function eventually(check: () => boolean, ms = 5_000, what = 'a condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
