//! Kubernetes API semantics checked over raw HTTP (status codes, Status bodies, watch streams,
//! paging, resourceVersion rules) and through kubectl where it exposes them.

mod common;

use common::{json, poll, Cluster};
use std::time::Duration;

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn cm(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"app":"x"}}}},"data":{{"k":"v"}}}}"#
    )
}

#[test]
fn errors_are_status_objects_with_the_right_codes() {
    let c = Cluster::start();
    let (code, body) = c.http_as("GET", "/api/v1/namespaces", None, None, None);
    assert_eq!(code, 401, "{body}");
    assert_eq!(json(&body)["reason"], "Unauthorized");
    let (code, _) = c.http_as("GET", "/api/v1/namespaces", None, None, Some("wrong"));
    assert_eq!(code, 401);
    let (code, body) = c.http_as("GET", "/readyz", None, None, None);
    assert_eq!((code, body.as_str()), (200, "ok"));

    let (code, body) = c.http("GET", &format!("{CM}/nope"), None, None);
    assert_eq!(code, 404);
    let s = json(&body);
    assert_eq!(
        (s["kind"].as_str(), s["reason"].as_str(), s["code"].as_i64()),
        (Some("Status"), Some("NotFound"), Some(404))
    );
    assert_eq!(s["message"], "configmaps \"nope\" not found");

    let (code, _) = c.http("POST", CM, Some("application/json"), Some(&cm("a")));
    assert_eq!(code, 201);
    let (code, body) = c.http("POST", CM, Some("application/json"), Some(&cm("a")));
    assert_eq!(
        (code, json(&body)["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );

    let (code, body) = c.http("POST", CM, Some("application/json"), Some("{not json"));
    assert_eq!(
        (code, json(&body)["reason"].as_str()),
        (400, Some("BadRequest")),
        "{body}"
    );

    let (code, body) = c.http("POST", CM, Some("application/json"), Some(&cm("Not_Valid")));
    let s = json(&body);
    assert_eq!(
        (code, s["reason"].as_str()),
        (422, Some("Invalid")),
        "{body}"
    );
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");

    let (code, body) = c.http(
        "POST",
        &format!("{CM}?fieldValidation=Strict"),
        Some("application/json"),
        Some(r#"{"metadata":{"name":"s"},"bogus":1}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap_or("")
            .contains("unknown field \"bogus\""),
        "{body}"
    );

    let (code, body) = c.http(
        "POST",
        "/api/v1/namespaces/missing/configmaps",
        Some("application/json"),
        Some(&cm("b")),
    );
    assert_eq!(code, 404, "{body}");
    assert_eq!(json(&body)["message"], "namespaces \"missing\" not found");

    let (code, body) = c.http("PUT", CM, Some("application/json"), Some(&cm("a")));
    assert_eq!(code, 405, "{body}");
    let (code, body) = c.http("POST", CM, Some("text/plain"), Some("x"));
    assert_eq!(code, 415, "{body}");
    // Nothing but the one valid object was stored.
    let (_, body) = c.http("GET", &format!("{CM}?labelSelector=app%3Dx"), None, None);
    assert_eq!(json(&body)["items"].as_array().map(Vec::len), Some(1));
}

#[test]
fn optimistic_concurrency_and_no_op_updates() {
    let c = Cluster::start();
    let (_, body) = c.http("POST", CM, Some("application/json"), Some(&cm("occ")));
    let created = json(&body);
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut updated = created.clone();
    updated["data"]["k"] = serde_json::json!("v2");
    let (code, body) = c.http(
        "PUT",
        &format!("{CM}/occ"),
        Some("application/json"),
        Some(&updated.to_string()),
    );
    assert_eq!(code, 200, "{body}");
    let rv2 = json(&body)["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    assert_ne!(rv, rv2);
    // The same stale write again conflicts.
    let (code, body) = c.http(
        "PUT",
        &format!("{CM}/occ"),
        Some("application/json"),
        Some(&updated.to_string()),
    );
    assert_eq!(
        (code, json(&body)["reason"].as_str()),
        (409, Some("Conflict")),
        "{body}"
    );
    // A no-op patch keeps the resourceVersion.
    let (code, body) = c.http(
        "PATCH",
        &format!("{CM}/occ"),
        Some("application/merge-patch+json"),
        Some(r#"{"data":{"k":"v2"}}"#),
    );
    assert_eq!(code, 200);
    assert_eq!(
        json(&body)["metadata"]["resourceVersion"].as_str(),
        Some(rv2.as_str())
    );
    // A patch with a stale resourceVersion precondition conflicts.
    let stale = format!(r#"{{"metadata":{{"resourceVersion":"{rv}"}},"data":{{"k":"v3"}}}}"#);
    let (code, _) = c.http(
        "PATCH",
        &format!("{CM}/occ"),
        Some("application/merge-patch+json"),
        Some(&stale),
    );
    assert_eq!(code, 409);
    // Delete preconditions.
    let pre = r#"{"preconditions":{"uid":"not-the-uid"}}"#;
    let (code, body) = c.http(
        "DELETE",
        &format!("{CM}/occ"),
        Some("application/json"),
        Some(pre),
    );
    assert_eq!(code, 409, "{body}");
    // Server-side dry run stores nothing.
    c.ok(&[
        "create",
        "configmap",
        "dry",
        "--from-literal=a=b",
        "--dry-run=server",
    ]);
    let (code, _) = c.http("GET", &format!("{CM}/dry"), None, None);
    assert_eq!(code, 404);
}

#[test]
fn list_paging_and_selectors() {
    let c = Cluster::start();
    for i in 0..7 {
        let (code, _) = c.http(
            "POST",
            CM,
            Some("application/json"),
            Some(&cm(&format!("page-{i}"))),
        );
        assert_eq!(code, 201);
    }
    let mut names = Vec::new();
    let mut cont = String::new();
    let mut first_rv = String::new();
    for _ in 0..10 {
        let path = format!(
            "{CM}?labelSelector=app%3Dx&limit=3{}",
            if cont.is_empty() {
                String::new()
            } else {
                format!("&continue={cont}")
            }
        );
        let (code, body) = c.http("GET", &path, None, None);
        assert_eq!(code, 200, "{body}");
        let v = json(&body);
        if first_rv.is_empty() {
            first_rv = v["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            // Writes after the first page don't show up in later pages (consistent snapshot).
            let (code, _) = c.http("POST", CM, Some("application/json"), Some(&cm("page-late")));
            assert_eq!(code, 201);
        } else {
            assert_eq!(
                v["metadata"]["resourceVersion"].as_str(),
                Some(first_rv.as_str())
            );
        }
        for item in v["items"].as_array().expect("items") {
            names.push(item["metadata"]["name"].as_str().unwrap_or("").to_string());
        }
        cont = v["metadata"]["continue"].as_str().unwrap_or("").to_string();
        if cont.is_empty() {
            break;
        }
    }
    let want: Vec<String> = (0..7).map(|i| format!("page-{i}")).collect();
    assert_eq!(names, want);
    // kubectl pages with --chunk-size too.
    let out = c.ok(&[
        "get",
        "configmaps",
        "-l",
        "app=x",
        "--chunk-size=2",
        "-o",
        "name",
    ]);
    assert_eq!(out.lines().count(), 8, "{out}");
    // Field selectors.
    let (_, body) = c.http(
        "GET",
        &format!("{CM}?fieldSelector=metadata.name%3Dpage-3"),
        None,
        None,
    );
    assert_eq!(json(&body)["items"].as_array().map(Vec::len), Some(1));
    let (code, body) = c.http(
        "GET",
        &format!("{CM}?fieldSelector=spec.bogus%3D1"),
        None,
        None,
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = c.http(
        "GET",
        "/api/v1/pods?fieldSelector=spec.nodeName%3D,status.phase!%3DFailed",
        None,
        None,
    );
    assert_eq!(code, 200, "{body}");
}

#[test]
fn watch_semantics_timeout_bookmarks_and_gone() {
    let c = Cluster::start_with(&[
        "--compaction-interval",
        "1",
        "--compaction-keep-revisions",
        "0",
        "--compaction-keep-seconds",
        "0",
    ]);
    let (_, body) = c.http("POST", CM, Some("application/json"), Some(&cm("w1")));
    let rv1 = json(&body)["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    // A watch from rv1 with a timeout ends by itself and sees later changes, with bookmarks.
    let watcher = {
        let path = format!(
            "{CM}?watch=true&resourceVersion={rv1}&timeoutSeconds=3&allowWatchBookmarks=true"
        );
        let c2 = (c.base_url(), c.token(), c.data_dir().join("tls/ca.crt"));
        std::thread::spawn(move || {
            let out = std::process::Command::new("curl")
                .args(["-sN", "--max-time", "20", "--cacert"])
                .arg(&c2.2)
                .args(["-H", &format!("Authorization: Bearer {}", c2.1)])
                .arg(format!("{}{}", c2.0, path))
                .output()
                .expect("curl");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    // No head start needed: the watch replays every event after rv1 whenever it connects.
    c.http(
        "PATCH",
        &format!("{CM}/w1"),
        Some("application/merge-patch+json"),
        Some(r#"{"metadata":{"labels":{"app":"y"}}}"#),
    );
    c.http("DELETE", &format!("{CM}/w1"), None, None);
    let started = std::time::Instant::now();
    let out = watcher.join().expect("watch thread");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "timeoutSeconds not honoured"
    );
    let types: Vec<String> = out
        .lines()
        .map(|l| json(l)["type"].as_str().unwrap_or("").to_string())
        .filter(|t| t != "BOOKMARK")
        .collect();
    assert_eq!(types, ["MODIFIED", "DELETED"], "{out}");

    // Label-selected watch: an object leaving the selection is DELETED for that watcher.
    // resourceVersion=0 sends the current state first as ADDED.
    c.http("POST", CM, Some("application/json"), Some(&cm("w2")));
    let lines = c.watch_lines(
        &format!("{CM}?watch=true&resourceVersion=0&labelSelector=app%3Dx&timeoutSeconds=1"),
        10,
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"ADDED\"") && l.contains("w2")),
        "{lines:?}"
    );

    // After compaction, watching from rv1 answers 410 Gone as an ERROR event.
    for i in 0..5 {
        c.http(
            "PATCH",
            &format!("{CM}/w2"),
            Some("application/merge-patch+json"),
            Some(&format!(r#"{{"data":{{"i":"{i}"}}}}"#)),
        );
    }
    poll("compaction past rv1", Duration::from_secs(20), || {
        let (code, _) = c.http(
            "GET",
            &format!("{CM}?resourceVersion={rv1}&resourceVersionMatch=Exact"),
            None,
            None,
        );
        (code == 410).then_some(())
    });
    let lines = c.watch_lines(&format!("{CM}?watch=true&resourceVersion={rv1}"), 10);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let ev = json(&lines[0]);
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["code"].as_i64(),
            ev["object"]["reason"].as_str()
        ),
        (Some("ERROR"), Some(410), Some("Expired"))
    );
}

#[test]
fn finalizers_hold_deletion_until_removed() {
    let c = Cluster::start();
    let body = r#"{"metadata":{"name":"held","finalizers":["example.com/hold"]},"data":{"a":"b"}}"#;
    assert_eq!(
        c.http("POST", CM, Some("application/json"), Some(body)).0,
        201
    );
    c.ok(&["delete", "configmap", "held", "--wait=false"]);
    let v = json(&c.ok(&["get", "configmap", "held", "-o", "json"]));
    assert!(v["metadata"]["deletionTimestamp"].is_string(), "{v}");
    c.ok(&[
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    let err = c.fails(&["get", "configmap", "held"], None);
    assert!(err.contains("NotFound"), "{err}");
}

#[test]
fn typed_commands_send_protobuf_and_work() {
    let c = Cluster::start();
    assert_eq!(
        c.ok(&[
            "create",
            "deployment",
            "web",
            "--image=busybox:latest",
            "--replicas=2"
        ])
        .trim(),
        "deployment.apps/web created"
    );
    let v = json(&c.ok(&["get", "deploy", "web", "-o", "json"]));
    assert_eq!(v["spec"]["replicas"], 2);
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox:latest"
    );
    assert_eq!(
        v["spec"]["strategy"]["type"], "RollingUpdate",
        "defaults applied"
    );
    let who = c.ok(&["auth", "whoami"]);
    assert!(who.contains("kubelite-admin"), "{who}");
    let out = c.ok(&["auth", "can-i", "--list"]);
    assert!(out.contains("*.*"), "{out}");
    // Warn mode: unknown fields are dropped with a warning, the object is created.
    let manifest = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"warned"},"data":{"a":"b"},"bogus":true}"#;
    let out = c.kubectl_stdin(&["create", "--validate=warn", "-f", "-"], Some(manifest));
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field \"bogus\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.ok(&["get", "configmap", "warned"]);
}
