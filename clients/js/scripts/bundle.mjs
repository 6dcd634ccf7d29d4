// Build the one-file ESM browser bundle the dashboard and the examples load, from src/:
// bridge/dashboard/eventbridge-client.js (served by the bridge at /dashboard/eventbridge-client.js).
//
//   node scripts/bundle.mjs           rewrite the bundle
//   node scripts/bundle.mjs --check   exit 1 if the committed bundle is stale (what the tests run)
//
// Not minified, so that it reads and diffs like source. socket.io-client is not inside: the
// Socket.IO transport takes `io` as an option or from the global of socket.io-client's own
// browser bundle.

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const OUTPUT = join(root, "..", "..", "bridge", "dashboard", "eventbridge-client.js");
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

const result = await build({
  entryPoints: [join(root, "src", "index.ts")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  write: false,
  legalComments: "none",
  charset: "utf8",
  external: ["socket.io-client"],
  banner: {
    js: `// @eventbridge/client ${version}: the browser bundle, built from clients/js by \`npm run build\`.\n// Do not edit; see docs/client-library.md. A test fails while it is stale.`,
  },
});
const text = result.outputFiles[0].text;

if (process.argv.includes("--check")) {
  let current = null;
  try {
    current = readFileSync(OUTPUT, "utf8");
  } catch {
    // missing counts as stale
  }
  if (current !== text) {
    console.error(
      "bridge/dashboard/eventbridge-client.js is stale: run `npm run build` in clients/js and commit it",
    );
    process.exit(1);
  }
  console.log("bridge/dashboard/eventbridge-client.js is current");
} else {
  writeFileSync(OUTPUT, text);
  console.log(`wrote ${OUTPUT} (${text.length} bytes)`);
}
