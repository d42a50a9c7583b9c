//! The garbage collector and the Event TTL, driven through the real `kubectl`: cascading
//! deletion (Background, Foreground with blockOwnerDeletion, Orphan), dependents with several
//! owners or with owners that never existed, pending deletions resumed after `kill -9`, and
//! expiry of old Events.

mod common;

use common::{json, poll, Cluster};
use kubelite_core::resources::{self, Resource};
use kubelite_core::server::gc;
use kubelite_core::server::objects::Objects;
use kubelite_core::server::write::{FieldValidation, WriteOptions, Writer};
use kubelite_storage::{SqliteBackend, SqliteOptions};
use serde_json::{json as j, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the collector may take to converge.
const DEADLINE: Duration = Duration::from_secs(30);

const CM: &str = "/api/v1/namespaces/default/configmaps";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";

fn resource(group: &str, plural: &str) -> &'static Resource {
    resources::find(group, "v1", plural).expect("resource")
}

/// GET; None on 404.
fn get(c: &Cluster, path: &str) -> Option<Value> {
    let (code, body) = c.http("GET", path, None, None);
    match code {
        200 => Some(json(&body)),
        404 => None,
        other => panic!("GET {path}: {other} {body}"),
    }
}

fn exists(c: &Cluster, path: &str) -> bool {
    get(c, path).is_some()
}

fn wait_gone(c: &Cluster, path: &str) {
    poll(&format!("{path} to be deleted"), DEADLINE, || {
        (!exists(c, path)).then_some(())
    });
}

fn uid(c: &Cluster, kind: &str, name: &str) -> String {
    let u = c.ok(&["get", kind, name, "-o", "jsonpath={.metadata.uid}"]);
    assert!(!u.is_empty(), "{kind}/{name} has no uid");
    u
}

fn owner_ref(kind: &str, name: &str, uid: &str, block: bool) -> Value {
    let api_version = if kind == "Deployment" {
        "apps/v1"
    } else {
        "v1"
    };
    j!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "blockOwnerDeletion": block})
}

fn configmap(c: &Cluster, name: &str) -> String {
    c.ok(&["create", "configmap", name, "--from-literal=k=v"]);
    uid(c, "configmap", name)
}

/// Creates a Secret with these ownerReferences (and finalizers) through a raw POST.
fn secret(c: &Cluster, name: &str, owners: &[Value], finalizers: &[&str]) {
    let mut meta = j!({"name": name, "ownerReferences": owners});
    if !finalizers.is_empty() {
        meta["finalizers"] = j!(finalizers);
    }
    let body = j!({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": {"k": "dg=="}});
    let (code, text) = c.http(
        "POST",
        SECRETS,
        Some("application/json"),
        Some(&body.to_string()),
    );
    assert_eq!(code, 201, "creating secret {name}: {text}");
}

/// Creates a ConfigMap with these ownerReferences through `kubectl create -f -`.
fn owned_configmap(c: &Cluster, name: &str, owners: &[Value]) {
    let manifest = j!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "ownerReferences": owners}, "data": {"k": "v"}});
    c.ok_stdin(&["create", "-f", "-"], &manifest.to_string());
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x == f))
}

#[test]
fn background_deletion_collects_dependents_transitively() {
    let c = Cluster::start();
    let owner = configmap(&c, "owner");
    secret(
        &c,
        "child",
        &[owner_ref("ConfigMap", "owner", &owner, false)],
        &[],
    );
    let child = uid(&c, "secret", "child");
    owned_configmap(
        &c,
        "grandchild",
        &[owner_ref("Secret", "child", &child, false)],
    );
    configmap(&c, "bystander");

    c.ok(&["delete", "configmap", "owner"]);
    wait_gone(&c, &format!("{SECRETS}/child"));
    wait_gone(&c, &format!("{CM}/grandchild"));
    assert!(exists(&c, &format!("{CM}/bystander")));
    assert!(exists(&c, &format!("{CM}/kube-root-ca.crt")));
}

