export { startPlayground, stopPlayground, DEFAULT_PLAYGROUND_DIR, type Playground, type PlaygroundOptions } from './playground.ts';
export { readEnv, envFile, PlaygroundEnvSchema, type PlaygroundEnv } from './env.ts';
export { runWorkload, type WorkloadOptions } from './workload.ts';
export { DEMO_NAMESPACES } from './mesh.ts';
export { playgroundServerFiles } from './meshid-server.ts';
export { startNodePlayground, type NodePlayground, type BootTimings } from './node-playground.ts';
