//! End-to-end: Deployments and ReplicaSets with real pods on the server's own node agent,
//! driven by the real kubectl: rollouts (RollingUpdate within maxSurge/maxUnavailable,
//! Recreate), `kubectl rollout status|history|undo|restart|pause|resume`, `kubectl scale`,
//! ReplicaSet adoption and release, and a rollout surviving `kill -9` of the server.

mod common;

use common::{json, poll, Cluster};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);

/// A Deployment of `replicas` busybox pods that are ready once their probe passed and stop
/// at once on TERM.
fn deployment(name: &str, replicas: u32, strategy: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  strategy: {strategy}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
        readinessProbe:
          exec: {{command: ["true"]}}
          periodSeconds: 1
"#
    )
}

const SURGE_ONLY: &str = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}";

fn get_json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    json(&c.ok(&all))
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn deleting(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
}

/// Pods of `app` that are ready and not being deleted.
fn ready_pods(c: &Cluster, app: &str) -> Vec<Value> {
    items(&get_json(c, &["pods", "-l", &format!("app={app}")]))
        .into_iter()
        .filter(|p| is_ready(p) && !deleting(p))
        .collect()
}

fn names(pods: &[Value]) -> BTreeSet<String> {
    pods.iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

fn hash_of(obj: &Value) -> String {
    obj["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn rollout_status(c: &Cluster, name: &str) -> String {
    c.ok(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=180s",
    ])
}

/// The ReplicaSets of a Deployment by name: (replicas, revision annotation).
fn replica_sets(c: &Cluster, app: &str) -> Vec<(String, i64, String)> {
    items(&get_json(c, &["rs", "-l", &format!("app={app}")]))
        .iter()
        .map(|rs| {
            (
                rs["metadata"]["name"].as_str().unwrap_or("").to_string(),
                rs["spec"]["replicas"].as_i64().unwrap_or(0),
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

/// The revisions `kubectl rollout history` lists.
fn revisions(c: &Cluster, name: &str) -> Vec<String> {
    c.ok(&["rollout", "history", &format!("deployment/{name}")])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .map(str::to_string)
        .collect()
}

/// Whether the Deployment's controller has finished its rollout of the current generation.
fn complete(d: &Value) -> bool {
    let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let s = &d["status"];
    let n = |f: &str| s[f].as_i64().unwrap_or(0);
    s["observedGeneration"].as_i64() >= d["metadata"]["generation"].as_i64()
        && n("updatedReplicas") == want
        && n("replicas") == want
        && n("availableReplicas") == want
}

#[test]
fn rolling_update_keeps_availability_and_rolls_back() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], &deployment("web", 3, SURGE_ONLY));
    let out = rollout_status(&c, "web");
    assert!(out.contains("successfully rolled out"), "{out}");
    let d = get_json(&c, &["deployment", "web"]);
    assert_eq!(d["status"]["readyReplicas"], 3, "{d}");
    let available = d["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(available["status"], "True", "{d}");
    assert_eq!(available["reason"], "MinimumReplicasAvailable");
    let first = replica_sets(&c, "web");
    assert_eq!(first.len(), 1, "{first:?}");
    let (first_rs, _, first_rev) = first[0].clone();
    assert_eq!(first_rev, "1");
    let first_hash = first_rs.trim_start_matches("web-").to_string();
    assert!(
        !first_hash.is_empty()
            && first_hash
                .bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)),
        "{first_rs}"
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
    ]);
    assert!(
        events.contains(&format!("Scaled up replica set {first_rs} from 0 to 3")),
        "{events}"
    );

    // A deleted pod is replaced.
    let before = names(&ready_pods(&c, "web"));
    let victim = before.iter().next().cloned().expect("a pod");
    c.ok(&["delete", "pod", &victim, "--wait=false"]);
    poll("the deleted pod replaced", WAIT, || {
        let now = names(&ready_pods(&c, "web"));
        (now.len() == 3 && !now.contains(&victim)).then_some(())
    });

    // A template change rolls out through new pods; with maxUnavailable 0 there are never
    // fewer than 3 ready pods, and old pods are never changed in place.
    let old_pods = names(&ready_pods(&c, "web"));
    c.ok(&["set", "env", "deployment/web", "VERSION=2"]);
    let mut saw_new_rs = false;
    poll("the env rollout to finish", WAIT, || {
        let pods = ready_pods(&c, "web");
        assert!(
            pods.len() >= 3,
            "fewer than 3 ready pods during the rollout: {:?}",
            names(&pods)
        );
        for p in &pods {
            let has_env = p["spec"]["containers"][0]["env"].is_array();
            let old = old_pods.contains(p["metadata"]["name"].as_str().unwrap_or(""));
            assert!(!(old && has_env), "an old pod was changed in place: {p}");
            saw_new_rs |= has_env;
        }
        let d = get_json(&c, &["deployment", "web"]);
        (complete(&d) && pods.iter().all(|p| hash_of(p) != first_hash)).then_some(())
    });
    assert!(saw_new_rs);
    let pods = ready_pods(&c, "web");
    assert_eq!(pods.len(), 3);
    assert!(names(&pods).is_disjoint(&old_pods));
    assert_eq!(revisions(&c, "web"), ["1", "2"]);
    let rev2 = c.ok(&["rollout", "history", "deployment/web", "--revision=2"]);
    assert!(rev2.contains("VERSION") && rev2.contains("2"), "{rev2}");

    // Undo goes back to the first template: the first ReplicaSet, now revision 3.
    c.ok(&["rollout", "undo", "deployment/web"]);
    rollout_status(&c, "web");
    let rss = replica_sets(&c, "web");
    let back = rss
        .iter()
        .find(|(n, _, _)| *n == first_rs)
        .expect("first RS kept");
    assert_eq!((back.1, back.2.as_str()), (3, "3"), "{rss:?}");
    assert_eq!(rss.len(), 2, "no third ReplicaSet: {rss:?}");
    let d = get_json(&c, &["deployment", "web"]);
    assert!(
        d["spec"]["template"]["spec"]["containers"][0]["env"].is_null(),
        "{d}"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(revisions(&c, "web"), ["2", "3"]);
}

#[test]
fn restart_scale_pause_and_resume() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], &deployment("app", 2, SURGE_ONLY));
    rollout_status(&c, "app");
    let before = names(&ready_pods(&c, "app"));

    // restart: a new ReplicaSet whose template carries kubectl's restartedAt annotation.
    c.ok(&["rollout", "restart", "deployment/app"]);
    rollout_status(&c, "app");
    let d = get_json(&c, &["deployment", "app"]);
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{d}"
    );
    poll("restarted pods", WAIT, || {
        let now = names(&ready_pods(&c, "app"));
        (now.len() == 2 && now.is_disjoint(&before)).then_some(())
    });
    assert_eq!(replica_sets(&c, "app").len(), 2);

    // scale up and down through the scale subresource.
    c.ok(&["scale", "deployment/app", "--replicas=5"]);
    rollout_status(&c, "app");
    poll("5 ready pods", WAIT, || {
        (ready_pods(&c, "app").len() == 5).then_some(())
    });
    c.ok(&["scale", "deployment/app", "--replicas=1"]);
    poll("1 pod left", WAIT, || {
        let pods = items(&get_json(&c, &["pods", "-l", "app=app"]));
        (pods.len() == 1 && is_ready(&pods[0])).then_some(())
    });
    let scale = json(&c.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/app/scale",
    ]));
    assert_eq!(scale["spec"]["replicas"], 1, "{scale}");
    assert_eq!(scale["status"]["selector"], "app=app");

    // paused: a template change makes no new ReplicaSet, scaling still applies; resume rolls.
    c.ok(&["rollout", "pause", "deployment/app"]);
    c.ok(&["set", "env", "deployment/app", "PAUSED=yes"]);
    c.ok(&["scale", "deployment/app", "--replicas=2"]);
    poll("scaled while paused", WAIT, || {
        (ready_pods(&c, "app").len() == 2).then_some(())
    });
    let d = get_json(&c, &["deployment", "app"]);
    let progressing = d["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(progressing["reason"], "DeploymentPaused", "{d}");
    assert_eq!(
        replica_sets(&c, "app").len(),
        2,
        "no new ReplicaSet while paused"
    );
    assert!(ready_pods(&c, "app")
        .iter()
        .all(|p| p["spec"]["containers"][0]["env"].is_null()));
    let out = c.kubectl(&["rollout", "undo", "deployment/app"]);
    assert!(
        !out.status.success(),
        "undo of a paused deployment must be refused"
    );
    c.ok(&["rollout", "resume", "deployment/app"]);
    rollout_status(&c, "app");
    let pods = ready_pods(&c, "app");
    assert_eq!(pods.len(), 2);
    assert!(pods
        .iter()
        .all(|p| p["spec"]["containers"][0]["env"][0]["name"] == "PAUSED"));
    assert_eq!(replica_sets(&c, "app").len(), 3);
}

