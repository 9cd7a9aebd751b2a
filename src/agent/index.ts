export { SdsServer, type SdsServerOptions, type SdsServerStats } from './sds-server.ts';
// The CA's client lives in the contract, below both ends; re-exported for the agent's users.
export { GrpcCaClient, type CertificateSigner, type GrpcCaClientOptions } from '../contract/index.ts';
export { StaticTrustBundle, type TrustBundle } from './trust-bundle.ts';
export { SDS_CREDENTIAL_HEADER, callerToken } from './credentials.ts';
export { createKeyAndCsr, type KeyAndCsr, type KeyType } from './csr.ts';
export { ManualScheduler, timerScheduler, type Scheduler } from './scheduler.ts';
export { DEFAULT_RETRY, renewalDelay, retryDelay, type RetryPolicy } from './renewal.ts';
export { ROOT_RESOURCE, WORKLOAD_RESOURCE, type ResourceName } from './secrets.ts';
export {
  SDS_SERVICE_NAME,
  SECRET_TYPE_URL,
  decodeSecret,
  sdsClientConstructor,
  sdsServiceDefinition,
  type AnyMessage,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type SecretMessage,
} from './sds-protos.ts';
export { startAgent, type AgentSettings, type RunningAgent } from './start.ts';
export { SdsClient, type SdsClientOptions, type WorkloadTls } from './sds-client.ts';
export { AGENT_ENVIRONMENT, AgentConfigSchema, parseAgentConfig, type AgentConfig, type AgentConfigInput } from './config.ts';
