//! Until the scheduler exists (issue #4), the agent binds every unscheduled pod that asks for
//! the default scheduler to its own node, through the `binding` subresource as a scheduler would.

use kubelite_core::server::client::{resource, Change, LocalClient};
use serde_json::Value;
use std::time::Duration;

fn wants_default_scheduler(pod: &Value) -> bool {
    let unbound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    let scheduler = pod
        .pointer("/spec/schedulerName")
        .and_then(Value::as_str)
        .unwrap_or("default-scheduler");
    let deleting = pod.pointer("/metadata/deletionTimestamp").is_some();
    unbound && !deleting && scheduler == "default-scheduler"
}

async fn bind(client: &LocalClient, node: &str, pod: &Value) {
    let ns = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    match client.bind(ns, name, node).await {
        Ok(()) => tracing::debug!(namespace = ns, pod = name, node, "bound"),
        Err(e) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(namespace = ns, pod = name, error = %e, "binding failed"),
    }
}

/// Binds unscheduled pods forever (list, then watch; re-list when the watch ends).
pub async fn run(client: LocalClient, node: String) {
    let Ok(pods) = resource("", "v1", "pods") else {
        return;
    };
    loop {
        let (items, rev) = match client.list(pods, None, "", "spec.nodeName=").await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "listing unscheduled pods");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for p in items.iter().filter(|p| wants_default_scheduler(p)) {
            bind(&client, &node, p).await;
        }
        let Ok(mut w) = client.watch(pods, None, "", "spec.nodeName=", rev).await else {
            continue;
        };
        while let Some((change, pod)) = w.next().await {
            if change != Change::Deleted && wants_default_scheduler(&pod) {
                bind(&client, &node, &pod).await;
            }
        }
    }
}
