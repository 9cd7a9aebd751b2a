import { MeshidError, type Logger } from '../core/index.ts';
import type { CertificateSubscriber, IssuedCertificate } from './identity-cache.ts';
import type { WorkloadIdentity } from '../contract/index.ts';
import { SECRET_TYPE_URL, type DeltaDiscoveryRequest, type DiscoveryRequest, type StatusMessage } from './sds-protos.ts';
import { RESOURCE_NAMES, ROOT_RESOURCE, WORKLOAD_RESOURCE, isResourceName, type PackedSecret, type ResourceName } from './secrets.ts';
import { encodeDeltaDiscoveryResponse, encodeDiscoveryResponse } from './wire.ts';

/** What a stream needs from the server: secrets, change notices and nonces. */
export interface SecretSource {
  workload(identity: WorkloadIdentity, token: string): Promise<IssuedCertificate>;
  subscribeWorkload(identity: WorkloadIdentity, subscriber: CertificateSubscriber): () => void;
  /** The current ROOTCA; throws ERR_CA_UNAVAILABLE while there is no trust bundle. */
  root(): PackedSecret;
  /** The same without throwing, for pushes. */
  currentRoot(): PackedSecret | undefined;
  subscribeRoot(listener: RootListener): () => void;
  nonce(): string;
}

export interface RootListener {
  rootChanged(): void;
}

/** The transport under one stream: grpc-js's call, reduced to what the protocol logic uses. */
export interface StreamSink {
  /** An encoded response message. */
  write(response: Buffer): void;
  fail(error: unknown): void;
}

/** At most this many unknown names are quoted back, each cut short: the status travels in one HTTP/2 header. */
const QUOTED_NAMES = 3;
const QUOTED_LENGTH = 100;

/** Checks requested names against the two the agent serves. */
export function resourceNames(names: readonly string[]): ResourceName[] {
  const unknown = names.filter((n) => !isResourceName(n));
  if (unknown.length > 0) {
    // Quoting every name of a huge list made a status too large to send, and the call hung.
    const quoted = unknown.slice(0, QUOTED_NAMES).map((n) => JSON.stringify(n.length > QUOTED_LENGTH ? `${n.slice(0, QUOTED_LENGTH)}…` : n));
    const more = unknown.length > QUOTED_NAMES ? ` and ${unknown.length - QUOTED_NAMES} more` : '';
    throw new MeshidError('ERR_SDS_UNKNOWN_RESOURCE', `unknown SDS resource ${quoted.join(', ')}${more}: this agent serves only "${WORKLOAD_RESOURCE}" and "${ROOT_RESOURCE}"`);
  }
  // Canonical order and no duplicates, so version_info depends on what is asked, not how.
  return RESOURCE_NAMES.filter((n) => names.includes(n));
}

export function checkTypeUrl(typeUrl: string): void {
  if (typeUrl !== '' && typeUrl !== SECRET_TYPE_URL) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `type_url ${JSON.stringify(typeUrl)} is not ${SECRET_TYPE_URL}`);
  }
}

/** A NACK's message can quote what it rejected; keep PEM out of the log and bound its size. */
function nackDetail(detail: StatusMessage): { code: number; message: string } {
  const message = detail.message.replace(/-----BEGIN [^-]+-----[\s\S]*?(-----END [^-]+-----|$)/g, '[PEM removed]').slice(0, 500);
  return { code: detail.code, message };
}

/**
 * What SotW and delta streams share: the identity's certificate and the trust bundle,
 * subscribed to only while a resource that needs them is asked for. Per-stream state is a
 * handful of fields; the secrets themselves are shared, packed objects.
 */
abstract class SecretStream implements CertificateSubscriber, RootListener {
  #workload: IssuedCertificate | undefined;
  #unsubscribeWorkload: (() => void) | undefined;
  #unsubscribeRoot: (() => void) | undefined;
  protected closed = false;

  constructor(
    protected readonly source: SecretSource,
    readonly identity: WorkloadIdentity,
    readonly token: string,
    protected readonly sink: StreamSink,
    protected readonly log: Logger,
  ) {}

