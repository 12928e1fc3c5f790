//! Identifiers. Every row id is a UUIDv7 in text form: sortable by creation time, unguessable
//! enough for URLs, and the same type on SQLite and PostgreSQL. Provider ids are kept as the
//! strings the providers send (TikTok's 19-digit post ids do not survive a float).

/// A new time-ordered identifier.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether `s` looks like one of our ids (used to answer 404 early on garbage path parameters).
pub fn is_id(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}
