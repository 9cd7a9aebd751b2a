// `npm run build`, after tsc: bundles the CLI with esbuild into dist/bin/, so `bin/meshid`
// loads a few large files instead of hundreds of small ones (resolving and reading each file
// was most of the CLI's start-up). Each `await import()` of a command becomes a chunk of its
// own, loaded only when that command runs. docs/adr/0004-bundled-cli.md says why.
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
const src = join(root, 'src');
// Two levels below the repository, like dist/<area>/: the modules that find package.json,
// proto/, peers/ and dist/web with `new URL('../../…', import.meta.url)` find them from here too.
const outdir = join(root, 'dist', 'bin');

/**
 * Packages read files of their own at run time (.proto files, package.json by path) or must be
 * one instance shared with a package that does: bundled, they would look beside the bundle.
 */
const EXTERNAL = [
  // grpc-js-xds registers its resolvers with the grpc-js it finds in node_modules; a second,
  // bundled grpc-js would never see them.
  '@grpc/grpc-js',
  // The agent reads Envoy's .proto files out of this package's deps/ folder.
  '@grpc/grpc-js-xds',
  // Both parse .proto files at run time, and protobufjs loads optional modules through an eval'd require.
  '@grpc/proto-loader',
  'protobufjs',
];

/**
 * Our own modules only declare things at top level (the `import 'reflect-metadata'` lines sit in
 * modules whose exports are used), so a module none of whose exports a command uses is left out.
 */
const ownModulesArePure: Plugin = {
  name: 'own-modules-are-pure',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const path = resolve(dirname(args.importer), args.path);
      return path.startsWith(src + '/') ? { path, sideEffects: false } : undefined;
    });
  },
};

/** Where each name an area's index.ts re-exports is defined: `export { a, type B } from './file.ts'`. */
const barrels = new Map<string, Map<string, string>>();
async function barrel(file: string): Promise<Map<string, string>> {
  let names = barrels.get(file);
  if (!names) {
    names = new Map();
    for (const [, list = '', from = ''] of (await readFile(file, 'utf8')).matchAll(/^export (?:type )?\{([^}]*)\} from '(\.\/[^']+)';/gm)) {
      for (const name of specifiers(list)) names.set(exportedName(name), from);
    }
    barrels.set(file, names);
  }
  return names;
}
const specifiers = (list: string): string[] => list.split(',').map((s) => s.trim()).filter(Boolean);
const exportedName = (specifier: string): string => specifier.replace(/^type\s+/, '').split(/\s+as\s+/).pop() ?? '';
const importedName = (specifier: string): string => specifier.replace(/^type\s+/, '').split(/\s+as\s+/)[0] ?? '';

/**
 * An area is imported through its index.ts, which re-exports the whole area. esbuild splits the
 * bundle by the files each entry reaches through import statements, unused or not, so one
 * `import { MeshidError } from '../core/index.ts'` in the CLI's entry would put pino and ora
 * (core's logger and progress display) in the chunk every command loads. Importing each name
 * from the file that defines it keeps each chunk to what is used. A statement naming anything
 * the index does not re-export from a file stays as it was.
 */
const importsFromDefiningFiles: Plugin = {
  name: 'imports-from-defining-files',
  setup(b) {
    b.onLoad({ filter: /\/src\/.+\.ts$/ }, async (args) => {
      const code = await readFile(args.path, 'utf8');
      let out = code;
      for (const [statement, list = '', area = ''] of code.matchAll(/^import \{([^}]*)\} from '\.\.\/([a-z-]+)\/index\.ts';$/gm)) {
        const names = await barrel(resolve(dirname(args.path), '..', area, 'index.ts'));
        const byFile = new Map<string, string[]>();
        for (const specifier of specifiers(list)) {
          const from = names.get(importedName(specifier));
          if (!from) {
            byFile.clear();
            break;
          }
          byFile.set(from, [...(byFile.get(from) ?? []), specifier]);
        }
        if (byFile.size === 0) continue;
        out = out.replace(statement, [...byFile].map(([from, used]) => `import { ${used.join(', ')} } from '../${area}/${from.slice(2)}';`).join(' '));
      }
      return { contents: out, loader: 'ts' };
    });
  },
};

await rm(outdir, { recursive: true, force: true });
await build({
  // The CA's signing threads load their own entry, beside the chunk that starts them (src/ca/signing-pool.ts).
  entryPoints: { meshid: join(src, 'cli', 'index.ts'), 'signing-worker': join(src, 'ca', 'signing-worker.ts') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  plugins: [ownModulesArePure, importsFromDefiningFiles],
  // Bundled CommonJS packages call require() for Node's built-ins, which ESM does not define.
  banner: { js: "import { createRequire as __meshidCreateRequire } from 'node:module'; const require = __meshidCreateRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
