//! The streaming pod subresources the node agent serves (`pods/log` today; `exec`, `attach` and
//! `portforward` later). The API server does the apiserver's part (decode and validate
//! `PodLogOptions`, find the pod, choose the container, as `pkg/registry/core/pod/rest/log.go`
//! and `LogLocation` do) and hands the kubelet's part to the agent of this process through
//! [`NodeStreams`], which answers with a (possibly endless) response body.

use super::body::{self, Body};
use super::query::Query;
use super::status::ApiError;
use super::ApiServer;
use crate::resources;
use crate::validation::{invalid_message, Cause};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};

/// What the node agent serves. Implemented by the agent, registered in [`ApiServer::node`].
pub trait NodeStreams: Send + Sync {
    /// The log of `container` (already validated to exist in `pod`), as kubelet's
    /// `GetKubeletContainerLogs` serves it. `pod` is the stored object, status included.
    /// Errors come back before the body starts (kubelet answers them as 400).
    fn logs(
        &self,
        pod: Value,
        container: String,
        opts: LogOptions,
    ) -> BoxFuture<'static, Result<Body, ApiError>>;
}

/// `PodLogOptions` from the query string, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail_lines: Option<u64>,
    /// Stop after this many bytes of output.
    pub limit_bytes: Option<u64>,
    /// Only records at or after this time (`sinceTime`, or `sinceSeconds` before the request).
    pub since: Option<jiff::Timestamp>,
}

/// A bool query parameter as the apiserver converts it: absent is false; `0`, `f` and `false`
/// (any case) are false; anything else, the empty string included, is true.
fn flag(q: &Query, key: &str) -> bool {
    match q.get(key) {
        None => false,
        Some(v) => !(v == "0" || v.eq_ignore_ascii_case("f") || v.eq_ignore_ascii_case("false")),
    }
}

fn invalid_value(field: &str, value: i64, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        field: field.to_string(),
        message: format!("Invalid value: {value}: {detail}"),
    }
}

impl LogOptions {
    /// Decodes the query (bad values → 400, as the apiserver's parameter conversion) and
    /// validates it (`ValidatePodLogOptions` → 422 `PodLogOptions "<pod>" is invalid`).
    /// Returns the options and the `container` parameter (None when empty or absent).
    pub fn from_query(q: &Query, pod: &str) -> Result<(LogOptions, Option<String>), ApiError> {
        let tail = q.int("tailLines")?;
        let limit = q.int("limitBytes")?;
        let since_seconds = q.int("sinceSeconds")?;
        let since_time = match q.get("sinceTime") {
            None | Some("") => None,
            Some(t) => Some(t.parse::<jiff::Timestamp>().map_err(|e| {
                ApiError::bad_request(format!(
                    "parsing time {t:?} as \"2006-01-02T15:04:05Z07:00\": {e}"
                ))
            })?),
        };
        let mut causes = Vec::new();
        if let Some(t) = tail.filter(|t| *t < 0) {
            causes.push(invalid_value(
                "tailLines",
                t,
                "must be greater than or equal to 0",
            ));
        }
        if let Some(l) = limit.filter(|l| *l < 1) {
            causes.push(invalid_value("limitBytes", l, "must be greater than 0"));
        }
        match (since_seconds, since_time) {
            (Some(_), Some(_)) => causes.push(Cause {
                reason: "FieldValueForbidden",
                field: String::new(),
                message: "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
                    .into(),
            }),
            (Some(s), None) if s < 1 => {
                causes.push(invalid_value("sinceSeconds", s, "must be greater than 0"))
            }
            _ => {}
        }
        if !causes.is_empty() {
            return Err(ApiError {
                details: Some(json!({
                    "name": pod,
                    "kind": "PodLogOptions",
                    "causes": causes.iter().map(|c| {
                        let mut v = json!({"reason": c.reason, "message": c.message});
                        if !c.field.is_empty() {
                            v["field"] = json!(c.field);
                        }
                        v
                    }).collect::<Vec<_>>(),
                })),
                ..ApiError::new(
                    422,
                    "Invalid",
                    invalid_message("PodLogOptions", pod, &causes),
                )
            });
        }
        let since = match (since_seconds, since_time) {
            (Some(s), _) => jiff::Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_secs(s))
                .ok(),
            (None, t) => t,
        };
        let opts = LogOptions {
            follow: flag(q, "follow"),
            previous: flag(q, "previous"),
            timestamps: flag(q, "timestamps"),
            tail_lines: tail.map(|t| t as u64),
            limit_bytes: limit.map(|l| l as u64),
            since,
        };
        let container = q.get("container").filter(|c| !c.is_empty());
        Ok((opts, container.map(str::to_string)))
    }
}

/// The names of a pod's `containers`, `initContainers` or `ephemeralContainers`.
pub(super) fn names(pod: &Value, field: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The apiserver's `validateContainer`: the requested container must exist (init, regular or
/// ephemeral); without one, a pod with exactly one container uses it, otherwise 400 with
/// every container name (init containers first, as `VisitContainers` orders them).
pub fn choose_container(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let regular = names(pod, "containers");
    let mut all = names(pod, "initContainers");
    all.extend(regular.iter().cloned());
    all.extend(names(pod, "ephemeralContainers"));
    match requested {
        Some(c) if all.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None => match regular.len() {
            1 => Ok(regular[0].clone()),
            0 => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}"
            ))),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                all.join(" ")
            ))),
        },
    }
}

