import { defineConfig } from "vite";

// Hashed file names under assets/ (cached for ever by CloudFront and the browser); index.html
// is the only file that changes name-less, and is never cached (deploy-frontend sets both).
export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    // The page may load nothing inline: the CSP allows only 'self'.
    assetsInlineLimit: 0,
  },
  test: {
    environment: "node",
    include: ["tests/**/*.test.ts"],
  },
});
