import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadPackageDefinition, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/** The resource type every SDS request and response names. */
export const SECRET_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
export const SDS_SERVICE_NAME = 'envoy.service.secret.v3.SecretDiscoveryService';

const SDS_PROTO = 'envoy/service/secret/v3/sds.proto';
const SECRET_PROTO = 'envoy/extensions/transport_sockets/tls/v3/secret.proto';
const SECRET_MESSAGE = 'envoy.extensions.transport_sockets.tls.v3.Secret';

/**
 * Envoy's protos as @grpc/grpc-js-xds ships them: one tree per upstream repository, each
 * an include root, the way protoc would be called on them.
 */
function includeDirs(): string[] {
  const root = join(dirname(createRequire(import.meta.url).resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(root, d));
}

/** google.protobuf.Any as proto-loader hands it over and takes it back. */
export interface AnyMessage {
  type_url: string;
  value: Buffer;
}

/** google.rpc.Status, the NACK's error_detail. */
export interface StatusMessage {
  code: number;
  message: string;
}

/** Wire shapes with the loader options below: keepCase, defaults filled, repeated as arrays. */
export interface DiscoveryRequest {
  version_info: string;
  node: { id?: string; cluster?: string } | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail: StatusMessage | null;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: AnyMessage[];
  type_url: string;
  nonce: string;
}

export interface DeltaDiscoveryRequest {
  node: { id?: string; cluster?: string } | null;
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail: StatusMessage | null;
}

export interface DeltaResource {
  name: string;
  version: string;
  resource: AnyMessage;
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: DeltaResource[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
}

/** envoy.config.core.v3.DataSource, only the variant meshid sends. */
export interface InlineBytes {
  inline_bytes: Buffer;
}

/** envoy.extensions.transport_sockets.tls.v3.Secret, only the two variants meshid sends. */
export type SecretMessage =
  | { name: string; tls_certificate: { certificate_chain: InlineBytes; private_key: InlineBytes } }
  | { name: string; validation_context: { trusted_ca: InlineBytes } };

interface SdsPackage {
  envoy: { service: { secret: { v3: { SecretDiscoveryService: ServiceClientConstructor } } } };
}

let service: ServiceClientConstructor | undefined;
let secretType: protobuf.Type | undefined;

/**
 * Loaded once, lazily: Envoy's proto tree takes about a tenth of a second to parse, which
 * `meshid --help` and every command that is not the agent should not pay.
 */
function sdsService(): ServiceClientConstructor {
  service ??= (
    loadPackageDefinition(
      loadSync(SDS_PROTO, { keepCase: true, longs: String, enums: String, defaults: true, arrays: true, objects: true, oneofs: true, includeDirs: includeDirs() }),
    ) as unknown as SdsPackage
  ).envoy.service.secret.v3.SecretDiscoveryService;
  return service;
}

/**
 * The service as the server registers it: a response that is already a Buffer (the streams
 * assemble theirs from pre-encoded pieces, see wire.ts) goes out as it is.
 */
export function sdsServiceDefinition(): ServiceDefinition {
  const methods = sdsService().service;
  return Object.fromEntries(
    Object.entries(methods).map(([name, method]) => [name, { ...method, responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : method.responseSerialize(value)) }]),
  );
}

/** A client for the agent's own socket: for tests, benchmarks and `meshid agent` diagnostics. */
export function sdsClientConstructor(): ServiceClientConstructor {
  return sdsService();
}

/**
 * proto-loader gives grpc-js (de)serializers only for service messages; a Secret travels
 * inside google.protobuf.Any as bytes, so it is encoded here with protobufjs, the library
 * proto-loader itself is built on.
 */
function secretMessageType(): protobuf.Type {
  if (!secretType) {
    const dirs = includeDirs();
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => dirs.map((d) => join(d, target)).find((p) => existsSync(p)) ?? target;
    root.loadSync(SECRET_PROTO, { keepCase: true });
    secretType = root.resolveAll().lookupType(SECRET_MESSAGE);
  }
  return secretType;
}

export function encodeSecret(secret: SecretMessage): Buffer {
  const type = secretMessageType();
  const bytes = type.encode(type.fromObject(secret)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The inverse, for tests and diagnostics; never log what it returns. */
export function decodeSecret(bytes: Uint8Array): SecretMessage {
  const type = secretMessageType();
  return type.toObject(type.decode(bytes), { defaults: false, oneofs: false }) as SecretMessage;
}
