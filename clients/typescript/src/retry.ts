// Retries: a `fetch` that sends again what is safe to send again. A POST gets an
// `Idempotency-Key` (unless the caller set one) so that tidepost replays its first answer
// instead of doing the work twice; GET, HEAD, PUT and DELETE are idempotent already. PATCH is
// never retried (tus uploads resume on their own).

export interface RetryOptions {
  /** Attempts after the first (default 3). */
  retries?: number;
  /** The first wait in milliseconds, doubled each time (default 250); `Retry-After` wins. */
  backoffMs?: number;
  /** The longest wait in milliseconds (default 10 000). */
  maxWaitMs?: number;
}

const RETRIED_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const SAFE_METHODS = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);

function sleep(ms: number): Promise<void> {
  return new Promise((ok) => setTimeout(ok, ms));
}

/** A fresh key for `Idempotency-Key`. */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}

function waitFor(response: Response | undefined, attempt: number, options: Required<RetryOptions>): number {
  const header = response?.headers.get("retry-after");
  if (header) {
    const seconds = Number(header);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
    if (Number.isFinite(ms)) return Math.min(Math.max(0, ms), options.maxWaitMs);
  }
  const exp = options.backoffMs * 2 ** attempt;
  return Math.min(exp / 2 + Math.random() * (exp / 2), options.maxWaitMs);
}

/**
 * Wraps `inner` (default `globalThis.fetch`) with retries. A 409 `idempotency-in-progress`
 * (the first request with this key still running) is retried too.
 */
export function retryingFetch(
  options: RetryOptions = {},
  inner: typeof fetch = globalThis.fetch,
): (request: Request) => Promise<Response> {
  const settings: Required<RetryOptions> = {
    retries: options.retries ?? 3,
    backoffMs: options.backoffMs ?? 250,
    maxWaitMs: options.maxWaitMs ?? 10_000,
  };
  return async (request: Request) => {
    const method = request.method.toUpperCase();
    if (method === "POST" && !request.headers.has("idempotency-key")) {
      const headers = new Headers(request.headers);
      headers.set("Idempotency-Key", idempotencyKey());
      request = new Request(request, { headers });
    }
    const retryable = SAFE_METHODS.has(method) || request.headers.has("idempotency-key");
    // The body is read once into memory so that it can be sent again.
    const body = request.body === null ? undefined : await request.arrayBuffer();
    for (let attempt = 0; ; attempt++) {
      const again = new Request(request, { body, duplex: "half" } as RequestInit);
      let response: Response | undefined;
      try {
        response = await inner(again);
      } catch (error) {
        if (!retryable || attempt >= settings.retries) throw error;
        await sleep(waitFor(undefined, attempt, settings));
        continue;
      }
      const inProgress =
        response.status === 409 && (response.headers.get("content-type") ?? "").includes("problem") &&
        (await response.clone().text()).includes("idempotency");
      if (!retryable || attempt >= settings.retries || !(RETRIED_STATUS.has(response.status) || inProgress)) {
        return response;
      }
      await response.body?.cancel();
      await sleep(waitFor(response, attempt, settings));
    }
  };
}
