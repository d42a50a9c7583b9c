//! End-to-end: `kubelite server` killed while its node agent creates a container, then
//! restarted on the same data dir. Each step of the creation is hit deterministically through
//! the agent's debug-build test hook `KUBELITE_TEST_CRASH_AT=<point>@<subject>` (the process
//! SIGKILLs itself there, once per data dir); the restarted agent must adopt what runs, retry
//! what never started (not a restart), record a container whose shim died as exited (255,
//! `Unknown`), and leave no mount or shim behind once the pods are deleted (root required).

mod common;

use common::{json, poll, Cluster};
use serde_json::Value;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

const START: Duration = Duration::from_secs(90);

/// Every crash this file asks for, each with a subject (container `<name>#<attempt>` or pod
/// name) used by one test only: the variable is process-wide and every server inherits it.
const CRASHES: &[&str] = &[
    "after-sandbox@sandboxed",
    "after-id@c-id#0",
    "after-mount@c-mount#0",
    "after-bundle@c-bundle#0",
    "in-spawn@c-inspawn#0",
    "after-spawn@c-spawned#0",
    "after-bundle@twice#1",
    "after-bundle@held#0",
];

/// Sets `KUBELITE_TEST_CRASH_AT` for every server this test binary starts. False (the test
/// is skipped) in release builds, whose server ignores the hook.
fn arm_crash_points() -> bool {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("KUBELITE_TEST_CRASH_AT", CRASHES.join(",")));
    if !cfg!(debug_assertions) {
        eprintln!("skipping: the crash hook exists in debug builds only");
    }
    cfg!(debug_assertions)
}

fn pod_json(c: &Cluster, name: &str) -> Option<Value> {
    let out = c.kubectl(&["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| json(&String::from_utf8_lossy(&out.stdout)))
}

fn container_status<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

/// The state letter of a `/proc/<pid>/stat` text (None when empty).
fn proc_state(stat: &str) -> Option<&str> {
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
}

/// Whether process (pid, start time) still runs (not a zombie, PID not reused).
fn alive((pid, start_time): (i32, u64)) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rfind(')')
        .map(|i| stat[i + 1..].split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: field 3 (state) is at 0, field 22 (start time) at 19.
    fields.first().is_some_and(|s| !matches!(*s, "Z" | "X"))
        && fields.get(19).and_then(|t| t.parse::<u64>().ok()) == Some(start_time)
}

/// Waits until the server process has died (by its own hook), without reaping it.
fn wait_crashed(c: &Cluster) {
    let pid = c.pid();
    poll("the server killed at its crash point", START, || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        matches!(proc_state(&stat), None | Some("Z" | "X")).then_some(())
    });
}

/// The pod Running with its container `name` running and ready.
fn wait_running(c: &Cluster, pod: &str, name: &str) -> Value {
    poll(&format!("{pod} running"), START, || {
        pod_json(c, pod).filter(|p| {
            let cs = container_status(p, name);
            p["status"]["phase"] == "Running"
                && cs["state"]["running"].is_object()
                && cs["ready"] == true
        })
    })
}

fn pod_manifest(pod: &str, container: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers: [{{name: {container}, image: busybox, command: [\"sleep\", \"3600\"]}}]\n"
    )
}

/// `kubelite shim` processes whose launch file lies under `data` (this cluster's).
fn shims_of(data: &Path) -> Vec<u32> {
    let prefix = data.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            (args.get(1).map(String::as_str) == Some("shim")
                && args.get(2).is_some_and(|f| f.starts_with(&prefix)))
            .then_some(pid)
        })
        .collect()
}

/// Mount points under this cluster's pod directories.
fn pod_mounts(data: &Path) -> Vec<String> {
    let pods = data.join("agent/pods").to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&pods))
        .map(str::to_string)
        .collect()
}