#[test]
fn recreate_replaces_every_pod_at_once() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &deployment("rec", 2, "{type: Recreate}"),
    );
    rollout_status(&c, "rec");
    let old_hash = hash_of(&ready_pods(&c, "rec")[0]);
    c.ok(&["set", "env", "deployment/rec", "V=2"]);
    poll("the Recreate rollout", WAIT, || {
        let pods = items(&get_json(&c, &["pods", "-l", "app=rec"]));
        let hashes: BTreeSet<String> = pods.iter().map(hash_of).collect();
        assert!(
            !(hashes.contains(&old_hash) && hashes.len() > 1),
            "new pods started before the old ones were gone: {hashes:?}"
        );
        let d = get_json(&c, &["deployment", "rec"]);
        (complete(&d) && !hashes.contains(&old_hash)).then_some(())
    });
    assert_eq!(ready_pods(&c, "rec").len(), 2);
}

#[test]
fn replicaset_adopts_orphans_and_releases_relabelled_pods() {
    let c = Cluster::start_with_agent(&[]);
    c.ok(&[
        "run",
        "stray",
        "--image=busybox",
        "--labels=app=bare",
        "--",
        "sleep",
        "3600",
    ]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: bare}
spec:
  replicas: 2
  selector: {matchLabels: {app: bare}}
  template:
    metadata: {labels: {app: bare}}
    spec:
      containers: [{name: c, image: busybox, command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}]
"#,
    );
    let owner = |p: &Value| {
        p["metadata"]["ownerReferences"][0]["name"]
            .as_str()
            .map(str::to_string)
    };
    // The orphan is adopted, so only one pod is created.
    let pods = poll("two pods owned by the ReplicaSet", WAIT, || {
        let pods = items(&get_json(&c, &["pods", "-l", "app=bare"]));
        (pods.len() == 2 && pods.iter().all(|p| owner(p).as_deref() == Some("bare")))
            .then_some(pods)
    });
    assert!(names(&pods).contains("stray"));
    let rs = poll("status of the ReplicaSet", WAIT, || {
        let rs = get_json(&c, &["rs", "bare"]);
        (rs["status"]["readyReplicas"] == 2 && rs["status"]["availableReplicas"] == 2).then_some(rs)
    });
    assert_eq!(rs["status"]["replicas"], 2);
    assert_eq!(rs["status"]["fullyLabeledReplicas"], 2);
    assert_eq!(rs["status"]["observedGeneration"], 1);
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=bare",
    ]);
    assert_eq!(events.matches("SuccessfulCreate").count(), 1, "{events}");

    // A pod whose labels stop matching is released and replaced.
    c.ok(&["label", "pod", "stray", "app=elsewhere", "--overwrite"]);
    poll("the relabelled pod released and replaced", WAIT, || {
        let stray = get_json(&c, &["pod", "stray"]);
        let mine = items(&get_json(&c, &["pods", "-l", "app=bare"]));
        (owner(&stray).is_none() && mine.len() == 2 && !names(&mine).contains("stray"))
            .then_some(())
    });
    assert!(c.ok(&["get", "pod", "stray"]).contains("Running"));

    // kubectl scale works on ReplicaSets too.
    c.ok(&["scale", "rs/bare", "--replicas=1"]);
    poll("scaled to 1", WAIT, || {
        let pods = items(&get_json(&c, &["pods", "-l", "app=bare"]));
        (pods.len() == 1).then_some(())
    });
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=bare",
    ]);
    assert!(events.contains("SuccessfulDelete"), "{events}");
}

