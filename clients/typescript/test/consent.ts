// Walks the sandbox emulator's consent pages with plain HTTP, the way a creator's browser
// does: the link's page, the platform's consent, tidepost's callback, the host's return URL.

import assert from "node:assert/strict";

function unescape(text: string): string {
  return text.replaceAll("&amp;", "&").replaceAll("&#38;", "&").replaceAll("&quot;", '"').replaceAll("&#34;", '"');
}

/** The `<input type="hidden" name=… value=…>` fields of a page. */
export function hiddenFields(html: string): [string, string][] {
  return html
    .split('<input type="hidden" name="')
    .slice(1)
    .map((rest) => {
      const name = rest.slice(0, rest.indexOf('"'));
      const value = /value="([^"]*)"/.exec(rest)?.[1] ?? "";
      return [name, unescape(value)];
    });
}

async function post(url: string, form: [string, string][]): Promise<Response> {
  return fetch(url, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
}

function locationOf(response: Response): string {
  const location = response.headers.get("location");
  assert.ok(location, `expected a redirect, got ${response.status}`);
  return location;
}

/** Picks TikTok on the link's page and approves as the emulator's first creator: the return URL. */
export async function consentWithTikTok(linkUrl: string, emulator: string): Promise<URL> {
  const picked = await post(linkUrl, [["choice", "tiktok"]]);
  assert.equal(picked.status, 303);
  const consent = await (await fetch(locationOf(picked))).text();
  const form = hiddenFields(consent);
  const creator = /name="creator" value="([^"]+)"/.exec(consent)?.[1];
  assert.ok(creator, "the consent page lists a creator");
  form.push(["creator", creator], ["decision", "approve"]);
  const approved = await post(`${emulator}/tiktok/www/v2/auth/authorize/`, form);
  const landed = await fetch(locationOf(approved), { redirect: "manual" });
  assert.equal(landed.status, 303, await landed.text());
  return new URL(locationOf(landed));
}

/** Picks Instagram (Facebook Login) on the link's page, continues, picks the business Page. */
export async function consentWithInstagram(linkUrl: string, emulator: string, base: string): Promise<URL> {
  const picked = await post(linkUrl, [["choice", "instagram:facebook"]]);
  assert.equal(picked.status, 303);
  const dialog = await (await fetch(locationOf(picked))).text();
  const action = /<form method="post" action="([^"]+)"/.exec(dialog)?.[1];
  assert.ok(action, "the Facebook Login dialog has a form");
  const approved = await post(`${emulator}${unescape(action)}`, [...hiddenFields(dialog), ["decision", "approve"]]);
  const chooser = await fetch(locationOf(approved), { redirect: "manual" });
  assert.equal(chooser.status, 200, "the Page chooser");
  const html = await chooser.text();
  const page = /name="page" value="([^"]+)"/.exec(html)?.[1];
  assert.ok(page, "the chooser offers a Page");
  const chosen = await post(`${base}/connect/instagram/choose`, [...hiddenFields(html), ["page", page]]);
  assert.equal(chosen.status, 303, await chosen.text());
  return new URL(locationOf(chosen));
}
