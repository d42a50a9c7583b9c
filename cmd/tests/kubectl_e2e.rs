//! End-to-end: the real kubectl against a real `kubelite server` started by the test.

mod common;

use common::{poll, Cluster};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

fn manifest(name: &str) -> String {
    format!(
        "{}/../testdata/manifests/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn get_lists_namespaces_nodes_and_pods() {
    let c = Cluster::start();
    let ns = c.ok(&["get", "ns"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(n), "missing namespace {n} in:\n{ns}");
    }
    assert!(ns.starts_with("NAME"), "table header expected:\n{ns}");
    assert!(ns.contains("Active"));
    let out = c.kubectl(&["get", "pods", "-A"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No resources found"));
    let out = c.kubectl(&["get", "nodes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = c.ok(&["version", "-o", "json"]);
    assert!(v.contains("\"minor\": \"33\""), "{v}");
}

#[test]
fn apply_creates_then_patches_without_duplicates() {
    let c = Cluster::start();
    let out = c.ok(&["apply", "-f", &manifest("pod.yaml")]);
    assert_eq!(out.trim(), "pod/demo created");
    let out = c.ok(&["apply", "-f", &manifest("pod.yaml")]);
    assert_eq!(out.trim(), "pod/demo unchanged");
    let out = c.ok(&["apply", "-f", &manifest("pod-modified.yaml")]);
    assert_eq!(out.trim(), "pod/demo configured");
    let names = c.ok(&["get", "pods", "-o", "name"]);
    assert_eq!(names.trim(), "pod/demo");
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "demo",
            "-o",
            "jsonpath={.metadata.labels.tier}"
        ]),
        "web"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "demo",
            "-o",
            "jsonpath={.spec.containers[0].image}"
        ]),
        "busybox:1.36"
    );
    // The table has the pod columns kubectl users know.
    let table = c.ok(&["get", "pods"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(
        table.contains("demo") && table.contains("0/1") && table.contains("Pending"),
        "{table}"
    );
    let wide = c.ok(&["get", "pods", "-o", "wide"]);
    assert!(
        wide.lines().next().unwrap_or("").contains("NOMINATED NODE"),
        "{wide}"
    );
    let yaml = c.ok(&["get", "pod", "demo", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Pod") && yaml.contains("resourceVersion:") && yaml.contains("uid:"),
        "{yaml}"
    );
    let json = c.ok(&["get", "pod", "demo", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["spec"]["restartPolicy"], "Always", "defaults applied");
    assert_eq!(v["status"]["phase"], "Pending");
}

#[test]
fn server_side_apply_records_managed_fields_and_conflicts() {
    let c = Cluster::start();
    let out = c.ok(&["apply", "--server-side", "-f", &manifest("deployment.yaml")]);
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let v: serde_json::Value = serde_json::from_str(&c.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ]))
    .expect("json");
    let managers: Vec<String> = v["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["manager"].as_str().unwrap_or(""),
                m["operation"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        managers.contains(&"kubectl:Apply".to_string()),
        "{managers:?}"
    );
    // Another manager changes replicas; re-applying with the old value conflicts until forced.
    c.ok(&["scale", "deploy/web", "--replicas=5"]);
    let err = c.fails(
        &["apply", "--server-side", "-f", &manifest("deployment.yaml")],
        None,
    );
    assert!(
        err.contains("conflict") && err.contains(".spec.replicas"),
        "{err}"
    );
    c.ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &manifest("deployment.yaml"),
    ]);
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "2"
    );
}

#[test]
fn create_replace_label_annotate_patch_describe() {
    let c = Cluster::start();
    assert_eq!(
        c.ok(&["create", "-f", &manifest("deployment.yaml")]).trim(),
        "deployment.apps/web created"
    );
    let err = c.fails(&["create", "-f", &manifest("deployment.yaml")], None);
    assert!(
        err.contains("AlreadyExists") && err.contains("already exists"),
        "{err}"
    );

    let mut v: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "deploy", "web", "-o", "json"])).expect("json");
    v["spec"]["replicas"] = serde_json::json!(3);
    let out = c.ok_stdin(&["replace", "-f", "-"], &v.to_string());
    assert_eq!(out.trim(), "deployment.apps/web replaced");
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "2"
    );
    // A stale replace is a conflict.
    let err = c.fails(&["replace", "-f", "-"], Some(&v.to_string()));
    assert!(
        err.contains("Conflict") || err.contains("the object has been modified"),
        "{err}"
    );

    c.ok(&["label", "deploy", "web", "team=blue"]);
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.labels.team}"
        ]),
        "blue"
    );
    c.ok(&["annotate", "deploy", "web", "note=hello"]);
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "hello"
    );
    let err = c.fails(&["label", "deploy", "web", "team=red"], None);
    assert!(err.contains("already has a value"), "{err}");
    c.ok(&["label", "deploy", "web", "team-"]);
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.labels.team}"
        ]),
        ""
    );

    // Strategic merge: containers merge by name.
    c.ok(&["patch", "deploy", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:latest"}]}}}}"#]);
    let names = c.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].name}",
    ]);
    assert!(
        names.contains("httpd") && names.contains("sidecar"),
        "{names}"
    );
    // Merge patch replaces lists.
    c.ok(&["patch", "deploy", "web", "--type=merge", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"busybox:latest"}]}}}}"#]);
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].name}"
        ]),
        "only"
    );
    // JSON patch.
    c.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
    ]);
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "1"
    );
    let err = c.fails(
        &[
            "patch",
            "deploy",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/spec/replicas","value":7}]"#,
        ],
        None,
    );
    assert!(!err.is_empty());

    let d = c.ok(&["describe", "deploy", "web"]);
    assert!(
        d.contains("Name:") && d.contains("web") && d.contains("Replicas:"),
        "{d}"
    );
    c.ok(&["apply", "-f", &manifest("pod.yaml")]);
    let d = c.ok(&["describe", "pod", "demo"]);
    assert!(
        d.contains("Containers:") && d.contains("main:") && d.contains("GREETING:"),
        "{d}"
    );
}

