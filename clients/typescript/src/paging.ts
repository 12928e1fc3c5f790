// Cursor paging as an async iterator: every list answering `{data, next_cursor}` is walked
// page by page, passing `next_cursor` back as `after`.

import type { Client } from "openapi-fetch";
import type { paths } from "./generated/schema.js";
import { ok } from "./problem.js";

type JsonOf<R> = R extends { content: { "application/json": infer J } } ? J : never;
type PageOf<P extends keyof paths> = paths[P] extends { get: { responses: { 200: infer R } } } ? JsonOf<R> : never;

/** The paths whose GET answers a page: `{data: [...], next_cursor}`. */
export type PagedPath = {
  [P in keyof paths]: PageOf<P> extends { data: unknown[]; next_cursor?: string | null } ? P : never;
}[keyof paths];

/** One item of a paged list. */
export type ItemOf<P extends PagedPath> = PageOf<P> extends { data: (infer I)[] } ? I : never;

type QueryOf<P extends PagedPath> = paths[P] extends { get: { parameters: { query?: infer Q } } } ? Q : never;
type PathParamsOf<P extends PagedPath> = paths[P] extends { get: { parameters: { path?: infer A } } } ? A : never;

export interface PageOptions<P extends PagedPath> {
  /** The list's filters (`after` is set by the iterator). */
  query?: Omit<NonNullable<QueryOf<P>>, "after">;
  /** The path's parameters, for lists under an object (`/creators/{id}/timeline`). */
  path?: PathParamsOf<P>;
}

/**
 * Every item of the list at `path`, fetching the next page only when the loop gets there:
 * `for await (const account of paginate(tidepost.api, "/api/v1/accounts")) …`.
 */
export async function* paginate<P extends PagedPath>(
  api: Client<paths>,
  path: P,
  options: PageOptions<P> = {},
): AsyncGenerator<ItemOf<P>, void, undefined> {
  let after: string | undefined;
  for (;;) {
    const query = { ...(options.query ?? {}), ...(after === undefined ? {} : { after }) };
    // The path is one of the paged ones; openapi-fetch's overloads cannot see through the
    // generic, so the call is typed by hand.
    const get = api.GET as unknown as (
      path: string,
      init: { params: { query: unknown; path?: unknown } },
    ) => Promise<{ data?: { data: ItemOf<P>[]; next_cursor?: string | null }; error?: unknown; response: Response }>;
    const page = await ok(get(path, { params: { query, path: options.path } }));
    for (const item of page.data) yield item;
    if (!page.next_cursor) return;
    after = page.next_cursor;
  }
}
