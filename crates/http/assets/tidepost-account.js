// <tidepost-account src="https://tidepost.example.com/widget/ID/TOKEN" theme="dark">
// The account card of a widget link, for a host page that prefers no iframe: it loads
// `card.json` beside the link (readable only from the workspace's allowed origins) and renders
// it in a shadow root, light or dark (the link's theme unless `theme` says otherwise). Every
// value is set as text, never as HTML. A link made with a `return_url` adds Reconnect, a form
// that leaves the host page for tidepost's connect link.
(() => {
  "use strict";
  if (customElements.get("tidepost-account")) return;

  const STYLE = `
    :host { display: block; font: 14px/1.45 system-ui, sans-serif; }
    .card { border: 1px solid #d6e0e3; border-radius: 10px; padding: 12px 14px; background: #fff; color: #16262c; }
    .dark .card { background: #14232a; color: #e6eef0; border-color: #2b3f47; }
    .head { display: flex; align-items: center; gap: 10px; }
    .avatar { width: 40px; height: 40px; border-radius: 50%; object-fit: cover; background: #cfe3e8; }
    .avatar.initial { display: grid; place-items: center; border-radius: 8px; background: #16262c; color: #fff; font-weight: 700; }
    .who { flex: 1; min-width: 0; }
    .muted { color: #5d7076; font-size: 12px; }
    .dark .muted { color: #9fb3b9; }
    .badge { font-size: 12px; padding: 2px 8px; border-radius: 999px; background: #e3f4ea; color: #1d6b3c; }
    .badge.warn, .badge.error { background: #fde8e4; color: #9b2a17; }
    .notice { margin: 8px 0 0; color: #9b2a17; font-size: 13px; }
    .dark .notice { color: #ffb4a6; }
    .stat { display: flex; justify-content: space-between; margin-top: 6px; }
    ul { list-style: none; padding: 0; margin: 6px 0 0; }
    li { display: flex; gap: 6px; align-items: baseline; margin-top: 4px; }
    li .caption { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .pill { font-size: 11px; padding: 1px 6px; border-radius: 999px; background: #e8eef0; color: #16262c; }
    button { margin-top: 10px; font: inherit; padding: 6px 12px; border-radius: 6px; border: 1px solid #1f6f8b; background: #1f6f8b; color: #fff; cursor: pointer; }
    button.secondary { background: transparent; color: inherit; }
    .error { color: #9b2a17; }
  `;

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined) continue;
      if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function stat(label, value) {
    return el("div", { class: "stat" }, el("span", { text: label }), el("strong", { text: value }));
  }

  class TidepostAccount extends HTMLElement {
    static get observedAttributes() {
      return ["src", "theme"];
    }

    constructor() {
      super();
      this.attachShadow({ mode: "open" });
    }

    connectedCallback() {
      this.load();
    }

    attributeChangedCallback(_name, before, after) {
      if (before !== after && this.isConnected) this.load();
    }

    async load() {
      const src = this.getAttribute("src");
      if (!src) return this.fail("the src attribute (a widget link's URL) is missing");
      let url;
      try {
        url = new URL(src.replace(/\/+$/, "") + "/card.json", document.baseURI);
      } catch {
        return this.fail("src is not a URL");
      }
      try {
        const response = await fetch(url, { credentials: "omit", cache: "no-store" });
        const body = await response.json().catch(() => null);
        if (!response.ok) {
          return this.fail((body && body.detail) || `tidepost answered ${response.status}`);
        }
        this.render(body, url.origin);
      } catch {
        this.fail("the account could not be loaded (is this page's origin allowed in tidepost?)");
      }
    }

    fail(message) {
      this.shadowRoot.replaceChildren(el("style", { text: STYLE }), el("div", { class: "card error", role: "alert", text: message }));
      this.dispatchEvent(new CustomEvent("tidepost-error", { detail: { message } }));
    }

    render(card, tidepostOrigin) {
      const theme = this.getAttribute("theme") || card.theme || "light";
      const a = card.account;
      const initial = () => el("span", { class: "avatar initial", text: (a.platform_name || "?").charAt(0) });
      let avatar = initial();
      if (a.avatar_url) {
        avatar = el("img", { class: "avatar", src: a.avatar_url, alt: "" });
        // An avatar the platform no longer serves: the platform's initial instead.
        avatar.addEventListener("error", () => avatar.replaceWith(initial()), { once: true });
      }
      const head = el(
        "div",
        { class: "head" },
        avatar,
        el(
          "div",
          { class: "who" },
          el("strong", { text: a.display_name }),
          a.username ? el("span", { class: "muted", text: ` @${a.username}` }) : null,
          el("div", { class: "muted", text: a.platform_name }),
        ),
        el("span", { class: `badge ${a.health_class}`, text: a.health }),
      );
      const body = el("div", { class: "card", part: "card", "data-account": a.id }, head);
      if (a.status_reason) body.append(el("p", { class: "notice", role: "alert", text: a.status_reason }));
      if (a.posting_block) body.append(el("p", { class: "notice", role: "alert", text: a.posting_block }));
      body.append(el("p", { class: "muted", text: `Token: ${a.token_line}` }));
      if (card.tiktok) {
        const t = card.tiktok;
        body.append(stat("Direct posts left today", `${t.direct_left} of ${t.direct_cap}`));
        body.append(stat("Drafts waiting in the inbox", `${t.inbox_pending} of ${t.inbox_cap}`));
        if (t.next_slot) body.append(el("p", { class: "muted", text: `Daily cap reached. Next direct post at ${t.next_slot}.` }));
      }
      if (card.instagram) {
        const i = card.instagram;
        body.append(stat("Token", i.token_days_left === null ? "no expiry" : `${i.token_days_left} days left`));
        body.append(
          stat("Publishing limit used (24 h)", i.limit_used === null ? "not checked yet" : `${i.limit_used} of ${i.limit_total}`),
        );
      }
      if (card.recent.length > 0) {
        const list = el("ul");
        for (const p of card.recent) {
          list.append(
            el(
              "li",
              {},
              el("span", { class: "caption", text: p.caption }),
              el("span", { class: `pill ${p.state_class}`, text: p.state }),
              el("span", { class: "muted", text: p.when }),
            ),
          );
        }
        body.append(list);
      } else {
        body.append(el("p", { class: "muted", text: "Nothing posted through tidepost yet." }));
      }
      if (card.reconnect && new URL(card.reconnect.action).origin === tidepostOrigin) {
        const form = el("form", { method: "post", action: card.reconnect.action, target: "_top" });
        form.append(el("input", { type: "hidden", name: "form_token", value: card.reconnect.form_token }));
        form.append(el("button", { type: "submit", class: a.needs_reauth ? "" : "secondary", text: "Reconnect" }));
        body.append(form);
      }
      this.shadowRoot.replaceChildren(el("style", { text: STYLE }), el("div", { class: theme === "dark" ? "dark" : "light" }, body));
      this.dispatchEvent(new CustomEvent("tidepost-loaded", { detail: { account: a.id } }));
    }
  }

  customElements.define("tidepost-account", TidepostAccount);
})();