#[test]
fn explain_api_resources_configmaps_and_secrets() {
    let c = Cluster::start();
    let e = c.ok(&["explain", "pod.spec.containers"]);
    assert!(
        e.contains("KIND:") && e.contains("Pod") && e.contains("image"),
        "{e}"
    );
    let r = c.ok(&["api-resources"]);
    for needle in [
        "pods",
        "po",
        "deployments",
        "deploy",
        "apps/v1",
        "leases",
        "coordination.k8s.io/v1",
        "cronjobs",
    ] {
        assert!(r.contains(needle), "api-resources lacks {needle}:\n{r}");
    }
    assert_eq!(
        c.ok(&[
            "create",
            "configmap",
            "cfg",
            "--from-literal=a=1",
            "--from-literal=b=two"
        ])
        .trim(),
        "configmap/cfg created"
    );
    assert_eq!(
        c.ok(&["get", "cm", "cfg", "-o", "jsonpath={.data.b}"]),
        "two"
    );
    assert_eq!(
        c.ok(&[
            "create",
            "secret",
            "generic",
            "s1",
            "--from-literal=password=hunter2"
        ])
        .trim(),
        "secret/s1 created"
    );
    assert_eq!(
        c.ok(&["get", "secret", "s1", "-o", "jsonpath={.data.password}"]),
        "aHVudGVyMg=="
    );
    assert_eq!(
        c.ok(&["get", "secret", "s1", "-o", "jsonpath={.type}"]),
        "Opaque"
    );
    assert_eq!(
        c.ok(&["create", "namespace", "team-a"]).trim(),
        "namespace/team-a created"
    );
    let out = c.ok(&["auth", "can-i", "create", "pods"]);
    assert_eq!(out.trim(), "yes");
}

#[test]
fn watch_prints_later_changes() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "before", "--from-literal=a=1"]);
    let mut child = c
        .kubectl_cmd(&["get", "configmaps", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    poll(
        "initial list in watch output",
        Duration::from_secs(20),
        || {
            seen.extend(rx.try_iter());
            seen.iter().any(|l| l.starts_with("before")).then_some(())
        },
    );
    c.ok(&["create", "configmap", "after", "--from-literal=a=1"]);
    poll(
        "the new configmap in watch output",
        Duration::from_secs(20),
        || {
            seen.extend(rx.try_iter());
            seen.iter().any(|l| l.starts_with("after")).then_some(())
        },
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn delete_waits_until_gone_and_force_delete() {
    let c = Cluster::start();
    c.ok(&["apply", "-f", &manifest("pod.yaml")]);
    c.ok(&["create", "configmap", "gone", "--from-literal=a=1"]);
    assert_eq!(
        c.ok(&["delete", "configmap", "gone"]).trim(),
        "configmap \"gone\" deleted"
    );
    let err = c.fails(&["get", "configmap", "gone"], None);
    assert!(err.contains("NotFound"), "{err}");
    let out = c.kubectl(&["delete", "pod", "demo", "--grace-period=0", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("force deleted"));
    let err = c.fails(&["get", "pod", "demo"], None);
    assert!(err.contains("NotFound"), "{err}");
    let err = c.fails(&["delete", "pod", "demo"], None);
    assert!(err.contains("NotFound"), "{err}");
    // Deleting a namespace removes its contents, then the namespace.
    c.ok(&["create", "namespace", "doomed"]);
    c.ok(&[
        "create",
        "configmap",
        "inside",
        "-n",
        "doomed",
        "--from-literal=a=1",
    ]);
    c.ok(&["delete", "namespace", "doomed"]);
    let err = c.fails(&["get", "namespace", "doomed"], None);
    assert!(err.contains("NotFound"), "{err}");
    let err = c.fails(&["get", "configmap", "inside", "-n", "doomed"], None);
    assert!(err.contains("NotFound"), "{err}");
}

#[test]
fn bad_manifests_get_clear_errors_and_store_nothing() {
    let c = Cluster::start();
    let err = c.fails(&["apply", "-f", &manifest("bad-unknown-field.yaml")], None);
    assert!(
        err.contains("unknown field") && err.contains("bogusField"),
        "{err}"
    );
    let err = c.fails(&["create", "-f", &manifest("bad-unknown-field.yaml")], None);
    assert!(err.contains("unknown field"), "{err}");
    let err = c.fails(&["apply", "-f", &manifest("bad-name.yaml")], None);
    assert!(
        err.contains("Invalid value") && err.contains("Bad_Name"),
        "{err}"
    );
    let err = c.fails(&["apply", "-f", &manifest("bad-apiversion.yaml")], None);
    assert!(err.contains("v2"), "{err}");
    let err = c.fails(&["apply", "-f", &manifest("bad-yaml.yaml")], None);
    assert!(
        err.to_lowercase().contains("yaml") || err.contains("error"),
        "{err}"
    );
    let out = c.kubectl(&["get", "pods,configmaps", "-o", "name"]);
    let names = String::from_utf8_lossy(&out.stdout);
    assert!(
        !names.contains("bad-field")
            && !names.contains("wrong-version")
            && !names.contains("broken"),
        "{names}"
    );
}