/// Attempt 0 of the container named `name` (names are unique across this file's pods).
fn attempt_dir(data: &Path, name: &str) -> Option<PathBuf> {
    std::fs::read_dir(data.join("agent/pods"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|pod| pod.path().join("containers").join(name).join("0"))
        .find(|d| d.exists())
}

/// The attempt directories of container `name` of pod `uid`.
fn attempts(data: &Path, uid: &str, name: &str) -> Vec<String> {
    let dir: PathBuf = data
        .join("agent/pods")
        .join(uid)
        .join("containers")
        .join(name);
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Deletes every pod and checks the node is clean: no pod state, no mount, no shim.
fn delete_all_and_check_clean(c: &Cluster) {
    c.ok(&["delete", "pods", "--all", "--wait=false"]);
    let data = c.data_dir().to_path_buf();
    poll("pods cleaned up on the node", START, || {
        std::fs::read_dir(data.join("agent/pods"))
            .map(|d| d.count() == 0)
            .unwrap_or(true)
            .then_some(())
    });
    poll("pod objects gone", START, || {
        c.ok(&["get", "pods", "-o", "name"])
            .trim()
            .is_empty()
            .then_some(())
    });
    assert_eq!(pod_mounts(&data), Vec::<String>::new(), "leaked mounts");
    poll("no shim left", START, || {
        shims_of(&data).is_empty().then_some(())
    });
}

#[test]
fn a_kill_at_any_step_of_creating_a_container_is_recovered() {
    if !arm_crash_points() {
        return;
    }
    let mut c = Cluster::start_with_agent(&[]);
    let data = c.data_dir().to_path_buf();
    // (pod, container, adopted): the container's attempt 0 is interrupted at the point named
    // in CRASHES ("sandboxed" right after its sandbox was made). Before the shim is forked the
    // attempt is created again; once it is forked, the shim goes on without the agent and the
    // restarted agent adopts that very container.
    let cases = [
        ("sandboxed", "c", false),
        ("p-id", "c-id", false),
        ("p-mount", "c-mount", false),
        ("p-bundle", "c-bundle", false),
        ("p-inspawn", "c-inspawn", true),
        ("p-spawned", "c-spawned", true),
    ];
    for (pod, name, adopted) in cases {
        c.ok_stdin(&["apply", "-f", "-"], &pod_manifest(pod, name));
        wait_crashed(&c);
        let pid_file = attempt_dir(&data, name).map(|d| d.join("pid"));
        let before = if adopted {
            let pid_file = pid_file.clone().expect("attempt directory");
            Some(poll("the orphaned shim's pid file", START, || {
                std::fs::read_to_string(&pid_file).ok().map(|t| json(&t))
            }))
        } else {
            assert!(
                pid_file.is_none_or(|f| !f.exists()),
                "{pod}: started before the crash point"
            );
            None
        };
        c.restart();
        let p = wait_running(&c, pod, name);
        if let Some(before) = before {
            let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
            let now = std::fs::read_to_string(
                data.join(format!("agent/pods/{uid}/containers/{name}/0/pid")),
            )
            .map(|t| json(&t))
            .unwrap_or_default();
            assert_eq!(
                now, before,
                "{pod}: not the container started before the crash"
            );
            let container = &before["container"];
            let process = (
                container["pid"].as_i64().unwrap_or_default() as i32,
                container["startTime"].as_u64().unwrap_or_default(),
            );
            assert!(alive(process), "{pod}: the adopted container is gone");
        }
        let cs = container_status(&p, name);
        assert_eq!(cs["restartCount"], 0, "{pod}: {p}");
        assert!(
            cs["containerID"]
                .as_str()
                .is_some_and(|id| id.ends_with(&format!("-{name}-0"))),
            "{pod}: {p}"
        );
        assert!(
            cs["state"]["running"]["startedAt"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{pod}: {p}"
        );
        assert!(p["status"]["podIP"].is_string(), "{pod}: {p}");
        let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
        assert_eq!(attempts(&data, uid, name), vec!["0".to_string()], "{pod}");
    }
    // Every container runs once: one shim each, one root filesystem mount each (nothing
    // stacked on a rootfs by a retried attempt), and the earlier pods were undisturbed by the
    // later restarts.
    for (pod, name, _) in cases {
        let p = wait_running(&c, pod, name);
        assert_eq!(container_status(&p, name)["restartCount"], 0, "{pod}: {p}");
    }
    assert_eq!(shims_of(&data).len(), cases.len());
    let mut mounts: Vec<String> = pod_mounts(&data)
        .into_iter()
        .filter(|m| m.ends_with("/rootfs"))
        .collect();
    assert_eq!(mounts.len(), cases.len(), "{mounts:?}");
    mounts.dedup();
    assert_eq!(mounts.len(), cases.len(), "{mounts:?}");
    delete_all_and_check_clean(&c);
}

#[test]
fn an_interrupted_restart_is_retried_without_counting() {
    if !arm_crash_points() {
        return;
    }
    let mut c = Cluster::start_with_agent(&[]);
    // Fails once (exit 1), then runs: attempt 1 is interrupted after its bundle was written.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: flaky}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: state, emptyDir: {}}]
  containers:
  - name: twice
    image: busybox
    command: ["sh", "-c", "if [ -e /state/ran ]; then exec sleep 3600; fi; touch /state/ran; exit 1"]
    volumeMounts: [{name: state, mountPath: /state}]
"#,
    );
    wait_crashed(&c);
    c.restart();
    // (The status the dead agent wrote last may still show attempt 0 running.)
    let p = poll("flaky running again", START, || {
        pod_json(&c, "flaky").filter(|p| {
            let cs = container_status(p, "twice");
            cs["state"]["running"].is_object() && cs["restartCount"] != 0
        })
    });
    let cs = container_status(&p, "twice");
    assert_eq!(cs["restartCount"], 1, "{p}");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1, "{p}");
    assert!(
        cs["containerID"]
            .as_str()
            .is_some_and(|id| id.ends_with("-twice-1")),
        "{p}"
    );
    let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
    assert_eq!(attempts(c.data_dir(), uid, "twice"), vec!["0", "1"]);
    delete_all_and_check_clean(&c);
}

#[test]
fn a_container_whose_shim_died_with_the_agent_is_restarted() {
    if !arm_crash_points() {
        return;
    }
    let mut c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], &pod_manifest("orphan", "c"));
    let before = wait_running(&c, "orphan", "c");
    let uid = before["metadata"]["uid"].as_str().unwrap_or_default();
    let old_id = container_status(&before, "c")["containerID"].clone();
    let attempt = c
        .data_dir()
        .join(format!("agent/pods/{uid}/containers/c/0"));
    let record = json(&std::fs::read_to_string(attempt.join("pid")).expect("pid file"));
    let shim = record["shim"]["pid"].as_i64().expect("shim pid") as i32;
    let container = (
        record["container"]["pid"].as_i64().expect("container pid") as i32,
        record["container"]["startTime"]
            .as_u64()
            .expect("start time"),
    );
    // The agent dies and, while it is down, so does the container's shim (as if the node's
    // service manager had killed both): the container runs on, unsupervised, no exit recorded.
    c.kill9();
    // SAFETY: kill(2) on the shim's PID, read from its pid file a moment ago.
    assert_eq!(unsafe { libc::kill(shim, libc::SIGKILL) }, 0);
    poll("shim gone", START, || {
        let stat = std::fs::read_to_string(format!("/proc/{shim}/stat")).unwrap_or_default();
        matches!(proc_state(&stat), None | Some("Z" | "X")).then_some(())
    });
    assert!(alive(container), "the container died with its shim");
    c.restart();
    // The old container is killed and recorded as exited with containerd's unknown status;
    // the restart policy then runs a new one.
    let after = poll("orphan restarted", START, || {
        pod_json(&c, "orphan").filter(|p| {
            let cs = container_status(p, "c");
            cs["restartCount"] == 1 && cs["state"]["running"].is_object()
        })
    });
    let cs = container_status(&after, "c");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 255, "{after}");
    assert_eq!(
        cs["lastState"]["terminated"]["reason"], "Unknown",
        "{after}"
    );
    assert_eq!(
        cs["lastState"]["terminated"]["containerID"], old_id,
        "{after}"
    );
    assert_ne!(cs["containerID"], old_id, "{after}");
    assert!(!alive(container), "the old container still runs");
    let old = old_id
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("kubelite://");
    assert!(
        !c.data_dir().join("run/containers").join(old).exists(),
        "libcontainer state of the old container left behind"
    );
    assert_eq!(shims_of(c.data_dir()).len(), 1);
    delete_all_and_check_clean(&c);
}

