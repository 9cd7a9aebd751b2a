import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The dashboard is built into the npm package (dist/web) and served by the server at `/`.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [react()],
  build: {
    outDir: '../dist/web',
    emptyOutDir: true,
    // The server's Content-Security-Policy allows no inline code; Vite must not inline assets as data: scripts.
    assetsInlineLimit: 0,
  },
});
