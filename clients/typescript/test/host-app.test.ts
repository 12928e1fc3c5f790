// examples/host-app against a live `tidepost serve --sandbox`, driven over HTTP the way its page
// is used: a creator sent to a connect link and back, the webhook verified, the widget framed,
// a video published through the CRM (streamed into a tus upload) to TikTok.

import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";

import { startSandbox, type Sandbox } from "../scripts/sandbox.js";
import { consentWithTikTok } from "./consent.js";

const hostApp = fileURLToPath(new URL("../../../../examples/host-app/", import.meta.url));
let sandbox: Sandbox;
let crm: ChildProcess;
let base: string;
let videoDir: string;

async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => ok(typeof address === "object" && address ? address.port : 0));
    });
  });
}

before(async () => {
  sandbox = await startSandbox();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  crm = spawn(process.execPath, [join(hostApp, "server.mjs")], {
    cwd: hostApp,
    env: { ...process.env, PORT: String(port), PUBLIC_URL: base, TIDEPOST_URL: sandbox.base, TIDEPOST_API_KEY: sandbox.apiKey },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("the host app did not start")), 20_000);
    crm.once("exit", (code) => fail(new Error(`the host app exited with ${code}`)));
    crm.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("runs at")) {
        clearTimeout(timer);
        ok();
      }
    });
  });
  videoDir = mkdtempSync(join(tmpdir(), "tidepost-host-video-"));
});

after(async () => {
  if (crm && crm.exitCode === null) {
    const exited = new Promise((ok) => crm.once("exit", ok));
    crm.kill("SIGTERM");
    await exited;
  }
  await sandbox?.stop();
  if (videoDir) rmSync(videoDir, { recursive: true, force: true });
});

test("the host app: connect link, return URL, verified webhook, widget, publish", async () => {
  const page = await (await fetch(base)).text();
  assert.match(page, /Ada Lovelace/);
  assert.match(page, /No account connected yet/);

  // Connect: the CRM answers a 303 to tidepost's hosted page; the creator consents and is back.
  const started = await fetch(`${base}/creators/crm-ada/connect`, { method: "POST", redirect: "manual" });
  assert.equal(started.status, 303);
  const link = started.headers.get("location") ?? "";
  assert.ok(link.startsWith(`${sandbox.base}/connect/link/`), link);
  const back = await consentWithTikTok(link, sandbox.emulator);
  assert.equal(back.origin, base);
  assert.equal(back.searchParams.get("status"), "connected");
  assert.equal(back.searchParams.get("external_ref"), "crm-ada");
  const accountId = back.searchParams.get("account_id");
  assert.ok(accountId);
  const landed = await fetch(back, { redirect: "manual" });
  assert.equal(landed.status, 303);

  // The webhook arrives and is verified by the CRM.
  let events: { type: string; data: Record<string, unknown> }[] = [];
  for (let i = 0; i < 100 && !events.some((e) => e.type === "account.connected"); i++) {
    await new Promise((ok) => setTimeout(ok, 100));
    events = await (await fetch(`${base}/events.json`)).json();
  }
  const connected = events.find((e) => e.type === "account.connected");
  assert.ok(connected, JSON.stringify(events));
  assert.equal(connected.data.external_ref, "crm-ada");

  // The page shows where the creator came back from, and the account's widget.
  const after = await (await fetch(base)).text();
  assert.match(after, /Back from tidepost: <b>connected<\/b>/);
  const widget = /<iframe class="widget"[^>]* src="([^"]+)"/.exec(after)?.[1]?.replaceAll("&amp;", "&") ?? "";
  assert.ok(widget.startsWith(`${sandbox.base}/widget/${accountId}/`), widget);
  const framed = await fetch(widget);
  assert.equal(framed.status, 200);
  assert.match(framed.headers.get("content-security-policy") ?? "", new RegExp(`frame-ancestors [^;]*${base}`));
  const card = await framed.text();
  assert.match(card, /data-widget-reconnect/, "Reconnect, since the CRM gave a return_url");

  // Publish: the bytes go through the CRM into a tus upload, then a post to the account.
  const video = join(videoDir, "tide.mp4");
  execFileSync("ffmpeg", [
    "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "color=c=0x1f6f8b:size=720x1280:rate=30",
    "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono",
    "-t", "3.5", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "40", "-pix_fmt", "yuv420p",
    "-c:a", "aac", "-b:a", "16k", "-movflags", "+faststart", video,
  ]);
  const published = await fetch(`${base}/creators/crm-ada/publish?name=tide.mp4&caption=from%20the%20CRM`, {
    method: "POST",
    headers: { "content-type": "video/mp4" },
    body: readFileSync(video),
  });
  const answer = (await published.json()) as { post_id: string; media_id: string };
  assert.equal(published.status, 201, JSON.stringify(answer));
  let summary = "";
  for (let i = 0; i < 300 && !["published", "failed", "partly_failed"].includes(summary); i++) {
    await new Promise((ok) => setTimeout(ok, 100));
    summary = ((await (await fetch(`${base}/posts/${answer.post_id}`)).json()) as { summary: string }).summary;
  }
  assert.equal(summary, "published");
  for (let i = 0; i < 100 && !events.some((e) => e.type === "post.published"); i++) {
    await new Promise((ok) => setTimeout(ok, 100));
    events = await (await fetch(`${base}/events.json`)).json();
  }
  assert.ok(events.some((e) => e.type === "post.published"), JSON.stringify(events));

  // A forged webhook is refused.
  const forged = await fetch(`${base}/webhooks/tidepost`, {
    method: "POST",
    headers: { "webhook-id": "msg_x", "webhook-timestamp": String(Math.floor(Date.now() / 1000)), "webhook-signature": "v1,AAAA" },
    body: JSON.stringify({ type: "account.connected", data: {} }),
  });
  assert.equal(forged.status, 400);
});
