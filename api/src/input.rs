//! Turning requests into values: JSON bodies, query parameters and path
//! ids. Every rejection is a 400 in the API's error shape that names the
//! offending field (`alerting.webhooks[0]`, `limit`, `id`), never axum's
//! plain-text default.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Query parameters as given (decoding errors already mapped).
pub type Params = HashMap<String, String>;

/// Parses a JSON object body into `T`, naming the field on failure.
/// `objects` are the top-level keys holding nested structs: serde would
/// also accept those as arrays (`[null, 5]`), so anything but an object is
/// refused there first.
pub fn json_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    objects: &[&str],
) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(MAX_BODY_BYTES)
        } else {
            ApiError::invalid_json(format!("cannot read the request body: {rejection}"))
        }
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json(
            "the request body is empty; expected a JSON object",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_json(format!("the request body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid_json(
            "the request body must be a JSON object",
        ));
    }
    for key in objects {
        if value.get(*key).is_some_and(|nested| !nested.is_object()) {
            return Err(ApiError::invalid_field(*key, "must be a JSON object"));
        }
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        // `unknown field `x`` and `missing field `x`` are reported at the
        // enclosing object; name the field itself.
        let named = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|prefix| inner.strip_prefix(prefix))
            .and_then(|rest| rest.split('`').next());
        let field = match (named, path.as_str()) {
            (Some(name), ".") => name.to_string(),
            // serde_path_to_error already ends the path of an unknown field
            // with its name.
            (Some(name), path) if path == name || path.ends_with(&format!(".{name}")) => {
                path.to_string()
            }
            (Some(name), parent) => format!("{parent}.{name}"),
            (None, path) => path.to_string(),
        };
        let message = match inner.split_once(", expected one of") {
            Some((head, _)) if inner.starts_with("unknown field") => head.to_string(),
            _ => inner,
        };
        ApiError::invalid_field(field, message)
    })
}

/// The query parameters, or 400 when the query string cannot be decoded.
pub fn params(query: Result<Query<Params>, QueryRejection>) -> Result<Params, ApiError> {
    query
        .map(|Query(params)| params)
        .map_err(|e| ApiError::invalid_field("query", format!("bad query string: {e}")))
}

/// A numeric path id, or 400 naming `id`.
pub fn path_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let Path(text) = path.map_err(|_| ApiError::invalid_field("id", "must be an integer"))?;
    text.parse::<i64>()
        .map_err(|_| ApiError::invalid_field("id", format!("`{text}` is not an integer id")))
}

/// `limit` (1..=`max`, default `default`).
pub fn limit(params: &Params, default: u32, max: u32) -> Result<u32, ApiError> {
    match params.get("limit") {
        None => Ok(default),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid_field(
                "limit",
                format!("must be an integer from 1 to {max}"),
            )),
        },
    }
}

/// A boolean flag (`true`/`false`, default false).
pub fn flag(params: &Params, name: &str) -> Result<bool, ApiError> {
    match params.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::invalid_field(name, "must be true or false")),
    }
}

/// An optional integer parameter.
pub fn optional_i64(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| ApiError::invalid_field(name, "must be an integer"))
        })
        .transpose()
}

/// An optional team-name parameter (checked like stored team names).
pub fn optional_team(params: &Params, name: &str) -> Result<Option<String>, ApiError> {
    params
        .get(name)
        .map(|team| team_name(name, team))
        .transpose()
}

/// A team name, or 400 naming `field`.
pub fn team_name(field: &str, team: &str) -> Result<String, ApiError> {
    if lagwatch_store::is_valid_team_name(team) {
        Ok(team.to_string())
    } else {
        Err(ApiError::invalid_field(
            field,
            "must be 1 to 64 characters of a-z A-Z 0-9 . _ -",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        #[serde(default)]
        inner: Inner,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        urls: Vec<String>,
        #[serde(default)]
        secs: Option<u64>,
    }

    fn parse(text: &str) -> Result<Outer, ApiError> {
        json_body(Ok(Bytes::from(text.to_string())), &["inner"])
    }

    fn field(text: &str) -> (String, Option<String>) {
        let error = parse(text).expect_err(text);
        (error.code.to_string(), error.field)
    }

    #[test]
    fn rejections_name_the_field() {
        assert_eq!(field("{"), ("invalid_json".into(), None));
        assert_eq!(field(""), ("invalid_json".into(), None));
        assert_eq!(field("[1]"), ("invalid_json".into(), None));
        assert_eq!(field("{}"), ("invalid_field".into(), Some("name".into())));
        assert_eq!(
            field(r#"{"name": "a", "nmae": 1}"#),
            ("invalid_field".into(), Some("nmae".into()))
        );
        assert_eq!(
            field(r#"{"name": "a", "inner": {"secs": -1}}"#),
            ("invalid_field".into(), Some("inner.secs".into()))
        );
        assert_eq!(
            field(r#"{"name": "a", "inner": {"urls": ["x", 3]}}"#),
            ("invalid_field".into(), Some("inner.urls[1]".into()))
        );
        assert_eq!(
            field(r#"{"name": "a", "inner": {"bogus": 1}}"#),
            ("invalid_field".into(), Some("inner.bogus".into()))
        );
        assert_eq!(
            field(r#"{"name": "a", "inner": [null, 5]}"#),
            ("invalid_field".into(), Some("inner".into()))
        );
        assert!(parse(r#"{"name": "a"}"#).is_ok());
    }

    #[test]
    fn query_values_are_checked() {
        let mut params = Params::new();
        assert_eq!(limit(&params, 100, 1000), Ok(100));
        params.insert("limit".into(), "0".into());
        assert_eq!(
            limit(&params, 100, 1000).expect_err("0").field.as_deref(),
            Some("limit")
        );
        params.insert("all".into(), "yes".into());
        assert!(flag(&params, "all").is_err());
        params.insert("team".into(), "a b".into());
        assert!(optional_team(&params, "team").is_err());
    }
}
