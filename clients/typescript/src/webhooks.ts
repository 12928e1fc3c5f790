// Standard Webhooks verification of tidepost's outbound events, with the `standardwebhooks`
// package: the signature over the raw body, the timestamp within five minutes.

import { Webhook, WebhookVerificationError } from "standardwebhooks";

/** An outbound event as tidepost sends it. */
export interface TidepostEvent<D = Record<string, unknown>> {
  /** `account.connected`, `post.published`, … */
  type: string;
  /** RFC 3339. */
  timestamp: string;
  data: D;
  [member: string]: unknown;
}

export { WebhookVerificationError };

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function plainHeaders(headers: HeaderSource): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers instanceof Headers) {
    headers.forEach((value, name) => {
      out[name.toLowerCase()] = value;
    });
    return out;
  }
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** Verifies deliveries signed with one endpoint's secret (`whsec_…`). */
export class WebhookVerifier {
  readonly #webhook: Webhook;

  constructor(secret: string) {
    this.#webhook = new Webhook(secret);
  }

  /**
   * The event, if `body` (the raw bytes or text as received: never re-serialized JSON) was
   * signed with the secret within the tolerance; otherwise throws
   * {@link WebhookVerificationError}. `headers`: a `Headers` or Node's `req.headers`.
   */
  verify<D = Record<string, unknown>>(body: string | Uint8Array, headers: HeaderSource): TidepostEvent<D> {
    const text = typeof body === "string" ? body : new TextDecoder().decode(body);
    return this.#webhook.verify(text, plainHeaders(headers)) as TidepostEvent<D>;
  }
}
