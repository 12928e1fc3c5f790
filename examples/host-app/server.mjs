// A pretend creator CRM that embeds tidepost through @tidepost/client, with Node's own http
// module and no framework. It lists its creators, sends one to a tidepost connect link, takes
// the creator back on /back and tidepost's webhooks on /webhooks/tidepost (each verified),
// shows each account's widget, and publishes a video to a creator's accounts with a progress bar.
//
//   TIDEPOST_URL=http://127.0.0.1:8080 TIDEPOST_API_KEY=tp_… npm start
//
// The API key never leaves this server: the browser talks only to this app.

import { createServer } from "node:http";
import { PassThrough } from "node:stream";

import { createTidepost, ok, TidepostProblem, WebhookVerificationError, WebhookVerifier } from "@tidepost/client";

const PORT = Number(process.env.PORT ?? 3000);
const PUBLIC_URL = (process.env.PUBLIC_URL ?? `http://localhost:${PORT}`).replace(/\/+$/, "");
const TIDEPOST_URL = process.env.TIDEPOST_URL;
const API_KEY = process.env.TIDEPOST_API_KEY;
if (!TIDEPOST_URL || !API_KEY) {
  console.error("host-app: set TIDEPOST_URL and TIDEPOST_API_KEY (tidepost apikey create --workspace … --name crm)");
  process.exit(2);
}

const tidepost = createTidepost({ baseUrl: TIDEPOST_URL, apiKey: API_KEY });

// The CRM's own records: its creators, keyed by its own ids (tidepost's `external_ref`).
const creators = [
  { id: "crm-ada", name: "Ada Lovelace" },
  { id: "crm-grace", name: "Grace Hopper" },
];
/** Verified webhook events, newest first. */
const events = [];
/** What the last creator coming back from a connect link brought. */
let lastReturn = null;
let verifier;

/** This app's origin is allowed (connect links and widgets return here); a webhook endpoint points here. */
async function setUp() {
  const origin = new URL(PUBLIC_URL).origin;
  const { origins } = await ok(tidepost.api.GET("/api/v1/allowed-origins"));
  if (!origins.includes(origin)) {
    await ok(tidepost.api.PUT("/api/v1/allowed-origins", { body: { origins: [...origins, origin] } }));
  }
  const hookUrl = `${PUBLIC_URL}/webhooks/tidepost`;
  for await (const endpoint of tidepost.paginate("/api/v1/webhook-endpoints")) {
    if (endpoint.url === hookUrl) {
      await ok(tidepost.api.DELETE("/api/v1/webhook-endpoints/{id}", { params: { path: { id: endpoint.id } } }));
    }
  }
  const endpoint = await ok(
    tidepost.api.POST("/api/v1/webhook-endpoints", { body: { url: hookUrl, description: "host-app example" } }),
  );
  verifier = new WebhookVerifier(endpoint.secret);
}

const escape = (text) =>
  String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

async function accountsOf(creator) {
  const accounts = [];
  for await (const account of tidepost.paginate("/api/v1/accounts", { query: { external_ref: creator.id } })) {
    accounts.push(account);
  }
  return accounts;
}

