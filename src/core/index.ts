export { MeshidError, isMeshidError, type ErrorCode, type MeshidErrorOptions } from './errors.ts';
export { errorMeaning, errorCodeOfProblem, ERROR_CODES, GrpcCode, SERVER_FAULT, type ErrorMeaning, type GraphqlCode } from './error-table.ts';
export { systemClock, ManualClock, type Clock } from './clock.ts';
export { createLogger, type Logger } from './log.ts';
export { terminalProgress, silentProgress, bar, type Progress } from './progress.ts';
export { TtlCache } from './ttl-cache.ts';
export { checkedConfig, environmentLayer, layerAt, mergeConfig, type ConfigLayer, type EnvSetting, type SchemaResult } from './config-layers.ts';
export { PRODUCT, MESHID_VERSION } from './version.ts';
