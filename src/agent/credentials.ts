import type { Metadata } from '@grpc/grpc-js';
import { MeshidError } from '../core/index.ts';

/** Istio's header: binary metadata that carries the raw JWT bytes. */
export const SDS_CREDENTIAL_HEADER = 'istio_sds_credentials_header-bin';

// A projected service-account token is about a kilobyte; anything far larger is not one,
// and must not reach the reviewer (or the CA) at all.
const MAX_TOKEN_BYTES = 16 * 1024;

/**
 * The service-account JWT an SDS caller presents, from Istio's binary header or from
 * `authorization: Bearer`. Throws ERR_SDS_CREDENTIAL when there is none; the message never
 * repeats the value.
 */
export function callerToken(metadata: Metadata): string {
  const binary = metadata.get(SDS_CREDENTIAL_HEADER)[0];
  if (binary !== undefined) {
    const token = (Buffer.isBuffer(binary) ? binary.toString('utf8') : binary).trim();
    return checked(token, SDS_CREDENTIAL_HEADER);
  }
  const authorization = metadata.get('authorization')[0];
  if (authorization !== undefined) {
    const value = Buffer.isBuffer(authorization) ? authorization.toString('utf8') : authorization;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
    if (!match?.[1]) throw new MeshidError('ERR_SDS_CREDENTIAL', 'the authorization metadata is not "Bearer <service-account token>"');
    return checked(match[1], 'authorization');
  }
  throw new MeshidError('ERR_SDS_CREDENTIAL', `no service-account token: send it in gRPC metadata ${SDS_CREDENTIAL_HEADER} or authorization: Bearer`, {
    hint: "Point the SDS client's call credentials at the pod's projected token (audience istio-ca).",
  });
}

function checked(token: string, header: string): string {
  if (token.length === 0) throw new MeshidError('ERR_SDS_CREDENTIAL', `the ${header} metadata is empty`);
  if (token.length > MAX_TOKEN_BYTES) throw new MeshidError('ERR_SDS_CREDENTIAL', `the ${header} metadata is too large to be a service-account token`);
  return token;
}
