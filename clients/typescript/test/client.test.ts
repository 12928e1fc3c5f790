// The client against a live `tidepost serve --sandbox`: connect accounts through connect
// links, upload with tus (a Buffer and a stream, with progress), publish to TikTok and
// Instagram, verify the outbound webhooks, walk paged lists, and refusals as typed problems.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  createTidepost,
  ok,
  TidepostProblem,
  WebhookVerificationError,
  WebhookVerifier,
  type Tidepost,
} from "../src/index.js";
import { startSandbox, type Sandbox } from "../scripts/sandbox.js";
import { consentWithInstagram, consentWithTikTok } from "./consent.js";
import { startHost, type Host } from "./host.js";

let sandbox: Sandbox;
let host: Host;
let tidepost: Tidepost;
let verifier: WebhookVerifier;
let videoDir: string;
let videoPath: string;

/** A 3.5 s 720×1280 H.264/AAC clip both platforms accept, made with ffmpeg. */
function makeVideo(): string {
  videoDir = mkdtempSync(join(tmpdir(), "tidepost-ts-video-"));
  const out = join(videoDir, "tide.mp4");
  execFileSync("ffmpeg", [
    "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "color=c=0x1f6f8b:size=720x1280:rate=30",
    "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono",
    "-t", "3.5", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "40", "-pix_fmt", "yuv420p",
    "-c:a", "aac", "-b:a", "16k", "-movflags", "+faststart", out,
  ]);
  return out;
}

before(async () => {
  videoPath = makeVideo();
  [sandbox, host] = await Promise.all([startSandbox(), startHost()]);
  tidepost = createTidepost({ baseUrl: sandbox.base, apiKey: sandbox.apiKey });
  await ok(tidepost.api.PUT("/api/v1/allowed-origins", { body: { origins: [host.origin] } }));
  const endpoint = await ok(
    tidepost.api.POST("/api/v1/webhook-endpoints", { body: { url: `${host.origin}/hooks`, description: "ts client" } }),
  );
  assert.ok(endpoint.secret, "the secret is shown once");
  verifier = new WebhookVerifier(endpoint.secret);
});

after(async () => {
  await Promise.all([sandbox?.stop(), host?.close()]);
  if (videoDir) rmSync(videoDir, { recursive: true, force: true });
});

/** The deliveries of `type`, each verified (a bad signature throws). */
async function verifiedEvent(type: string, test: (data: Record<string, unknown>) => boolean) {
  const delivery = await host.waitFor((d) => {
    const event = JSON.parse(d.body) as { type: string; data: Record<string, unknown> };
    return event.type === type && test(event.data);
  });
  return verifier.verify(delivery.body, delivery.headers);
}

async function connect(platform: "tiktok" | "instagram", externalRef: string): Promise<string> {
  const link = await ok(
    tidepost.api.POST("/api/v1/connect-links", {
      body: { platforms: [platform], external_ref: externalRef, return_url: `${host.origin}/back` },
    }),
  );
  const back =
    platform === "tiktok"
      ? await consentWithTikTok(link.url, sandbox.emulator)
      : await consentWithInstagram(link.url, sandbox.emulator, sandbox.base);
  assert.equal(back.origin, host.origin);
  assert.equal(back.pathname, "/back");
  assert.equal(back.searchParams.get("status"), "connected");
  assert.equal(back.searchParams.get("external_ref"), externalRef);
  const accountId = back.searchParams.get("account_id");
  assert.ok(accountId);
  return accountId;
}