#[test]
fn rollout_finishes_after_the_server_is_killed() {
    let mut c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], &deployment("kill", 3, SURGE_ONLY));
    rollout_status(&c, "kill");
    // The new template's pods become ready only once a file exists in a hostPath directory,
    // so the rollout stalls, with nothing being created, at its first new pod.
    let gate = c.data_dir().join("gate");
    std::fs::create_dir_all(&gate).expect("gate dir");
    let gated = deployment("kill", 3, SURGE_ONLY)
        .replace(
            "        readinessProbe:\n          exec: {command: [\"true\"]}",
            "        env: [{name: STEP, value: \"2\"}]\n        volumeMounts: [{name: gate, mountPath: /gate}]\n        readinessProbe:\n          exec: {command: [\"test\", \"-f\", \"/gate/open\"]}",
        )
        + &format!("      volumes: [{{name: gate, hostPath: {{path: \"{}\"}}}}]\n", gate.display());
    assert!(gated.contains("/gate/open"), "{gated}");
    c.ok_stdin(&["apply", "-f", "-"], &gated);
    poll("the rollout stalled at its first new pod", WAIT, || {
        let pods = items(&get_json(&c, &["pods", "-l", "app=kill"]));
        let running_new = pods.iter().any(|p| {
            p["spec"]["containers"][0]["env"][0]["name"] == "STEP"
                && p["status"]["containerStatuses"][0]["state"]["running"].is_object()
        });
        let rss = replica_sets(&c, "kill");
        (running_new && rss.len() == 2 && rss.iter().all(|(_, n, _)| *n > 0)).then_some(())
    });
    c.kill9();
    c.restart();
    std::fs::write(gate.join("open"), b"").expect("open the gate");
    rollout_status(&c, "kill");
    let pods = items(&get_json(&c, &["pods", "-l", "app=kill"]));
    let live: Vec<&Value> = pods.iter().filter(|p| !deleting(p)).collect();
    assert_eq!(live.len(), 3, "{:?}", names(&pods));
    assert!(live
        .iter()
        .all(|p| p["spec"]["containers"][0]["env"][0]["name"] == "STEP" && is_ready(p)));
    let rss = replica_sets(&c, "kill");
    assert_eq!(rss.len(), 2, "{rss:?}");
    let sizes: BTreeSet<i64> = rss.iter().map(|(_, n, _)| *n).collect();
    assert_eq!(sizes, BTreeSet::from([0, 3]), "{rss:?}");
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=ReplicaSet",
    ]);
    let created = events.matches("SuccessfulCreate").count();
    assert_eq!(created, 6, "3 pods per template, none twice: {events}");
}
