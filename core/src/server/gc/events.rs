//! Event TTL (kube-apiserver's `--event-ttl`): Events are removed once their last activity
//! (`lastTimestamp`, `eventTime`, `series.lastObservedTime`, ..., or `creationTimestamp`) is
//! older than the TTL. Kubernetes does this with an etcd lease per event; here a sweep over
//! core/v1 and events.k8s.io/v1 Events runs periodically.

use crate::resources::{self, Resource};
use crate::server::objects;
use crate::server::status::ApiError;
use crate::server::write::{DeleteOptions, Writer};
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// Objects read per list page.
const PAGE: usize = 500;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct EventMeta {
    name: String,
    namespace: Option<String>,
    uid: String,
    creation_timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Series {
    last_observed_time: Option<String>,
}

/// The timestamps of a core/v1 or events.k8s.io/v1 Event.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct EventTimes {
    metadata: Option<EventMeta>,
    first_timestamp: Option<String>,
    last_timestamp: Option<String>,
    event_time: Option<String>,
    deprecated_first_timestamp: Option<String>,
    deprecated_last_timestamp: Option<String>,
    series: Option<Series>,
}

impl EventTimes {
    /// The latest of the event's timestamps (None when none parses).
    fn last_activity(&self) -> Option<jiff::Timestamp> {
        let meta = self.metadata.as_ref();
        [
            self.last_timestamp.as_deref(),
            self.first_timestamp.as_deref(),
            self.event_time.as_deref(),
            self.deprecated_last_timestamp.as_deref(),
            self.deprecated_first_timestamp.as_deref(),
            self.series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_deref()),
            meta.and_then(|m| m.creation_timestamp.as_deref()),
        ]
        .into_iter()
        .flatten()
        .filter_map(|s| s.parse::<jiff::Timestamp>().ok())
        .max()
    }
}

/// The Event resources the TTL applies to.
fn event_resources() -> impl Iterator<Item = &'static Resource> {
    [
        resources::find("", "v1", "events"),
        resources::find("events.k8s.io", "v1", "events"),
    ]
    .into_iter()
    .flatten()
}

/// Deletes every Event whose last activity is before `now - ttl` (`now` is a parameter for
/// tests); returns how many it deleted. An Event written since it was read is kept (the
/// delete has a resourceVersion precondition).
pub async fn expire(writer: &Writer, ttl: Duration, now: SystemTime) -> Result<usize, ApiError> {
    let Some(cutoff) = now
        .checked_sub(ttl)
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
    else {
        return Ok(0);
    };
    let mut deleted = 0;
    for r in event_resources() {
        let prefix = objects::prefix(r, None);
        let mut start: Option<String> = None;
        loop {
            let page = writer
                .objects
                .backend
                .list(&prefix, start.as_deref(), PAGE, None)
                .await?;
            for kv in &page.kvs {
                let Ok(ev) = serde_json::from_slice::<EventTimes>(&kv.value) else {
                    continue;
                };
                let Some(last) = ev.last_activity() else {
                    continue;
                };
                if last >= cutoff {
                    continue;
                }
                let Some(meta) = ev.metadata.as_ref() else {
                    continue;
                };
                let opts = DeleteOptions {
                    precondition_uid: Some(meta.uid.clone()).filter(|u| !u.is_empty()),
                    precondition_rv: Some(kv.mod_revision.to_string()),
                    ..Default::default()
                };
                match writer
                    .delete(r, meta.namespace.as_deref(), &meta.name, &opts)
                    .await
                {
                    Ok(_) => deleted += 1,
                    // Gone already, or updated since it was read (its activity is recent).
                    Err(ApiError {
                        code: 404 | 409, ..
                    }) => {}
                    Err(e) => return Err(e),
                }
            }
            match page.kvs.last() {
                Some(kv) if page.more => start = Some(format!("{}\0", kv.key)),
                _ => break,
            }
        }
    }
    Ok(deleted)
}

/// Sweeps every `every` (the first sweep at once), forever.
pub(super) async fn run(writer: Writer, ttl: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match expire(&writer, ttl, SystemTime::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "expired events past their TTL"),
            Err(e) => tracing::warn!(error = %e, "event TTL sweep failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn times(v: serde_json::Value) -> Option<jiff::Timestamp> {
        serde_json::from_value::<EventTimes>(v)
            .ok()
            .and_then(|e| e.last_activity())
    }

    #[test]
    fn last_activity_is_the_latest_timestamp() {
        let core = json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"},
            "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T02:00:00Z",
            "eventTime": null});
        assert_eq!(
            times(core).map(|t| t.to_string()),
            Some("2024-01-01T02:00:00Z".to_string())
        );
        let series = json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"},
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "series": {"count": 3, "lastObservedTime": "2024-01-01T05:00:00.123456Z"}});
        assert_eq!(
            times(series).map(|t| t.to_string()),
            Some("2024-01-01T05:00:00.123456Z".to_string())
        );
        assert_eq!(times(json!({"metadata": {}})), None);
    }
}
