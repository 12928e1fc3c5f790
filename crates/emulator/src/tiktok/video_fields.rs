//! What the Display API's video endpoints ([`super::video_list`], [`super::video_query`]) share:
//! the `fields` query parameter (required, comma-separated, each a documented video field), the
//! fields that do not depend on the endpoint, and a video built from only the requested fields.

use serde_json::{Map, Value, json};

use super::errors::ApiError;

/// The video fields the Display API documents.
const VIDEO_FIELDS: &[&str] = &[
    "id",
    "title",
    "video_description",
    "create_time",
    "cover_image_url",
    "share_url",
    "embed_html",
    "embed_link",
    "duration",
    "height",
    "width",
    "like_count",
    "comment_count",
    "share_count",
    "view_count",
];

/// The fields a request's query string (`?fields=a,b`) asks for: required, and each one known.
pub(crate) fn requested(raw_query: Option<&str>) -> Result<Vec<String>, ApiError> {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(raw_query.unwrap_or_default()).unwrap_or_default();
    let fields: Vec<String> = params
        .iter()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| {
            v.split(',')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if fields.is_empty() {
        return Err(ApiError::invalid_params(
            "The fields query parameter is required.",
        ));
    }
    if let Some(unknown) = fields.iter().find(|f| !VIDEO_FIELDS.contains(&f.as_str())) {
        return Err(ApiError::invalid_params(format!(
            "Unknown field: {unknown}."
        )));
    }
    Ok(fields)
}

/// A field that is the same whichever endpoint reports it (links and dimensions derive from the
/// video id alone), or `None` for the endpoint's own (text, times, counts).
pub(crate) fn fixed(id: u64, name: &str) -> Option<Value> {
    Some(match name {
        "id" => json!(id.to_string()),
        "cover_image_url" => json!(format!(
            "https://p16-sign.tiktokcdn.com/emulator/cover/{id}.jpeg"
        )),
        "share_url" => json!(format!("https://www.tiktok.com/video/{id}")),
        "embed_html" => json!(format!(
            "<blockquote class=\"tiktok-embed\" data-video-id=\"{id}\"></blockquote>"
        )),
        "embed_link" => json!(format!("https://www.tiktok.com/embed/v2/{id}")),
        "duration" => json!(15),
        "height" => json!(1920),
        "width" => json!(1080),
        _ => return None,
    })
}

/// A video object holding exactly `fields`, each valued by `field`.
pub(crate) fn video(fields: &[String], mut field: impl FnMut(&str) -> Value) -> Value {
    let mut video = Map::new();
    for name in fields {
        video.insert(name.clone(), field(name));
    }
    Value::Object(video)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_required_and_known() {
        assert_eq!(
            requested(Some("fields=id,%20title,,view_count")).unwrap(),
            ["id", "title", "view_count"]
        );
        assert!(requested(None).is_err());
        assert!(requested(Some("fields=")).is_err());
        assert!(requested(Some("fields=id,colour")).is_err());
    }

    #[test]
    fn a_video_holds_only_the_requested_fields() {
        let fields = ["share_url".to_string(), "title".to_string()];
        let v = video(&fields, |name| fixed(7, name).unwrap_or(json!("t")));
        assert_eq!(
            v,
            json!({ "share_url": "https://www.tiktok.com/video/7", "title": "t" })
        );
        assert_eq!(fixed(7, "view_count"), None);
    }
}
