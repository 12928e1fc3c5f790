//! Graph's `fields` parameter (`id,name,picture.type(large),replies{id,text}`) and cursor paging
//! (`{"data":[..],"paging":{"cursors":{"before","after"},"next"}}`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::call::Call;
use super::errors::{self, GraphResult};

/// One requested field with its `{…}` sub-fields; `.modifiers(…)` are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: String,
    pub sub: Vec<FieldSpec>,
}

/// Parses `fields`, or returns `defaults` when it is absent.
pub fn requested(fields: Option<&str>, defaults: &[&str]) -> Vec<FieldSpec> {
    match fields {
        Some(text) => parse(text),
        None => defaults
            .iter()
            .map(|d| FieldSpec {
                name: (*d).to_string(),
                sub: Vec::new(),
            })
            .collect(),
    }
}

/// Splits at top-level commas; nested `{}` become sub-fields.
pub fn parse(text: &str) -> Vec<FieldSpec> {
    let mut specs = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, ch) in text.char_indices() {
        match ch {
            '{' | '(' => depth += 1,
            '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                specs.extend(parse_one(&text[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    specs.extend(parse_one(&text[start..]));
    specs
}

fn parse_one(item: &str) -> Option<FieldSpec> {
    let item = item.trim();
    let end = item.find(['.', '{', '(']).unwrap_or(item.len());
    let name = item[..end].trim();
    if name.is_empty() {
        return None;
    }
    let sub = match (item.find('{'), item.rfind('}')) {
        (Some(open), Some(close)) if close > open => parse(&item[open + 1..close]),
        _ => Vec::new(),
    };
    Some(FieldSpec {
        name: name.to_string(),
        sub,
    })
}

/// Keeps the requested fields of `full` (absent ones are omitted, as Graph does for empty
/// values) plus `id`; a field not in `known` is Graph's "nonexisting field" error.
pub fn select(
    full: &Map<String, Value>,
    specs: &[FieldSpec],
    known: &[&str],
    node_type: &str,
) -> GraphResult {
    let mut out = Map::new();
    for spec in specs {
        if !known.contains(&spec.name.as_str()) {
            return Err(errors::nonexisting_field(&spec.name, node_type));
        }
        if let Some(value) = full.get(&spec.name) {
            out.insert(spec.name.clone(), value.clone());
        }
    }
    // Graph answers a node's `id` even when it was not asked for.
    if let Some(id) = full.get("id") {
        out.entry("id").or_insert_with(|| id.clone());
    }
    Ok(Value::Object(out))
}

/// The sub-fields asked for `name`, or `defaults`.
pub fn sub_fields(specs: &[FieldSpec], name: &str, defaults: &[&str]) -> Vec<FieldSpec> {
    match specs.iter().find(|s| s.name == name) {
        Some(spec) if !spec.sub.is_empty() => spec.sub.clone(),
        _ => requested(None, defaults),
    }
}

fn cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// One page of `items` (id, rendered object) by `limit` (default 25) and `after`/`before`
/// cursors; `next`/`previous` URLs repeat the request with the right cursor.
pub fn paginate(call: &Call, items: Vec<(String, Value)>) -> GraphResult {
    let limit = match call.params.get("limit") {
        None => 25,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| errors::invalid_param("Param limit must be a positive integer"))?
            .min(500),
    };
    let position = |param: &str| -> GraphResult<Option<usize>> {
        let Some(raw) = call.params.get(param) else {
            return Ok(None);
        };
        let id = decode_cursor(raw)
            .ok_or_else(|| errors::invalid_param(format!("Invalid {param} cursor")))?;
        items
            .iter()
            .position(|(item_id, _)| *item_id == id)
            .map(Some)
            .ok_or_else(|| errors::invalid_param(format!("Invalid {param} cursor")))
    };
    let (start, end) = match (position("after")?, position("before")?) {
        (Some(after), _) => (after + 1, (after + 1 + limit).min(items.len())),
        (None, Some(before)) => (before.saturating_sub(limit), before),
        (None, None) => (0, limit.min(items.len())),
    };
    let page = &items[start.min(end)..end];
    let data: Vec<Value> = page.iter().map(|(_, v)| v.clone()).collect();
    let (Some(first), Some(last)) = (page.first(), page.last()) else {
        return Ok(json!({ "data": data }));
    };
    let (before, after) = (cursor(&first.0), cursor(&last.0));
    let mut paging = json!({ "cursors": { "before": before, "after": after } });
    if end < items.len() {
        paging["next"] = json!(call.url_with(&[("after", &after)]));
    }
    if start > 0 {
        paging["previous"] = json!(call.url_with(&[("before", &before)]));
    }
    Ok(json!({ "data": data, "paging": paging }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_fields() {
        let specs = parse("id,picture.type(large),replies{id,text},name");
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["id", "picture", "replies", "name"]);
        assert_eq!(specs[2].sub.len(), 2);
    }
}
