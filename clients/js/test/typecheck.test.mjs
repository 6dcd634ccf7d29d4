// The published types, as a consumer sees them: a typed consumer compiles, a misspelt field
// does not; and the generated types and the browser bundle are current.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = join(root, "node_modules", ".bin", "tsc");

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, encoding: "utf8" });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

test("a typed consumer compiles against the package's declarations", () => {
  const { status, output } = run(tsc, ["-p", "test/typecheck/tsconfig.ok.json"]);
  assert.equal(status, 0, output);
});

test("a misspelt event field (e.data.progres) does not compile", () => {
  const { status, output } = run(tsc, ["-p", "test/typecheck/tsconfig.wrong.json"]);
  assert.notEqual(status, 0, "tsc accepted e.data.progres");
  assert.match(output, /wrong\.ts.*Property 'progres' does not exist on type 'ProgressUpdate'/s);
});

test("src/generated/schemas.ts is what schemas/jsonschema generates", () => {
  const { status, output } = run(process.execPath, ["scripts/generate-types.mjs", "--check"]);
  assert.equal(status, 0, output);
});

test("bridge/dashboard/eventbridge-client.js is what src/ bundles to", () => {
  const { status, output } = run(process.execPath, ["scripts/bundle.mjs", "--check"]);
  assert.equal(status, 0, output);
});
