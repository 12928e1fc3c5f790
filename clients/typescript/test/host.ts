// A pretend host application for the tests: it receives the creator back on `/back` and
// tidepost's webhooks on `/hooks`, keeping each raw body and its headers.

import { createServer, type IncomingHttpHeaders } from "node:http";

export interface Delivery {
  body: string;
  headers: IncomingHttpHeaders;
}

export interface Host {
  origin: string;
  deliveries: Delivery[];
  /** Resolves when a delivery satisfies `test` (or rejects after `timeoutMs`). */
  waitFor(test: (delivery: Delivery) => boolean, timeoutMs?: number): Promise<Delivery>;
  close(): Promise<void>;
}

export async function startHost(): Promise<Host> {
  const deliveries: Delivery[] = [];
  const waiting: (() => void)[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      if (request.url?.startsWith("/hooks")) {
        deliveries.push({ body: Buffer.concat(chunks).toString("utf8"), headers: request.headers });
        for (const wake of waiting.splice(0)) wake();
      }
      response.writeHead(200, { "content-type": "text/plain" }).end("ok");
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    origin: `http://127.0.0.1:${port}`,
    deliveries,
    waitFor(test, timeoutMs = 60_000) {
      return new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`no matching delivery in ${timeoutMs} ms`)), timeoutMs);
        const look = () => {
          const found = deliveries.find(test);
          if (found) {
            clearTimeout(timer);
            ok(found);
          } else {
            waiting.push(look);
          }
        };
        look();
      });
    },
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}
