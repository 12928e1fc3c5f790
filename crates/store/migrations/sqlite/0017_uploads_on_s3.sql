-- Resumable (tus) uploads on S3-compatible storage, so that an upload begun on one `serve`
-- can be finished on another without a shared disk: the S3 multipart upload its bytes go to
-- (`multipart_id`), the parts already in it, and `tail`, the object holding the bytes past the
-- last part (shorter than a part, kept until a whole part can be sent). The durable offset
-- `received` is the parts' sizes plus the tail's.
ALTER TABLE uploads ADD COLUMN multipart_id TEXT;
ALTER TABLE uploads ADD COLUMN tail TEXT;

CREATE TABLE upload_parts (
    upload_id     TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL,
    number        BIGINT NOT NULL,
    etag          TEXT NOT NULL,
    size          BIGINT NOT NULL,
    PRIMARY KEY (upload_id, number)
);
