// DiscoveryResponse and DeltaDiscoveryResponse in protobuf's wire format, assembled from
// pieces encoded once. A push to ten thousand streams then costs one copy of the shared
// resource bytes per stream, instead of a protobufjs encode of the whole message per stream.
// Field numbers are those of envoy/service/discovery/v3/discovery.proto.

function varint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** A length-delimited field (wire type 2): key, length, bytes. */
export function bytesField(field: number, value: Uint8Array): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(value.length), value]);
}

export function stringField(field: number, value: string): Buffer {
  return value === '' ? Buffer.alloc(0) : bytesField(field, Buffer.from(value, 'utf8'));
}

/** google.protobuf.Any { type_url = 1; value = 2 }. */
export function encodeAny(typeUrl: string, value: Uint8Array): Buffer {
  return Buffer.concat([stringField(1, typeUrl), bytesField(2, value)]);
}

/** DiscoveryResponse.resources (2): one Any, ready to be placed in any response. */
export function sotwResourceField(any: Buffer): Buffer {
  return bytesField(2, any);
}

/** DeltaDiscoveryResponse.resources (2): Resource { version = 1; resource = 2; name = 3 }. */
export function deltaResourceField(name: string, version: string, any: Buffer): Buffer {
  return bytesField(2, Buffer.concat([stringField(1, version), bytesField(2, any), stringField(3, name)]));
}

/** DiscoveryResponse { version_info = 1; resources = 2; type_url = 4; nonce = 5 }. */
export function encodeDiscoveryResponse(versionInfo: string, resourceFields: Buffer[], typeUrl: string, nonce: string): Buffer {
  return Buffer.concat([stringField(1, versionInfo), ...resourceFields, stringField(4, typeUrl), stringField(5, nonce)]);
}

/** DeltaDiscoveryResponse { system_version_info = 1; resources = 2; type_url = 4; nonce = 5 }. */
export function encodeDeltaDiscoveryResponse(resourceFields: Buffer[], typeUrl: string, nonce: string): Buffer {
  return Buffer.concat([...resourceFields, stringField(4, typeUrl), stringField(5, nonce)]);
}
