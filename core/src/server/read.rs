//! The read path: GET of one object and LIST with label/field selectors, `limit`/`continue`
//! paging and `resourceVersion` semantics, answered as JSON lists or server-side `Table`s.

use super::body::{self, Body};
use super::objects::{self, Objects};
use super::query::Query;
use super::status::ApiError;
use crate::resources::Resource;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::table::{self, IncludeObject};
use base64::Engine;
use http::Response;
use kubelite_storage::{KeyValue, Revision};
use serde_json::{json, Value};
use std::time::Duration;

/// Parsed selectors of a list or watch.
pub struct Selectors {
    pub label: LabelSelector,
    pub field: FieldSelector,
}

impl Selectors {
    pub fn parse(r: &Resource, q: &Query) -> Result<Self, ApiError> {
        let label = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let field = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""), r)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Selectors { label, field })
    }

    pub fn is_empty(&self) -> bool {
        self.label.is_empty() && self.field.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let empty = serde_json::Map::new();
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        self.label.matches(labels) && self.field.matches(obj)
    }
}

/// Whether the Accept header asks for a `Table`.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn now_ts() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// GET of one object.
pub async fn get(
    objects: &Objects,
    r: &'static Resource,
    ns: Option<&str>,
    name: &str,
    q: &Query,
    accept: &str,
) -> Result<Response<Body>, ApiError> {
    let s = objects.must_get(r, ns, name).await?;
    if wants_table(accept) {
        let include = IncludeObject::parse(q.get("includeObject"));
        let t = table::table(
            r,
            std::slice::from_ref(&s.value),
            include,
            json!({"resourceVersion": s.revision.to_string()}),
            now_ts(),
        );
        return Ok(body::json(200, &t));
    }
    Ok(body::json_bytes(200, s.bytes))
}

/// A continue token, as Kubernetes encodes it: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>"}`.
fn encode_continue(rv: Revision, start: &str) -> String {
    let v = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

fn decode_continue(token: &str) -> Result<(Revision, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rv, start))
}

/// The items a list found, with what it needs to answer.
pub struct Listed {
    pub items: Vec<KeyValue>,
    pub revision: Revision,
    pub continue_token: Option<String>,
}

/// Resolves `resourceVersion`/`resourceVersionMatch` of a list to the revision to read at.
async fn list_revision(objects: &Objects, q: &Query) -> Result<Option<Revision>, ApiError> {
    let rv = q.get("resourceVersion").unwrap_or("");
    let rv_match = q.get("resourceVersionMatch").unwrap_or("");
    if rv.is_empty() || rv == "0" {
        if rv_match == "Exact" {
            return Err(ApiError::bad_request("resourceVersionMatch: Forbidden: resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\""));
        }
        if !rv.is_empty() || rv_match.is_empty() {
            return Ok(None);
        }
        return Err(ApiError::bad_request("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"));
    }
    let n: Revision = rv
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
    match rv_match {
        "Exact" => Ok(Some(n)),
        "" | "NotOlderThan" => {
            wait_for_revision(objects, n).await?;
            Ok(None)
        }
        other => Err(ApiError::bad_request(format!(
            "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
        ))),
    }
}

/// Waits (up to 3 s, as Kubernetes does) until the store has reached revision `n`.
pub async fn wait_for_revision(objects: &Objects, n: Revision) -> Result<(), ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while objects.backend.current_revision() < n {
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError {
                details: Some(
                    json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
                ),
                ..ApiError::timeout(format!(
                    "Too large resource version: {n}, current: {}",
                    objects.backend.current_revision()
                ))
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Lists matching objects under `prefix` with paging.
pub async fn list_items(
    objects: &Objects,
    r: &Resource,
    ns: Option<&str>,
    q: &Query,
    sel: &Selectors,
) -> Result<Listed, ApiError> {
    let limit = q.int("limit")?.unwrap_or(0).max(0) as usize;
    let prefix = objects::prefix(r, ns);
    let (mut revision, mut start) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let rv = q.get("resourceVersion").unwrap_or("");
            if !rv.is_empty() && rv != "0" {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (rv, start) = decode_continue(token)?;
            (Some(rv), Some(format!("{prefix}{start}")))
        }
        None => (list_revision(objects, q).await?, None),
    };
    let mut items = Vec::new();
    let chunk = if limit == 0 { 0 } else { limit.max(64) };
    loop {
        let page = objects.backend.list(&prefix, start.as_deref(), chunk, revision).await.map_err(|e| match e {
            kubelite_storage::Error::Compacted { .. } if q.get("continue").is_some() => ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            ),
            kubelite_storage::Error::Compacted { compacted } => {
                ApiError::expired(format!("too old resource version: {} ({compacted})", q.get("resourceVersion").unwrap_or("")))
            }
            other => other.into(),
        })?;
        revision = Some(page.revision);
        let last_key = page.kvs.last().map(|kv| kv.key.clone());
        for kv in page.kvs {
            if limit > 0 && items.len() == limit {
                let rel = kv.key.strip_prefix(&prefix).unwrap_or(&kv.key).to_string();
                return Ok(Listed {
                    items,
                    revision: page.revision,
                    continue_token: Some(encode_continue(page.revision, &rel)),
                });
            }
            if sel.is_empty()
                || objects::decode(&kv)
                    .map(|s| sel.matches(&s.value))
                    .unwrap_or(false)
            {
                items.push(kv);
            }
        }
        match (page.more, last_key) {
            (true, Some(k)) => start = Some(format!("{k}\u{0}")),
            _ => break,
        }
    }
    Ok(Listed {
        items,
        revision: revision.unwrap_or(0),
        continue_token: None,
    })
}

/// LIST as JSON or Table.
pub async fn list(
    objects: &Objects,
    r: &'static Resource,
    ns: Option<&str>,
    q: &Query,
    accept: &str,
) -> Result<Response<Body>, ApiError> {
    let sel = Selectors::parse(r, q)?;
    let listed = list_items(objects, r, ns, q, &sel).await?;
    let mut meta = json!({"resourceVersion": listed.revision.to_string()});
    if let Some(c) = &listed.continue_token {
        meta["continue"] = json!(c);
    }
    if wants_table(accept) {
        let include = IncludeObject::parse(q.get("includeObject"));
        let objs: Vec<Value> = listed
            .items
            .iter()
            .filter_map(|kv| objects::decode(kv).ok().map(|s| s.value))
            .collect();
        let t = table::table(r, &objs, include, meta, now_ts());
        return Ok(body::json(200, &t));
    }
    // Splice the stored JSON of each item: no re-encoding on the hot path.
    let head =
        json!({"kind": r.list_kind(), "apiVersion": r.api_version(), "metadata": meta}).to_string();
    let mut out = Vec::with_capacity(
        head.len()
            + 16
            + listed
                .items
                .iter()
                .map(|kv| kv.value.len() + 1)
                .sum::<usize>(),
    );
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, kv) in listed.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&kv.value);
    }
    out.extend_from_slice(b"]}");
    Ok(body::json_bytes(200, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "default/web-1\u{0}");
        assert_eq!(
            decode_continue(&t).expect("valid"),
            (42, "default/web-1\u{0}".to_string())
        );
        assert!(decode_continue("not-base64!").is_err());
    }

    #[test]
    fn table_accept_is_detected() {
        assert!(wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
        assert!(!wants_table("application/json"));
    }
}