  certificateIssued(certificate: IssuedCertificate): void {
    if (this.closed || (this.#workload && this.#workload.sequence >= certificate.sequence)) return;
    this.#workload = certificate;
    this.pushChanged();
  }

  certificateLost(error: MeshidError): void {
    this.sink.fail(error);
  }

  rootChanged(): void {
    if (!this.closed) this.pushChanged();
  }

  /** Sends what changed since the last response; called on renewals and bundle changes. */
  protected abstract pushChanged(): void;

  /** Subscribes to what `names` need and waits until each can be served. */
  protected async watch(names: readonly ResourceName[]): Promise<void> {
    if (names.includes(ROOT_RESOURCE)) {
      this.source.root(); // fails now, while there is no bundle, rather than after a subscription
      this.#unsubscribeRoot ??= this.source.subscribeRoot(this);
    }
    if (names.includes(WORKLOAD_RESOURCE)) {
      // Subscribed before the first certificate arrives, so a renewal that lands meanwhile
      // is not missed; pushChanged sends nothing until the first response is out.
      this.#unsubscribeWorkload ??= this.source.subscribeWorkload(this.identity, this);
      const certificate = await this.source.workload(this.identity, this.token);
      if (!this.#workload || this.#workload.sequence < certificate.sequence) this.#workload = certificate;
    }
  }

  protected unwatch(names: readonly ResourceName[]): void {
    if (!names.includes(ROOT_RESOURCE)) {
      this.#unsubscribeRoot?.();
      this.#unsubscribeRoot = undefined;
    }
    if (!names.includes(WORKLOAD_RESOURCE)) {
      this.#unsubscribeWorkload?.();
      this.#unsubscribeWorkload = undefined;
    }
  }

  /** The resource at its current version, or undefined while it cannot be served yet. */
  protected resource(name: ResourceName): PackedSecret | undefined {
    return name === WORKLOAD_RESOURCE ? this.#workload?.secret : this.source.currentRoot();
  }

  protected nack(rejected: string | undefined, detail: StatusMessage): void {
    this.log.warn(
      { namespace: this.identity.namespace, serviceAccount: this.identity.serviceAccount, rejected, ...nackDetail(detail) },
      'the SDS client rejected a secret (NACK); it is not sent again until a new version exists',
    );
  }

  close(): void {
    this.closed = true;
    this.unwatch([]);
  }
}

/**
 * State-of-the-world xDS (StreamSecrets). Every response carries all the names the client
 * asks for, under one version_info made of their content versions, and a fresh nonce.
 */
export class SotwStream extends SecretStream {
  #names: ResourceName[] = [];
  #nonce: string | undefined;
  #version: string | undefined;

  async request(request: DiscoveryRequest): Promise<void> {
    if (this.closed) return;
    checkTypeUrl(request.type_url);
    // A request that answers an older response than the last one sent is out of date: the
    // client will answer the newer one too (xDS: do not respond to a stale nonce).
    if (request.response_nonce !== '' && request.response_nonce !== this.#nonce) {
      this.log.debug({ nonce: request.response_nonce }, 'ignoring an SDS request with a stale nonce');
      return;
    }
    if (request.error_detail) {
      this.nack(this.#version, request.error_detail);
      return;
    }
    const names = resourceNames(request.resource_names);
    if (names.length === 0) {
      throw new MeshidError('ERR_SDS_UNKNOWN_RESOURCE', `name the SDS resources: "${WORKLOAD_RESOURCE}", "${ROOT_RESOURCE}" or both (an empty list asks for all, which SDS does not serve)`);
    }
    const added = names.some((n) => !this.#names.includes(n));
    const ack = request.response_nonce !== '';
    await this.watch(names);
    this.unwatch(names);
    this.#names = names;
    // An ACK that asks for nothing new has nothing to be answered with.
    if (!ack || added) this.#send(true);
  }

  protected pushChanged(): void {
    if (this.#nonce !== undefined) this.#send(false);
  }

  #send(force: boolean): void {
    if (this.closed) return;
    const resources: PackedSecret[] = [];
    for (const name of this.#names) {
      const resource = this.resource(name);
      if (!resource) return;
      resources.push(resource);
    }
    const version = resources.map((r) => r.version).join('.');
    // The version sent last is not sent again: not after an ACK (nothing changed) and not
    // after a NACK (it would be refused again, in a loop).
    if (!force && version === this.#version) return;
    const nonce = this.source.nonce();
    this.#nonce = nonce;
    this.#version = version;
    this.sink.write(encodeDiscoveryResponse(version, resources.map((r) => r.sotwField), SECRET_TYPE_URL, nonce));
  }
}

/**
 * Incremental xDS (DeltaSecrets). Each resource has its own version; a response carries only
 * the resources whose version the client does not have yet.
 */
export class DeltaStream extends SecretStream {
  /** Subscribed names, each with the version last sent (or the one the client said it had). */
  readonly #sent = new Map<ResourceName, string | undefined>();
  #nonce: string | undefined;
  #lastResponse: Map<ResourceName, string> | undefined;
  #started = false;

  async request(request: DeltaDiscoveryRequest): Promise<void> {
    if (this.closed) return;
    checkTypeUrl(request.type_url);
    if (request.response_nonce !== '' && request.response_nonce === this.#nonce && request.error_detail) {
      this.nack([...(this.#lastResponse ?? new Map<ResourceName, string>())].map(([n, v]) => `${n}=${v}`).join(','), request.error_detail);
    }
    // Unlike SotW, a delta request with a stale nonce still counts for its subscription
    // changes: they are increments, and dropping one would lose it for good.
    for (const name of request.resource_names_unsubscribe) if (isResourceName(name)) this.#sent.delete(name);
    const subscribe = resourceNames(request.resource_names_subscribe);
    let known: Record<string, string> = {};
    if (!this.#started) {
      if (subscribe.length === 0) {
        throw new MeshidError('ERR_SDS_UNKNOWN_RESOURCE', `subscribe to "${WORKLOAD_RESOURCE}", "${ROOT_RESOURCE}" or both (SDS has no wildcard subscription)`);
      }
      known = request.initial_resource_versions;
      this.#started = true;
    }
    const added = subscribe.filter((n) => !this.#sent.has(n));
    const names = RESOURCE_NAMES.filter((n) => this.#sent.has(n) || added.includes(n));
    await this.watch(names);
    this.unwatch(names);
    if (added.length === 0) return;
    // What the client already holds (it reconnected) is not sent again.
    for (const name of added) this.#sent.set(name, known[name]);
    this.#send(added);
  }

  protected pushChanged(): void {
    // Names join #sent only once their first answer is due, so this sends nothing early.
    if (this.#started) this.#send([...this.#sent.keys()]);
  }

  #send(names: readonly ResourceName[]): void {
    if (this.closed) return;
    const changed: PackedSecret[] = [];
    for (const name of names) {
      const resource = this.resource(name);
      if (resource && this.#sent.has(name) && this.#sent.get(name) !== resource.version) changed.push(resource);
    }
    if (changed.length === 0) return;
    const nonce = this.source.nonce();
    this.#nonce = nonce;
    this.#lastResponse = new Map(changed.map((r) => [r.name, r.version]));
    for (const r of changed) this.#sent.set(r.name, r.version);
    this.sink.write(encodeDeltaDiscoveryResponse(changed.map((r) => r.deltaField), SECRET_TYPE_URL, nonce));
  }
}
