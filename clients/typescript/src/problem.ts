// Typed problem errors: every refusal of tidepost's API is `application/problem+json`
// (RFC 9457) with a stable `type` (`urn:tidepost:problem:<code>`); some add members such as
// `field` (the request's field at fault) and `rule` (which rule it broke).

import type { components } from "./generated/schema.js";

export type ProblemDocument = components["schemas"]["Problem"] & {
  field?: string;
  rule?: string;
  [member: string]: unknown;
};

const PREFIX = "urn:tidepost:problem:";

/** An API refusal, thrown by {@link ok} and the hand-written helpers. */
export class TidepostProblem extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The problem's `type` URI. */
  readonly type: string;
  /** The last part of `type` (`not-found`, `invalid-request`, `rate-limited`, …). */
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  /** The field at fault, when the problem names one. */
  readonly field: string | undefined;
  /** The rule the field broke, when the problem names one. */
  readonly rule: string | undefined;
  /** Seconds to wait before trying again (429 and transient 503 answers). */
  readonly retryAfter: number | undefined;
  /** The whole problem document, with any other members. */
  readonly body: ProblemDocument;

  constructor(status: number, body: ProblemDocument, retryAfter?: number) {
    super(`${status} ${body.title}: ${body.detail}`);
    this.name = "TidepostProblem";
    this.status = status;
    this.type = body.type;
    this.code = body.type.startsWith(PREFIX) ? body.type.slice(PREFIX.length) : body.type;
    this.title = body.title;
    this.detail = body.detail;
    this.field = typeof body.field === "string" ? body.field : undefined;
    this.rule = typeof body.rule === "string" ? body.rule : undefined;
    this.retryAfter = retryAfter;
    this.body = body;
  }
}

/** `Retry-After` in seconds (a number or an HTTP date), if present. */
export function retryAfterSeconds(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}

function isProblem(value: unknown): value is ProblemDocument {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.type === "string" && typeof v.title === "string" && typeof v.detail === "string";
}

/** A problem for a failed response whose body was already read (`body`, maybe undefined). */
export function problemOf(response: Response, body: unknown): TidepostProblem {
  const document: ProblemDocument = isProblem(body)
    ? body
    : {
        type: "about:blank",
        title: response.statusText || `HTTP ${response.status}`,
        status: response.status,
        detail: typeof body === "string" && body ? body : `the server answered ${response.status}`,
      };
  return new TidepostProblem(response.status, document, retryAfterSeconds(response));
}

/** Reads a failed response into a problem. */
export async function problemFrom(response: Response): Promise<TidepostProblem> {
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: the text is the detail.
  }
  return problemOf(response, body);
}

/**
 * The data of an openapi-fetch answer, or its refusal thrown as a {@link TidepostProblem}:
 * `const account = await ok(tidepost.api.GET("/api/v1/accounts/{id}", …))`.
 */
export async function ok<D, E>(
  call: Promise<{ data?: D; error?: E; response: Response }>,
): Promise<D> {
  const { data, error, response } = await call;
  if (!response.ok || error !== undefined) throw problemOf(response, error);
  return data as D;
}