#[test]
fn a_start_still_owned_by_a_shim_is_waited_for() {
    if !arm_crash_points() {
        return;
    }
    let mut c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], &pod_manifest("owned", "held"));
    wait_crashed(&c);
    // Stand in for a shim the dead agent forked that is still creating the container: hold
    // the attempt's owner lock, as a shim does from its spawner's fork to its exit.
    let attempt = attempt_dir(c.data_dir(), "held").expect("attempt directory");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(attempt.join("pid.lock"))
        .expect("lock file");
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    c.restart();
    // The restarted agent reports the container as being created and leaves the attempt to
    // its owner: nothing is removed or started while the lock is held.
    let p = poll("the status of the restarted agent", START, || {
        pod_json(&c, "owned").filter(|p| container_status(p, "held").is_object())
    });
    let cs = container_status(&p, "held");
    assert_eq!(cs["state"]["waiting"]["reason"], "ContainerCreating", "{p}");
    assert!(attempt.join("bundle/config.json").exists());
    assert!(!attempt.join("pid").exists());
    assert!(pod_mounts(c.data_dir())
        .iter()
        .any(|m| Path::new(m) == attempt.join("rootfs")));
    // The owner goes away without having started anything: the attempt is created again.
    drop(lock);
    let p = wait_running(&c, "owned", "held");
    assert_eq!(container_status(&p, "held")["restartCount"], 0, "{p}");
    let mounts: Vec<String> = pod_mounts(c.data_dir())
        .into_iter()
        .filter(|m| m.ends_with("/rootfs"))
        .collect();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    delete_all_and_check_clean(&c);
}
