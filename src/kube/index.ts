export { loadKubeConfig, type KubeTarget } from './config.ts';
export { applyObjects, FIELD_MANAGER } from './apply.ts';
