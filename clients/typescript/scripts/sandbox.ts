// A live `tidepost serve --sandbox` for the tests and the stale-generation check: its own data
// folder and SQLite database, a free port, a workspace and an API key made with the CLI.

import { spawn, execFile, type ChildProcess } from "node:child_process";
import { access, constants, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface Sandbox {
  /** `http://127.0.0.1:PORT`. */
  base: string;
  /** The in-process emulator of TikTok and Meta. */
  emulator: string;
  /** An API key of the workspace `crm`. */
  apiKey: string;
  stop(): Promise<void>;
}

/** The binary: `TIDEPOST_BIN`, else `$CARGO_TARGET_DIR/debug/tidepost`, else the repo's target. */
export function binary(): string {
  if (process.env.TIDEPOST_BIN) return process.env.TIDEPOST_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? fileURLToPath(new URL("../../../../target", import.meta.url));
  return join(target, "debug", "tidepost");
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => ok(port));
    });
  });
}

export async function startSandbox(): Promise<Sandbox> {
  const bin = binary();
  await access(bin, constants.X_OK).catch(() => {
    throw new Error(`no tidepost binary at ${bin}: build it (cargo build) or set TIDEPOST_BIN`);
  });
  const dir = await mkdtemp(join(tmpdir(), "tidepost-ts-"));
  const database = `sqlite://${join(dir, "tidepost.db")}`;
  const env = {
    ...process.env,
    TIDEPOST_DATA_DIR: join(dir, "data"),
    TIDEPOST_LOG: process.env.TIDEPOST_LOG ?? "warn",
  };
  const create = spawn(
    bin,
    ["user", "create", "--email", "owner@crm.example", "--workspace", "crm", "--password-stdin", "--database", database],
    { env, stdio: ["pipe", "ignore", "inherit"] },
  );
  create.stdin.end("sandbox-password-1234\n");
  const code = await new Promise<number | null>((ok) => create.on("exit", ok));
  if (code !== 0) throw new Error(`tidepost user create exited with ${code}`);
  const key = await run(bin, ["apikey", "create", "--workspace", "crm", "--name", "ts-client", "--database", database], {
    env,
  });
  const apiKey = key.stdout.trim();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server: ChildProcess = spawn(bin, ["serve", "--sandbox", "--listen", `127.0.0.1:${port}`, "--database", database], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const emulator = await new Promise<string>((ok, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error(`tidepost serve did not start: ${out}`)), 30_000);
    server.once("exit", (code) => fail(new Error(`tidepost serve exited with ${code}: ${out}`)));
    server.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const found = /emulated at (http:\/\/\S+)/.exec(out);
      if (found?.[1]) {
        clearTimeout(timer);
        ok(found[1]);
      }
    });
  });
  server.stdout?.resume();
  return {
    base,
    emulator,
    apiKey,
    async stop() {
      if (server.exitCode === null) {
        const exited = new Promise((ok) => server.once("exit", ok));
        server.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
