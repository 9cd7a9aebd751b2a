export {
  DOCKER_CONFIG_KEY,
  DOCKER_CONFIG_TYPE,
  checkEntryName,
  checkServer,
  dockerConfigFor,
  parseDockerConfig,
  passwordFromStdin,
  serializeDockerConfig,
  summarize,
  type DockerAuth,
  type DockerConfig,
  type RegistryServer,
} from './dockerconfig.ts';
export { RegistryStore, REGISTRY_NAMESPACE, REGISTRY_KEY, UPDATED_AT_ANNOTATION, type RegistryEntry, type StoredEntry } from './store.ts';
export { addRegistryEntry, removeRegistryEntry, type RegistryChangeDeps } from './changes.ts';
export {
  reconcileRegistries,
  reconcileChanges,
  desiredPullSecrets,
  managedPullSecrets,
  COPY_LABEL,
  SOURCE_ANNOTATION,
  PULL_SECRETS_ANNOTATION,
  type CopyAction,
  type CopyResult,
  type ReconcileOptions,
  type ReconcileResult,
  type ServiceAccountResult,
} from './reconcile.ts';
