// Run the test files with Node's own test runner: `node scripts/run-tests.mjs [files...]`.
// Node 20 and 21 need --experimental-websocket for the global WebSocket; later versions have it.

import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const major = Number(process.versions.node.split(".")[0]);
const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : readdirSync(join(root, "test"))
      .filter((name) => name.endsWith(".test.mjs"))
      .sort()
      .map((name) => join("test", name));
const flags = major < 22 ? ["--experimental-websocket"] : [];
const result = spawnSync(process.execPath, [...flags, "--test", "--test-timeout=180000", ...files], {
  cwd: root,
  stdio: "inherit",
});
process.exit(result.status ?? 1);