#[test]
fn foreground_deletion_waits_for_blocking_dependents() {
    let c = Cluster::start();
    // kubectl waits for the owner, which goes only after its blocking dependent.
    let owner = configmap(&c, "owner");
    secret(
        &c,
        "blocker",
        &[owner_ref("ConfigMap", "owner", &owner, true)],
        &[],
    );
    c.ok(&["delete", "configmap", "owner", "--cascade=foreground"]);
    assert!(!exists(&c, &format!("{CM}/owner")));
    assert!(!exists(&c, &format!("{SECRETS}/blocker")));

    // A blocking dependent held by a finalizer holds its owner; a non-blocking one does not
    // hold it, but is deleted too.
    let owner = configmap(&c, "held-owner");
    secret(
        &c,
        "held",
        &[owner_ref("ConfigMap", "held-owner", &owner, true)],
        &["example.com/hold"],
    );
    secret(
        &c,
        "loose",
        &[owner_ref("ConfigMap", "held-owner", &owner, false)],
        &[],
    );
    c.ok(&[
        "delete",
        "configmap",
        "held-owner",
        "--cascade=foreground",
        "--wait=false",
    ]);
    wait_gone(&c, &format!("{SECRETS}/loose"));
    let held = poll("the held dependent to be deleting", DEADLINE, || {
        get(&c, &format!("{SECRETS}/held"))
            .filter(|s| s.pointer("/metadata/deletionTimestamp").is_some())
    });
    assert!(has_finalizer(&held, "example.com/hold"), "{held}");
    let o = get(&c, &format!("{CM}/held-owner")).expect("owner still waiting");
    assert!(o.pointer("/metadata/deletionTimestamp").is_some(), "{o}");
    assert!(has_finalizer(&o, "foregroundDeletion"), "{o}");

    c.ok(&[
        "patch",
        "secret",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_gone(&c, &format!("{SECRETS}/held"));
    wait_gone(&c, &format!("{CM}/held-owner"));
}

#[test]
fn orphan_deletion_keeps_dependents_without_the_reference() {
    let c = Cluster::start();
    let owner = configmap(&c, "owner");
    secret(
        &c,
        "a",
        &[owner_ref("ConfigMap", "owner", &owner, true)],
        &[],
    );
    owned_configmap(&c, "b", &[owner_ref("ConfigMap", "owner", &owner, false)]);

    // kubectl returns once the owner is gone, which is after the orphaning.
    c.ok(&["delete", "configmap", "owner", "--cascade=orphan"]);
    assert!(!exists(&c, &format!("{CM}/owner")));
    for path in [format!("{SECRETS}/a"), format!("{CM}/b")] {
        let dep = get(&c, &path).expect("dependent kept");
        assert!(
            dep.pointer("/metadata/ownerReferences").is_none(),
            "{path}: {dep}"
        );
    }
}

#[test]
fn dependent_with_two_owners_loses_only_the_deleted_reference() {
    let c = Cluster::start();
    let a = configmap(&c, "a");
    let b = configmap(&c, "b");
    secret(
        &c,
        "shared",
        &[
            owner_ref("ConfigMap", "a", &a, true),
            owner_ref("ConfigMap", "b", &b, false),
        ],
        &[],
    );
    c.ok(&["delete", "configmap", "a"]);
    let s = poll("the reference to a to be removed", DEADLINE, || {
        get(&c, &format!("{SECRETS}/shared")).filter(|s| owner_uids(s) == vec![b.clone()])
    });
    assert_eq!(
        s.pointer("/metadata/ownerReferences/0/name"),
        Some(&j!("b"))
    );

    // Foreground deletion of the remaining owner takes the dependent with it.
    c.ok(&["delete", "configmap", "b", "--cascade=foreground"]);
    assert!(!exists(&c, &format!("{SECRETS}/shared")));
}

#[test]
fn dependents_of_owners_that_do_not_exist_are_collected() {
    let c = Cluster::start();
    let real = configmap(&c, "real");
    let ns = uid(&c, "namespace", "default");
    // Created first, so they have been looked at by the time the later ones are collected
    // (the collector follows the store in revision order): these must stay.
    secret(
        &c,
        "owned-by-namespace",
        &[owner_ref("Namespace", "default", &ns, false)],
        &[],
    );
    secret(
        &c,
        "owned-by-unknown-kind",
        &[
            j!({"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "7d2c3c1e-0000-4000-8000-000000000001"}),
        ],
        &[],
    );
    secret(
        &c,
        "owned-by-real",
        &[owner_ref("ConfigMap", "real", &real, false)],
        &[],
    );
    // These must go.
    secret(
        &c,
        "ghost-child",
        &[owner_ref(
            "ConfigMap",
            "ghost",
            "7d2c3c1e-0000-4000-8000-000000000002",
            false,
        )],
        &[],
    );
    owned_configmap(
        &c,
        "wrong-uid-child",
        &[owner_ref(
            "ConfigMap",
            "real",
            "7d2c3c1e-0000-4000-8000-000000000003",
            false,
        )],
    );
    secret(
        &c,
        "wrong-namespace-uid-child",
        &[owner_ref(
            "Namespace",
            "default",
            "7d2c3c1e-0000-4000-8000-000000000004",
            false,
        )],
        &[],
    );
    wait_gone(&c, &format!("{SECRETS}/ghost-child"));
    wait_gone(&c, &format!("{CM}/wrong-uid-child"));
    wait_gone(&c, &format!("{SECRETS}/wrong-namespace-uid-child"));
    for name in [
        "owned-by-namespace",
        "owned-by-unknown-kind",
        "owned-by-real",
    ] {
        assert!(
            exists(&c, &format!("{SECRETS}/{name}")),
            "{name} was collected"
        );
    }
    assert!(exists(&c, &format!("{CM}/real")));
}

/// Opens the stopped server's store and runs `f` on it.
fn with_store(c: &Cluster, f: impl AsyncFnOnce(&Objects)) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut opts = SqliteOptions::new(c.data_dir().join("db/state.db"));
        opts.compact_interval = None;
        let backend = SqliteBackend::open(opts).expect("open store");
        let objects = Objects::new(backend.clone());
        f(&objects).await;
        backend.close();
    });
}

/// Marks an object deleting with these finalizers, directly in the store.
async fn mark_deleting(objects: &Objects, r: &Resource, name: &str, finalizers: &[&str]) {
    let s = objects
        .must_get(r, Some("default"), name)
        .await
        .expect("object");
    let mut v = s.value.clone();
    v["metadata"]["deletionTimestamp"] = j!("2024-01-01T00:00:00Z");
    v["metadata"]["deletionGracePeriodSeconds"] = j!(0);
    v["metadata"]["finalizers"] = j!(finalizers);
    objects.update(r, v, s.revision).await.expect("update");
}

#[test]
fn pending_deletions_resume_after_kill_9() {
    let mut c = Cluster::start();
    let cm = resource("", "configmaps");
    for (owner, dep, block) in [
        ("vanished", "dep-vanished", false),
        ("orphaning", "dep-orphaning", true),
        ("foreground", "dep-foreground", true),
    ] {
        let u = configmap(&c, owner);
        secret(&c, dep, &[owner_ref("ConfigMap", owner, &u, block)], &[]);
    }
    // An orphan deletion held open by another finalizer, interrupted at an arbitrary point.
    let held = configmap(&c, "held");
    c.ok(&[
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    secret(
        &c,
        "dep-held",
        &[owner_ref("ConfigMap", "held", &held, true)],
        &[],
    );
    c.ok(&[
        "delete",
        "configmap",
        "held",
        "--cascade=orphan",
        "--wait=false",
    ]);
    c.kill9();

    // While the server is down: an owner disappears without its dependents being looked at,
    // and two owners start an orphan and a foreground deletion nobody has processed yet.
    with_store(&c, async |objects| {
        let s = objects
            .must_get(cm, Some("default"), "vanished")
            .await
            .expect("vanished");
        objects
            .delete(cm, s.value, Some(s.revision))
            .await
            .expect("delete");
        mark_deleting(objects, cm, "orphaning", &["orphan"]).await;
        mark_deleting(objects, cm, "foreground", &["foregroundDeletion"]).await;
    });
    c.restart();

    wait_gone(&c, &format!("{SECRETS}/dep-vanished"));
    wait_gone(&c, &format!("{CM}/orphaning"));
    let dep = get(&c, &format!("{SECRETS}/dep-orphaning")).expect("orphaned dependent kept");
    assert!(owner_uids(&dep).is_empty(), "{dep}");
    wait_gone(&c, &format!("{CM}/foreground"));
    assert!(!exists(&c, &format!("{SECRETS}/dep-foreground")));

    // The held owner: orphaning done, the foreign finalizer still holds it.
    let o = poll("the orphan finalizer to be removed", DEADLINE, || {
        get(&c, &format!("{CM}/held")).filter(|o| !has_finalizer(o, "orphan"))
    });
    assert!(has_finalizer(&o, "example.com/hold"), "{o}");
    let dep = get(&c, &format!("{SECRETS}/dep-held")).expect("dependent kept");
    assert!(owner_uids(&dep).is_empty(), "{dep}");
    c.ok(&[
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_gone(&c, &format!("{CM}/held"));
    assert!(exists(&c, &format!("{SECRETS}/dep-held")));

    // And the collector keeps working after the restart.
    let u = configmap(&c, "after");
    secret(
        &c,
        "dep-after",
        &[owner_ref("ConfigMap", "after", &u, false)],
        &[],
    );
    c.ok(&["delete", "configmap", "after"]);
    wait_gone(&c, &format!("{SECRETS}/dep-after"));
}

#[test]
fn old_events_are_deleted_at_startup_sweep() {
    let mut c = Cluster::start();
    let core_event = |name: &str| {
        j!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "ConfigMap", "namespace": "default", "name": "x"},
            "reason": "Test", "message": "m", "type": "Normal",
            "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z",
            "source": {"component": "test"}})
    };
    for name in ["old-core", "fresh-core"] {
        c.ok_stdin(&["create", "-f", "-"], &core_event(name).to_string());
    }
    let new_event = |name: &str| {
        j!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name},
            "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "example.com/test",
            "reportingInstance": "test-1", "action": "Testing", "reason": "Test", "type": "Normal",
            "regarding": {"kind": "ConfigMap", "namespace": "default", "name": "x"}})
    };
    for name in ["old-new", "fresh-new"] {
        c.ok_stdin(&["create", "-f", "-"], &new_event(name).to_string());
    }
    c.kill9();
    // Age two of them: an Event written now lives a TTL from its creation, as with
    // kube-apiserver's per-write lease.
    with_store(&c, async |objects| {
        for (group, name) in [("", "old-core"), ("events.k8s.io", "old-new")] {
            let r = resource(group, "events");
            let s = objects
                .must_get(r, Some("default"), name)
                .await
                .expect("event");
            let mut v = s.value.clone();
            v["metadata"]["creationTimestamp"] = j!("2024-01-01T00:00:00Z");
            objects.update(r, v, s.revision).await.expect("update");
        }
    });
    c.restart();
    let core = "/api/v1/namespaces/default/events";
    let new = "/apis/events.k8s.io/v1/namespaces/default/events";
    wait_gone(&c, &format!("{core}/old-core"));
    wait_gone(&c, &format!("{new}/old-new"));
    assert!(exists(&c, &format!("{core}/fresh-core")));
    assert!(exists(&c, &format!("{new}/fresh-new")));
}

