// A signing thread of SigningPool: the CA material arrives before the first request that needs
// it (and again after a rotation, in order with the requests); each request is checked and
// signed exactly as inlineSigning does, and a refusal goes back as its code and message.
import { parentPort } from 'node:worker_threads';
import { MeshidError, isMeshidError } from '../core/index.ts';
import type { CaMaterial } from './authority.ts';
import { checkCsr } from './csr.ts';
import { LeafSigner } from './signer.ts';
import type { SigningReply, SigningRequest } from './signing-pool.ts';

const port = parentPort;
if (!port) throw new Error('signing-worker.ts runs only as a worker thread of SigningPool');
let signer: LeafSigner | MeshidError = new MeshidError('ERR_CA_UNAVAILABLE', 'the signing thread has no CA key yet');

port.on('message', (message: SigningRequest) => {
  if (message.kind === 'material') {
    signer = load(message.material);
    return;
  }
  let reply: SigningReply;
  try {
    if (signer instanceof MeshidError) throw signer;
    const { publicKey } = checkCsr(message.csr, message.uri);
    reply = { id: message.id, leaf: signer.issue({ publicKey, uri: message.uri, ttlSeconds: message.ttlSeconds }) };
  } catch (error) {
    // A MeshidError keeps its code; anything else is a fault, which the pool reports as one.
    reply = { id: message.id, error: isMeshidError(error) ? { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) } : { message: String(error) } };
  }
  port.postMessage(reply);
});

function load(material: CaMaterial): LeafSigner | MeshidError {
  try {
    return new LeafSigner(material);
  } catch (error) {
    return isMeshidError(error) ? error : new MeshidError('ERR_CA_KEY_INVALID', String(error));
  }
}
