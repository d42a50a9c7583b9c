//! Request bodies in (JSON, YAML, Kubernetes protobuf) and responses out (JSON bytes with the
//! right status code, content type and `Warning` headers).

use super::status::ApiError;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use serde_json::Value;

/// The response body type of every handler (full or streamed).
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Largest request body accepted (Kubernetes allows 3 MiB objects; leave room for patches).
pub const MAX_BODY: usize = 3 * 1024 * 1024 + 64 * 1024;

/// A full body.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A JSON response with `code`.
pub fn json_bytes(code: u16, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(bytes));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A JSON response of a value.
pub fn json(code: u16, v: &Value) -> Response<Body> {
    json_bytes(code, serde_json::to_vec(v).unwrap_or_default())
}

/// An error response (`Status`).
pub fn error(e: &ApiError) -> Response<Body> {
    json(e.code, &e.to_status())
}

/// Adds `Warning: 299 - "<text>"` headers.
pub fn add_warnings(r: &mut Response<Body>, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append("Warning", v);
        }
    }
}

/// The media type of a Content-Type header, lowercased, without parameters.
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes a request body according to its Content-Type (JSON when absent, as kubectl's
/// `scale --current-replicas` sends no Content-Type). Returns the value and the raw JSON bytes
/// (for duplicate-field detection) when the body was JSON.
pub fn decode(
    content_type: Option<&str>,
    raw: &[u8],
    kind_hint: &str,
) -> Result<(Value, Option<Vec<u8>>), ApiError> {
    let mt = media_type(content_type);
    match mt.as_str() {
        "application/json"
        | ""
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json" => {
            let v: Value = serde_json::from_slice(raw).map_err(|e| {
                ApiError::bad_request(format!("{kind_hint}: error decoding JSON body: {e}"))
            })?;
            Ok((v, Some(raw.to_vec())))
        }
        "application/yaml"
        | "application/apply-patch+yaml"
        | "application/x-yaml"
        | "text/yaml" => {
            // YAML is a superset of JSON: JSON bodies (kubectl sends JSON as apply-patch+yaml) parse here too.
            if let Ok(v) = serde_json::from_slice::<Value>(raw) {
                return Ok((v, Some(raw.to_vec())));
            }
            let v: Value = serde_yaml_ng::from_slice(raw).map_err(|e| {
                ApiError::bad_request(format!("{kind_hint}: error decoding YAML body: {e}"))
            })?;
            Ok((v, None))
        }
        crate::protobuf::CONTENT_TYPE => {
            let v = crate::protobuf::decode(raw).map_err(|e| {
                ApiError::bad_request(format!("{kind_hint}: error decoding protobuf body: {e}"))
            })?;
            Ok((v, None))
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}
