// tidepost's TypeScript client: `api` is openapi-fetch over the types generated from
// `/api/v1/openapi.json` (every path, parameter and body typed); the rest is the thin layer
// generation cannot give: retries with `Idempotency-Key`, cursor paging, tus uploads,
// webhook verification and typed problem errors.

import createClient, { type Client } from "openapi-fetch";
import type { components, operations, paths } from "./generated/schema.js";
import { paginate, type ItemOf, type PagedPath, type PageOptions } from "./paging.js";
import { retryingFetch, type RetryOptions } from "./retry.js";
import { uploadWithTus, type UploadInput, type UploadOptions, type UploadResult } from "./uploads.js";

export type { components, operations, paths };
export type Schemas = components["schemas"];
export { ok, problemFrom, TidepostProblem, type ProblemDocument } from "./problem.js";
export { idempotencyKey, retryingFetch, type RetryOptions } from "./retry.js";
export { paginate, type ItemOf, type PagedPath, type PageOptions } from "./paging.js";
export { uploadWithTus, type UploadInput, type UploadOptions, type UploadResult } from "./uploads.js";
export { WebhookVerifier, WebhookVerificationError, type TidepostEvent } from "./webhooks.js";

export interface TidepostOptions {
  /** Where tidepost runs: `https://tidepost.example.com`. */
  baseUrl: string;
  /** An API key (`tp_…`): keep it on your server. */
  apiKey: string;
  /** Retries (default 3 after the first attempt); `false` for none. */
  retry?: RetryOptions | false;
  /** The `fetch` to use (default `globalThis.fetch`). */
  fetch?: typeof fetch;
}

export interface Tidepost {
  /** Every route, typed: `await tidepost.api.GET("/api/v1/accounts", {params: {query: {limit: 10}}})`. */
  api: Client<paths>;
  baseUrl: string;
  /** Every item of a paged list, page after page. */
  paginate<P extends PagedPath>(path: P, options?: PageOptions<P>): AsyncGenerator<ItemOf<P>, void, undefined>;
  /** A resumable upload: the stored media's id when complete. */
  upload(input: UploadInput, options?: UploadOptions): Promise<UploadResult>;
}

export function createTidepost(options: TidepostOptions): Tidepost {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const inner = options.fetch ?? globalThis.fetch;
  const fetcher = options.retry === false ? (request: Request) => inner(request) : retryingFetch(options.retry ?? {}, inner);
  const api = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${options.apiKey}` },
    fetch: fetcher,
  });
  return {
    api,
    baseUrl,
    paginate: (path, pageOptions) => paginate(api, path, pageOptions),
    upload: (input, uploadOptions) => uploadWithTus(baseUrl, options.apiKey, input, uploadOptions),
  };
}