/// `metav1.Time` text (whole seconds, UTC) of a time.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[test]
fn event_ttl_is_measured_from_the_last_activity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut opts = SqliteOptions::new(dir.path().join("state.db"));
        opts.compact_interval = None;
        let backend = SqliteBackend::open(opts).expect("open store");
        let writer = Writer {
            objects: Objects::new(backend.clone()),
        };
        let w = WriteOptions {
            dry_run: false,
            field_manager: "test".into(),
            field_validation: FieldValidation::Strict,
            force: false,
        };
        writer
            .create(
                resource("", "namespaces"),
                None,
                j!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
                None,
                &w,
            )
            .await
            .expect("namespace");
        let events = resource("", "events");
        let now = SystemTime::now();
        let in_5m = now + Duration::from_secs(300);
        for (name, last) in [("now", rfc3339(now)), ("later", rfc3339(in_5m))] {
            let ev = j!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
                "involvedObject": {"kind": "ConfigMap", "namespace": "default", "name": "x"},
                "reason": "Test", "message": "m", "lastTimestamp": last});
            writer
                .create(events, Some("default"), ev, None, &w)
                .await
                .expect("event");
        }
        let ttl = Duration::from_secs(120);
        let at = |secs: u64| now + Duration::from_secs(secs);
        assert_eq!(
            gc::events::expire(&writer, ttl, at(60))
                .await
                .expect("sweep"),
            0
        );
        // "now" is past its TTL three minutes on; "later" was active five minutes on.
        assert_eq!(
            gc::events::expire(&writer, ttl, at(180))
                .await
                .expect("sweep"),
            1
        );
        let left = |name: &'static str| {
            let objects = writer.objects.clone();
            async move {
                objects
                    .get(events, Some("default"), name)
                    .await
                    .expect("get")
                    .is_some()
            }
        };
        assert!(!left("now").await);
        assert!(left("later").await);
        assert_eq!(
            gc::events::expire(&writer, ttl, at(600))
                .await
                .expect("sweep"),
            1
        );
        assert!(!left("later").await);
        backend.close();
    });
}
