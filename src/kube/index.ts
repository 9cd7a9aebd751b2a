export { loadKubeConfig, type KubeTarget } from './config.ts';
export { applyObjects, FIELD_MANAGER } from './apply.ts';
export { kubeStatus, isKubeUnavailable } from './errors.ts';
export { SecretClient, decodeSecret, PART_OF_LABEL, KEY_LABEL, type SecretSpec, type SecretStrings } from './secrets.ts';
export { watchSecrets, type SecretWatch, type SecretWatchHandlers, type SecretSelector } from './informer.ts';
export { serviceAccountKubeconfig } from './token-request.ts';
export {
  readExtension,
  writeExtension,
  kubeconfigFile,
  MeshidExtensionSchema,
  EXTENSION_NAME,
  type MeshidExtension,
} from './kubeconfig-extension.ts';