async function page() {
  const rows = [];
  for (const creator of creators) {
    const accounts = await accountsOf(creator);
    const cards = [];
    for (const account of accounts) {
      const widget = await ok(
        tidepost.api.POST("/api/v1/accounts/{id}/widget-links", {
          params: { path: { id: account.id } },
          body: { return_url: `${PUBLIC_URL}/back`, expires_in: 3600 },
        }),
      );
      cards.push(
        `<iframe class="widget" title="${escape(account.display_name)} in tidepost" src="${escape(widget.url)}" data-account="${escape(account.id)}"></iframe>`,
      );
    }
    rows.push(`
      <section class="creator" data-creator="${escape(creator.id)}">
        <h2>${escape(creator.name)} <small>${escape(creator.id)}</small></h2>
        <form method="post" action="/creators/${escape(creator.id)}/connect">
          <button>Connect a TikTok or Instagram account</button>
        </form>
        <div class="widgets">${cards.join("") || "<p>No account connected yet.</p>"}</div>
        ${
          accounts.length > 0
            ? `<form class="publish" data-creator="${escape(creator.id)}">
                 <label>Video for every account of ${escape(creator.name)} <input type="file" name="video" accept="video/*" required></label>
                 <label>Caption <input name="caption" value="From the CRM"></label>
                 <button>Publish</button>
                 <progress max="1" value="0" hidden></progress>
                 <output></output>
               </form>`
            : ""
        }
      </section>`);
  }
  const back = lastReturn
    ? `<p class="returned" role="status">Back from tidepost: <b>${escape(lastReturn.status)}</b>${
        lastReturn.account_id ? `, account <code>${escape(lastReturn.account_id)}</code>` : ""
      } for <code>${escape(lastReturn.external_ref)}</code>${lastReturn.error ? ` (error: ${escape(lastReturn.error)})` : ""}</p>`
    : "";
  const log = events
    .map((e) => `<li><code>${escape(e.type)}</code> ${escape(e.timestamp)} <span class="verified">verified</span></li>`)
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Creator CRM</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }
  .creator { border: 1px solid #ccd; border-radius: 8px; padding: 1rem; margin: 1rem 0; }
  .widgets { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0; }
  iframe.widget { width: 22rem; height: 27rem; border: 0; }
  progress { width: 20rem; }
</style></head>
<body>
<h1>Creator CRM <small>(a tidepost host example)</small></h1>
${back}
${rows.join("")}
<h2>Webhooks received</h2>
<ul id="events">${log || "<li>None yet.</li>"}</ul>
<script>
for (const form of document.querySelectorAll("form.publish")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = form.video.files[0];
    const bar = form.querySelector("progress");
    const out = form.querySelector("output");
    bar.hidden = false;
    const xhr = new XMLHttpRequest();
    const query = new URLSearchParams({ name: file.name, caption: form.caption.value });
    xhr.open("POST", "/creators/" + form.dataset.creator + "/publish?" + query);
    xhr.setRequestHeader("content-type", file.type || "application/octet-stream");
    // The bytes go on to tidepost as they arrive (a tus upload), so this is the upload's progress.
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { bar.value = e.loaded / e.total; out.textContent = Math.round(100 * e.loaded / e.total) + "% uploaded"; } };
    xhr.onload = () => {
      const answer = JSON.parse(xhr.responseText);
      if (xhr.status !== 201) { out.textContent = "Refused: " + answer.detail; return; }
      bar.value = 1;
      out.textContent = "Sent: post " + answer.post_id;
      const poll = async () => {
        const post = await (await fetch("/posts/" + answer.post_id)).json();
        out.textContent = "Post " + post.id + ": " + post.targets.map((t) => t.platform + " " + t.state).join(", ");
        out.dataset.summary = post.summary;
        if (!["published", "failed", "partly_failed", "cancelled"].includes(post.summary)) setTimeout(poll, 1000);
      };
      poll();
    };
    xhr.onerror = () => { out.textContent = "The upload failed"; };
    xhr.send(file);
  });
}
</script>
</body></html>`;
}

function send(response, status, type, body, headers = {}) {
  response.writeHead(status, { "content-type": type, ...headers }).end(body);
}

function json(response, status, value) {
  send(response, status, "application/json", JSON.stringify(value));
}

async function readBody(request) {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function handle(request, response) {
  const url = new URL(request.url, PUBLIC_URL);
  const creatorMatch = /^\/creators\/([^/]+)\/(connect|publish)$/.exec(url.pathname);
  const creator = creatorMatch && creators.find((c) => c.id === decodeURIComponent(creatorMatch[1]));

  if (request.method === "GET" && url.pathname === "/") {
    return send(response, 200, "text/html; charset=utf-8", await page());
  }
  if (request.method === "POST" && creatorMatch?.[2] === "connect") {
    if (!creator) return send(response, 404, "text/plain", "no such creator");
    // A connect link for this creator: tidepost's hosted page, then back to /back.
    const link = await ok(
      tidepost.api.POST("/api/v1/connect-links", {
        body: { external_ref: creator.id, return_url: `${PUBLIC_URL}/back` },
      }),
    );
    return send(response, 303, "text/plain", "", { location: link.url });
  }
  if (request.method === "GET" && url.pathname === "/back") {
    lastReturn = Object.fromEntries(url.searchParams);
    return send(response, 303, "text/plain", "", { location: "/" });
  }
  if (request.method === "POST" && url.pathname === "/webhooks/tidepost") {
    const body = await readBody(request);
    try {
      events.unshift(verifier.verify(body, request.headers));
      return send(response, 204, "text/plain", "");
    } catch (error) {
      if (error instanceof WebhookVerificationError) return send(response, 400, "text/plain", "bad signature");
      throw error;
    }
  }
  if (request.method === "POST" && creatorMatch?.[2] === "publish") {
    if (!creator) return json(response, 404, { detail: "no such creator" });
    const size = Number(request.headers["content-length"]);
    if (!Number.isInteger(size) || size <= 0) return json(response, 411, { detail: "send the video with its Content-Length" });
    // The browser's bytes stream straight into a tus upload to tidepost (through a
    // PassThrough: the uploader destroys its stream when done, which must not close this
    // request's socket before the answer).
    const { mediaId } = await tidepost.upload(request.pipe(new PassThrough()), {
      size,
      fileName: url.searchParams.get("name") ?? "video.mp4",
      contentType: request.headers["content-type"],
      chunkSize: 1024 * 1024,
    });
    const accounts = await accountsOf(creator);
    const post = await ok(
      tidepost.api.POST("/api/v1/posts", {
        body: {
          caption: url.searchParams.get("caption") ?? "",
          media: [{ media_id: mediaId }],
          targets: accounts.map((a) =>
            a.platform === "tiktok"
              ? { account_id: a.id, tiktok: { privacy_level: "SELF_ONLY" } }
              : { account_id: a.id, instagram: { media_type: "reel" } },
          ),
        },
      }),
    );
    return json(response, 201, { post_id: post.id, media_id: mediaId });
  }
  const postMatch = /^\/posts\/([^/]+)$/.exec(url.pathname);
  if (request.method === "GET" && postMatch) {
    const post = await ok(tidepost.api.GET("/api/v1/posts/{id}", { params: { path: { id: postMatch[1] } } }));
    return json(response, 200, post);
  }
  if (request.method === "GET" && url.pathname === "/events.json") {
    return json(response, 200, events);
  }
  send(response, 404, "text/plain", "not found");
}

await setUp();
createServer((request, response) => {
  handle(request, response).catch((error) => {
    if (error instanceof TidepostProblem) {
      return json(response, error.status >= 500 ? 502 : error.status, { detail: error.detail, field: error.field });
    }
    console.error(error);
    if (!response.headersSent) json(response, 500, { detail: "the CRM failed; see its log" });
  });
}).listen(PORT, "127.0.0.1", () => console.log(`host-app: the creator CRM runs at ${PUBLIC_URL}`));
