import { defineConfig } from 'vite'

// Served by the API under /dashboard/. Hashed names (Vite's default `assets/[name]-[hash]`) let the
// API cache them for a year; only index.html is revalidated.
export default defineConfig({
  base: '/dashboard/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The CSP forbids inline scripts and data: scripts: every module must be a file.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
  server: {
    // `pnpm --filter @intellisite/dashboard dev` against an API on :3000.
    proxy: Object.fromEntries(
      ['/users', '/auth', '/detections', '/stats', '/alerts', '/rules', '/webhooks'].map((path) => [
        path,
        'http://127.0.0.1:3000',
      ]),
    ),
  },
})
