// The import-direction rule of DESIGN.md §5, made a check: an area under src/ may import
// only areas of a lower rank, and only through their index.ts (their public surface).
const ranks = {
  core: 0,
  kube: 1,
  // What both ends of a wire share (SPIFFE identity, the CA's proto and client, the root
  // ConfigMap's names, ports): below the CA and the agent alike, as Istio's security/pkg.
  contract: 1,
  pki: 1,
  plugin: 1,
  cluster: 2,
  tokens: 2,
  ca: 2,
  registry: 2,
  install: 2,
  authn: 3,
  // The image builder uses the cluster's cache folder; the playground builds the image.
  image: 3,
  agent: 3,
  recovery: 4,
  // The dashboard API plans recoveries, so the server ranks above recovery.
  server: 5,
  playground: 6,
  cli: 7,
};

const areas = Object.keys(ranks);
const upward = areas.flatMap((from) =>
  areas
    .filter((to) => to !== from && ranks[to] >= ranks[from])
    .map((to) => ({
      name: `no-${from}-to-${to}`,
      comment: `${from} (rank ${ranks[from]}) may not import ${to} (rank ${ranks[to]})`,
      severity: 'error',
      from: { path: `^src/${from}/` },
      to: { path: `^src/${to}/` },
    })),
);

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-agent-to-ca',
      comment: 'the node agent never imports the CA server; what they share lives in src/contract (DESIGN.md §5, as Istio)',
      severity: 'error',
      from: { path: '^src/agent/' },
      to: { path: '^src/ca/' },
    },
    {
      name: 'no-internals-across-areas',
      comment: 'another area is reached only through its index.ts',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/([^/]+)/.+', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'no-unknown-area',
      comment: 'every folder under src/ must have a rank in .dependency-cruiser.cjs',
      severity: 'error',
      from: { path: `^src/(?!(${areas.join('|')})/)` },
      to: {},
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
