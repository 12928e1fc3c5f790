// tus 1.0 resumable uploads to `/api/v1/uploads` with `tus-js-client` (Node Buffers and
// streams, browser Files and Blobs, progress, resuming after a dropped connection). The
// finished upload is stored media: its id is what a post names.

import type { Readable } from "node:stream";
import { Upload } from "tus-js-client";

/**
 * What can be uploaded: a browser `File`/`Blob`, a Node `Buffer`/`Uint8Array` or a readable
 * stream. A stream is destroyed when the upload ends: to upload an incoming HTTP request's
 * body and still answer it, pass `request.pipe(new PassThrough())`.
 */
export type UploadInput = Blob | Uint8Array | Readable;

export interface UploadOptions {
  /** The file's name (default: the `File`'s name, else `upload`). */
  fileName?: string;
  /** Its media type (default: the `Blob`'s type). */
  contentType?: string;
  /** The size in bytes: required for a stream, read from the others. */
  size?: number;
  /** Bytes per PATCH (default 8 MiB); a stream is read this much at a time. */
  chunkSize?: number;
  /** Called as bytes are sent. */
  onProgress?: (sent: number, total: number) => void;
  /** Stops the upload (it can be resumed later from its URL). */
  signal?: AbortSignal;
}

export interface UploadResult {
  /** The upload's URL (HEAD/PATCH/DELETE). */
  url: string;
  /** The stored media's id (`media_id` of a post). */
  mediaId: string;
}

function isBlob(input: UploadInput): input is Blob {
  return typeof Blob !== "undefined" && input instanceof Blob;
}

function isBytes(input: UploadInput): input is Uint8Array {
  return input instanceof Uint8Array;
}

/** Uploads `input` to the tidepost at `baseUrl` with `apiKey`: the stored media's id. */
export function uploadWithTus(
  baseUrl: string,
  apiKey: string,
  input: UploadInput,
  options: UploadOptions = {},
): Promise<UploadResult> {
  let source: unknown = input;
  let size = options.size;
  let fileName = options.fileName;
  let contentType = options.contentType;
  if (isBlob(input)) {
    size ??= input.size;
    contentType ??= input.type || undefined;
    if ("name" in input && typeof input.name === "string") fileName ??= input.name;
  } else if (isBytes(input)) {
    size ??= input.byteLength;
    // tus-js-client reads Node Buffers (and browser Blobs); a plain Uint8Array becomes one.
    source = typeof Buffer !== "undefined" && !Buffer.isBuffer(input) ? Buffer.from(input) : input;
  } else if (size === undefined) {
    return Promise.reject(new TypeError("uploading a stream needs options.size (its length in bytes)"));
  }
  const metadata: Record<string, string> = { filename: fileName ?? "upload" };
  if (contentType) metadata.filetype = contentType;
  const chunkSize = options.chunkSize ?? 8 * 1024 * 1024;
  return new Promise<UploadResult>((resolve, reject) => {
    let mediaId: string | undefined;
    // Node streams are read by tus-js-client's Node file reader, which its types leave out.
    const upload = new Upload(source as ConstructorParameters<typeof Upload>[0], {
      endpoint: new URL("/api/v1/uploads", baseUrl).toString(),
      headers: { Authorization: `Bearer ${apiKey}` },
      metadata,
      uploadSize: size ?? null,
      chunkSize,
      retryDelays: [0, 500, 2000, 5000],
      storeFingerprintForResuming: false,
      onProgress: options.onProgress ?? null,
      onAfterResponse: (_request, response) => {
        mediaId = response.getHeader("Tidepost-Media-Id") ?? mediaId;
      },
      onError: (error) => reject(error),
      onSuccess: () => {
        if (!upload.url) return reject(new Error("the upload finished without a URL"));
        if (!mediaId) {
          return reject(new Error("the upload finished but tidepost named no media (Tidepost-Media-Id)"));
        }
        resolve({ url: upload.url, mediaId });
      },
    });
    options.signal?.addEventListener(
      "abort",
      () => {
        void upload.abort(false);
        reject(options.signal?.reason ?? new Error("upload aborted"));
      },
      { once: true },
    );
    upload.start();
  });
}