/// A response body fed by a channel: every message is sent to the client as it comes (one
/// chunk each), and the body ends when the sender is dropped. The receiver goes away when the
/// client does, which the sender sees as a closed channel.
pub fn channel_body(rx: tokio::sync::mpsc::Receiver<Vec<u8>>) -> Body {
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((
            Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(chunk))),
            rx,
        ))
    });
    http_body_util::StreamBody::new(frames).boxed()
}

/// `GET /api/v1/namespaces/<ns>/pods/<name>/log`.
pub async fn pod_log(
    server: &ApiServer,
    ns: &str,
    name: &str,
    q: &Query,
) -> Result<Response<Body>, ApiError> {
    let (opts, requested) = LogOptions::from_query(q, name)?;
    let pods =
        resources::find("", "v1", "pods").ok_or_else(|| ApiError::internal("no pods resource"))?;
    let pod = server
        .writer
        .objects
        .must_get(pods, Some(ns), name)
        .await?
        .value;
    let container = choose_container(&pod, requested.as_deref())?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node_name.is_empty() {
        // Not scheduled: the apiserver has no location and answers with no content.
        let mut r = Response::new(body::full(Bytes::new()));
        *r.status_mut() = StatusCode::NO_CONTENT;
        return Ok(r);
    }
    // The apiserver looks the node up to reach its kubelet.
    let nodes = resources::find("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("no nodes resource"))?;
    server
        .writer
        .objects
        .must_get(nodes, None, node_name)
        .await?;
    let Some(node) = server.node.get().cloned() else {
        return Err(ApiError::new(
            503,
            "ServiceUnavailable",
            format!(
                "pod logs are served by the node agent, which does not run in this server (node {node_name:?})"
            ),
        ));
    };
    let body = node.logs(pod, container, opts).await?;
    let mut r = Response::new(body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s))
    }

    #[test]
    fn options_decode() {
        let (o, c) = LogOptions::from_query(
            &q("container=c1&follow=true&previous=1&timestamps=&tailLines=3&limitBytes=10"),
            "p",
        )
        .unwrap();
        assert_eq!(c.as_deref(), Some("c1"));
        assert!(o.follow && o.previous && o.timestamps);
        assert_eq!((o.tail_lines, o.limit_bytes), (Some(3), Some(10)));
        let (o, c) = LogOptions::from_query(&q("follow=false&previous=F&container="), "p").unwrap();
        assert!(!o.follow && !o.previous && c.is_none());
        let (o, _) = LogOptions::from_query(&q("sinceTime=2024-05-01T10:00:00Z"), "p").unwrap();
        assert_eq!(o.since.unwrap().to_string(), "2024-05-01T10:00:00Z");
        let before = jiff::Timestamp::now();
        let (o, _) = LogOptions::from_query(&q("sinceSeconds=60"), "p").unwrap();
        let s = o.since.unwrap();
        assert!(
            s <= before
                .checked_sub(jiff::SignedDuration::from_secs(59))
                .unwrap()
        );
        assert_eq!(
            LogOptions::from_query(&q("tailLines=x"), "p")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            LogOptions::from_query(&q("sinceTime=yesterday"), "p")
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn options_validate_like_kubernetes() {
        let e = LogOptions::from_query(&q("tailLines=-1"), "p").unwrap_err();
        assert_eq!((e.code, e.reason), (422, "Invalid"));
        assert_eq!(
            e.message,
            "PodLogOptions \"p\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        let e = LogOptions::from_query(&q("limitBytes=0&sinceSeconds=0"), "p").unwrap_err();
        assert_eq!(
            e.message,
            "PodLogOptions \"p\" is invalid: [limitBytes: Invalid value: 0: must be greater than 0, sinceSeconds: Invalid value: 0: must be greater than 0]"
        );
        let e = LogOptions::from_query(&q("sinceSeconds=5&sinceTime=2024-05-01T10:00:00Z"), "p")
            .unwrap_err();
        assert_eq!(
            e.message,
            "PodLogOptions \"p\" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
        );
        assert_eq!(e.details.unwrap()["kind"], "PodLogOptions");
    }

    #[test]
    fn container_choice() {
        let pod = json!({"metadata": {"name": "x"}, "spec": {
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(choose_container(&pod, Some("b")).unwrap(), "b");
        assert_eq!(choose_container(&pod, Some("i")).unwrap(), "i");
        let e = choose_container(&pod, None).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                400,
                "a container name must be specified for pod x, choose one of: [i a b]"
            )
        );
        let e = choose_container(&pod, Some("c")).unwrap_err();
        assert_eq!(e.message, "container c is not valid for pod x");
        let one = json!({"metadata": {"name": "y"}, "spec": {"containers": [{"name": "only"}]}});
        assert_eq!(choose_container(&one, None).unwrap(), "only");
    }
}