test("connect, upload, publish to TikTok and Instagram, verified webhooks", async () => {
  const tiktok = await connect("tiktok", "crm-creator-1");
  const instagram = await connect("instagram", "crm-creator-1");
  for (const id of [tiktok, instagram]) {
    const event = await verifiedEvent("account.connected", (data) => data.account_id === id || data.id === id);
    assert.equal(event.data.external_ref, "crm-creator-1");
  }
  const mine = await ok(tidepost.api.GET("/api/v1/accounts", { params: { query: { external_ref: "crm-creator-1" } } }));
  assert.deepEqual(new Set(mine.data.map((a) => a.id)), new Set([tiktok, instagram]));

  // A Buffer, with progress.
  const bytes = readFileSync(videoPath);
  const seen: number[] = [];
  const uploaded = await tidepost.upload(bytes, {
    fileName: "tide.mp4",
    contentType: "video/mp4",
    chunkSize: 16 * 1024,
    onProgress: (sent, total) => {
      assert.equal(total, bytes.byteLength);
      seen.push(sent);
    },
  });
  assert.ok(seen.length > 1, `progress was reported along the way: ${seen.join(",")}`);
  assert.equal(seen.at(-1), bytes.byteLength);
  const media = await ok(tidepost.api.GET("/api/v1/media/{id}", { params: { path: { id: uploaded.mediaId } } }));
  assert.equal(media.kind, "video");

  // A Node stream gives the same media (stored once by content).
  const streamed = await tidepost.upload(createReadStream(videoPath), {
    fileName: "tide.mp4",
    size: statSync(videoPath).size,
    chunkSize: 32 * 1024,
  });
  assert.equal(streamed.mediaId, uploaded.mediaId);

  const post = await ok(
    tidepost.api.POST("/api/v1/posts", {
      body: {
        caption: "from the TypeScript client",
        media: [{ media_id: uploaded.mediaId }],
        targets: [
          { account_id: tiktok, tiktok: { privacy_level: "SELF_ONLY" } },
          { account_id: instagram, instagram: { media_type: "reel" } },
        ],
      },
    }),
  );
  assert.equal(post.targets.length, 2);
  const published = await Promise.all(
    [tiktok, instagram].map((id) =>
      verifiedEvent("post.published", (data) => JSON.stringify(data).includes(post.id) && JSON.stringify(data).includes(id)),
    ),
  );
  assert.equal(published.length, 2);
  const done = await ok(tidepost.api.GET("/api/v1/posts/{id}", { params: { path: { id: post.id } } }));
  assert.deepEqual(
    done.targets.map((t) => t.state),
    ["published", "published"],
  );

  // A delivery altered on the way is refused.
  const delivery = host.deliveries[0];
  assert.ok(delivery);
  assert.throws(() => verifier.verify(delivery.body.replace("}", ' }'), delivery.headers), WebhookVerificationError);
  assert.throws(() => new WebhookVerifier("whsec_" + Buffer.from("not the secret").toString("base64")).verify(delivery.body, delivery.headers), WebhookVerificationError);
});

test("paging walks every page", async () => {
  for (let i = 0; i < 5; i++) {
    await ok(tidepost.api.POST("/api/v1/creators", { body: { name: `Creator ${i}` } }));
  }
  const names: string[] = [];
  for await (const creator of tidepost.paginate("/api/v1/creators", { query: { limit: 2 } })) {
    names.push(creator.name);
  }
  for (let i = 0; i < 5; i++) assert.ok(names.includes(`Creator ${i}`), names.join(", "));
  assert.equal(new Set(names).size, names.length, "no item twice");
});

test("refusals are typed problems naming the field", async () => {
  await assert.rejects(
    ok(tidepost.api.POST("/api/v1/connect-links", { body: { return_url: "javascript:alert(1)" } })),
    (error: unknown) => {
      assert.ok(error instanceof TidepostProblem);
      assert.equal(error.status, 422);
      assert.equal(error.code, "invalid-request");
      assert.equal(error.field, "return_url");
      assert.equal(error.rule, "scheme");
      return true;
    },
  );
  await assert.rejects(
    ok(tidepost.api.GET("/api/v1/accounts/{id}", { params: { path: { id: "nope" } } })),
    (error: unknown) => error instanceof TidepostProblem && error.status === 404 && error.code === "not-found",
  );
  const stranger = createTidepost({ baseUrl: sandbox.base, apiKey: "tp_wrong", retry: false });
  await assert.rejects(ok(stranger.api.GET("/api/v1/me")), (error: unknown) => error instanceof TidepostProblem && error.status === 401);
});

test("a POST retried after a lost answer is done once (Idempotency-Key)", async () => {
  let calls = 0;
  // The first answer is lost on the way back: the retry carries the same key and gets the
  // stored answer, so one creator is made, not two.
  const flaky = createTidepost({
    baseUrl: sandbox.base,
    apiKey: sandbox.apiKey,
    retry: { backoffMs: 10 },
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      calls++;
      if (calls === 1) throw new TypeError("fetch failed: connection reset");
      return response;
    },
  });
  const created = await ok(flaky.api.POST("/api/v1/creators", { body: { name: "Once Only" } }));
  assert.equal(calls, 2);
  const all: string[] = [];
  for await (const creator of tidepost.paginate("/api/v1/creators", { query: { limit: 200 } })) {
    if (creator.name === "Once Only") all.push(creator.id);
  }
  assert.deepEqual(all, [created.id]);
});
