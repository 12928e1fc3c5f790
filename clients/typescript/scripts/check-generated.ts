// The stale-generation check: the OpenAPI document of a live `tidepost serve --sandbox` (the
// binary just built) must equal the committed snapshot `openapi.json`, and the types generated
// from it must equal the committed `src/generated/schema.ts`. With `--write`, both are
// rewritten from the live document instead (`npm run regenerate`).

import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { startSandbox } from "./sandbox.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const snapshotPath = join(root, "openapi.json");
const schemaPath = join(root, "src/generated/schema.ts");
const write = process.argv.includes("--write");

async function generate(documentPath: string, out: string): Promise<void> {
  const cli = join(root, "node_modules/.bin/openapi-typescript");
  await run(cli, [documentPath, "--default-non-nullable", "false", "--output", out], { cwd: root });
}

const sandbox = await startSandbox();
let failures: string[] = [];
const scratch = await mkdtemp(join(tmpdir(), "tidepost-ts-gen-"));
try {
  const response = await fetch(`${sandbox.base}/api/v1/openapi.json`);
  if (!response.ok) throw new Error(`GET /api/v1/openapi.json answered ${response.status}`);
  const live = `${JSON.stringify(await response.json(), null, 2)}\n`;
  const liveDoc = join(scratch, "openapi.json");
  const liveSchema = join(scratch, "schema.ts");
  await writeFile(liveDoc, live);
  await generate(liveDoc, liveSchema);
  const generated = await readFile(liveSchema, "utf8");
  if (write) {
    await writeFile(snapshotPath, live);
    await writeFile(schemaPath, generated);
    console.log("wrote openapi.json and src/generated/schema.ts from the live document");
  } else {
    const committed = await readFile(snapshotPath, "utf8").catch(() => "");
    if (committed !== live) failures.push("openapi.json differs from the live server's /api/v1/openapi.json");
    const committedSchema = await readFile(schemaPath, "utf8").catch(() => "");
    if (committedSchema !== generated) failures.push("src/generated/schema.ts differs from the types generated from the live document");
  }
} finally {
  await sandbox.stop();
  await rm(scratch, { recursive: true, force: true });
}
if (failures.length > 0) {
  for (const failure of failures) console.error(`stale: ${failure}`);
  console.error("run `npm run regenerate` in clients/typescript (after building tidepost) and commit the result");
  process.exit(1);
}
if (!write) console.log("generated client is current: openapi.json and src/generated/schema.ts match the live document");
