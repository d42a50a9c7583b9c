//! WATCH: a chunked stream of `{"type":..., "object":...}` events from a revision, filtered by
//! namespace and selectors (objects leaving the selection are DELETED, entering are ADDED),
//! with synthetic ADDED events for `resourceVersion` "" or "0", BOOKMARKs when asked for,
//! `timeoutSeconds`, and 410 `Expired` as an ERROR event.

use super::body::Body;
use super::objects::{self, Objects};
use super::query::Query;
use super::read::{wait_for_revision, Selectors};
use super::status::ApiError;
use crate::resources::Resource;
use crate::table::{self, IncludeObject};
use bytes::Bytes;
use http::{HeaderValue, Response};
use http_body_util::BodyExt;
use hyper::body::Frame;
use kubelite_storage::{Revision, TryNext};
use serde_json::{json, Value};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often an idle watch with `allowWatchBookmarks` gets a BOOKMARK.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(15);
/// The longest a watch stays open without `timeoutSeconds` (Kubernetes: 30–60 min).
const MAX_WATCH: Duration = Duration::from_secs(1800);

struct Encoder {
    resource: &'static Resource,
    table: Option<IncludeObject>,
    columns_sent: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, obj: &Value) -> Bytes {
        let object = match self.table {
            Some(include) => {
                let mut t = table::table(
                    self.resource,
                    std::slice::from_ref(obj),
                    include,
                    json!({}),
                    jiff::Timestamp::now(),
                );
                if self.columns_sent {
                    if let Some(m) = t.as_object_mut() {
                        m.remove("columnDefinitions");
                    }
                }
                self.columns_sent = true;
                if let Some(rv) = obj.pointer("/metadata/resourceVersion") {
                    t["metadata"] = json!({"resourceVersion": rv});
                }
                t
            }
            None => obj.clone(),
        };
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&self, rev: Revision) -> Bytes {
        let obj = json!({"kind": self.resource.kind, "apiVersion": self.resource.api_version(), "metadata": {"resourceVersion": rev.to_string()}});
        let mut line =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": obj})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

fn error_event(e: &ApiError) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

type Tx = mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

async fn send(tx: &Tx, b: Bytes) -> bool {
    tx.send(Ok(Frame::data(b))).await.is_ok()
}

/// Starts a watch and answers with its stream.
pub async fn watch(
    objects: &Objects,
    r: &'static Resource,
    ns: Option<&str>,
    q: &Query,
    table: Option<IncludeObject>,
) -> Result<Response<Body>, ApiError> {
    let sel = Selectors::parse(r, q)?;
    let rv = q.get("resourceVersion").unwrap_or("").to_string();
    let bookmarks = q.flag("allowWatchBookmarks");
    let timeout = match q.int("timeoutSeconds")? {
        Some(s) if s > 0 => Duration::from_secs(s as u64).min(MAX_WATCH),
        _ => MAX_WATCH,
    };
    let prefix = objects::prefix(r, ns);
    let send_initial = rv.is_empty() || rv == "0";
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(64);
    let mut enc = Encoder {
        resource: r,
        table,
        columns_sent: false,
    };

    // Resolve the starting point before answering, so a bad revision is reported in-stream.
    let mut initial = Vec::new();
    let from: Result<Revision, ApiError> = if send_initial {
        match objects.backend.list(&prefix, None, 0, None).await {
            Ok(page) => {
                for kv in page.kvs {
                    if let Ok(s) = objects::decode(&kv) {
                        if sel.matches(&s.value) {
                            initial.push(s.value);
                        }
                    }
                }
                Ok(page.revision)
            }
            Err(e) => Err(e.into()),
        }
    } else {
        match rv.parse::<Revision>() {
            Ok(n) => wait_for_revision(objects, n).await.map(|_| n),
            Err(_) => Err(ApiError::bad_request(format!(
                "invalid resource version: {rv}"
            ))),
        }
    };
    let watcher = match from {
        Ok(from) => objects
            .backend
            .watch(&prefix, from)
            .await
            .map_err(|e| match e {
                kubelite_storage::Error::Compacted { compacted } => {
                    ApiError::expired(format!("too old resource version: {rv} ({compacted})"))
                }
                other => other.into(),
            }),
        Err(e) => Err(e),
    };

    let backend = objects.backend.clone();
    tokio::spawn(async move {
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                let _ = send(&tx, error_event(&e)).await;
                return;
            }
        };
        for obj in &initial {
            if !send(&tx, enc.event("ADDED", obj)).await {
                return;
            }
        }
        drop(initial);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        loop {
            let ev = tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    match watcher.try_next() {
                        TryNext::Event(ev) => ev,
                        TryNext::Closed => return,
                        TryNext::Empty => {
                            // Everything up to the current revision has been delivered.
                            let rev = backend.current_revision();
                            if !send(&tx, enc.bookmark(rev)).await {
                                return;
                            }
                            continue;
                        }
                    }
                }
                ev = watcher.next() => match ev {
                    Some(ev) => ev,
                    None => return,
                },
            };
            let Some((change, object)) = super::client::classify(&sel, &ev) else {
                continue;
            };
            if !send(&tx, enc.event(change.as_str(), &object)).await {
                return;
            }
        }
    });

    let body: Body = BodyExt::boxed(ChannelBody { rx });
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

/// A response body fed by a channel (one frame per watch event).
struct ChannelBody {
    rx: mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx)
    }
}
