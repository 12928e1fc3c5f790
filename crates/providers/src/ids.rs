//! Provider ids are kept as strings. Some arrive as JSON numbers (TikTok's 19-digit post ids,
//! Instagram-Login `user_id`), which must never pass through `f64`: these deserializers take
//! integers exactly (as `u64`/`i64`) or strings, and refuse floats.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};

struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an id as a JSON integer or string")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<String, E> {
        Err(E::custom(
            "an id arrived as a non-integer number and cannot be kept exactly",
        ))
    }
}

/// One id, from an integer or a string.
pub(crate) fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(IdVisitor)
}

/// An optional id (`null` or absent → `None`).
pub(crate) fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an optional id")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            id(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// A list of ids (`null` → empty).
pub(crate) fn id_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Seq;
    impl<'de> Visitor<'de> for Seq {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of ids")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            #[derive(serde::Deserialize)]
            struct One(#[serde(deserialize_with = "id")] String);
            let mut ids = Vec::new();
            while let Some(One(id)) = seq.next_element()? {
                ids.push(id);
            }
            Ok(ids)
        }
    }
    d.deserialize_any(Seq)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Ids {
        #[serde(deserialize_with = "super::id")]
        one: String,
        #[serde(default, deserialize_with = "super::id_list")]
        many: Vec<String>,
        #[serde(default, deserialize_with = "super::opt_id")]
        maybe: Option<String>,
    }

    #[test]
    fn nineteen_digit_numbers_stay_exact() {
        let ids: Ids = serde_json::from_str(
            r#"{"one": 7329876543210987654, "many": [8999999999999999999, "123"], "maybe": null}"#,
        )
        .unwrap();
        assert_eq!(ids.one, "7329876543210987654");
        assert_eq!(ids.many, ["8999999999999999999", "123"]);
        assert_eq!(ids.maybe, None);
    }

    #[test]
    fn floats_are_refused() {
        assert!(serde_json::from_str::<Ids>(r#"{"one": 1.5e18}"#).is_err());
        let ids: Ids =
            serde_json::from_str(r#"{"one": "17841405822304914", "many": null, "maybe": 5}"#)
                .unwrap();
        assert_eq!(ids.maybe.as_deref(), Some("5"));
        assert!(ids.many.is_empty());
    }
}
