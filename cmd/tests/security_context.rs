//! End-to-end: `securityContext` on real containers (root required, as in CI). Every container
//! runs one probe script that prints what it sees (ids, capabilities, seccomp mode,
//! `no_new_privs`, masked and read-only paths, mounts, devices, what it may write) as
//! `key=value` lines; the tests read them back with `kubectl logs` and compare with what
//! kubelet + containerd give the same pod. All pods of a test run at once in one cluster.

mod common;

use common::{json, poll, Cluster};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

const START: Duration = Duration::from_secs(90);

/// containerd's default capability set (CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW,
/// SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE).
const DEFAULT_CAPS: u64 = 0xa804_25fb;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_SYS_ADMIN: u64 = 1 << 21;

/// Prints what the container sees, one `key=value` per line. Failing commands print a
/// `denied`/`ro` value instead of an error, so the output parses whatever the context.
const PROBE: &str = r#"
echo uid=$(id -u)
echo gid=$(id -g)
echo groups=$(id -G)
for k in CapEff CapBnd CapPrm CapInh CapAmb Seccomp NoNewPrivs; do
  echo $k=$(awk -v k=$k: '$1==k {print $2}' /proc/self/status)
done
(touch /probe-root) 2>/dev/null && echo rootfs=rw || echo rootfs=ro
if [ -d /data ]; then
  (touch /data/probe) 2>/dev/null && echo data=rw || echo data=ro
  echo datagid=$(stat -c %g /data)
  echo filegid=$(stat -c %g /data/probe 2>/dev/null)
fi
echo timer_list=$(stat -c %F /proc/timer_list 2>/dev/null)
echo keys=$(stat -c %F /proc/keys 2>/dev/null)
echo firmware=$(ls /sys/firmware 2>/dev/null | wc -l)
for m in /proc/sys /proc/sysrq-trigger /proc/irq /sys /sys/fs/cgroup; do
  echo mount:$m=$(awk -v m=$m '$2==m {o=$4} END {split(o, a, ","); print a[1]}' /proc/mounts)
done
f=/sys/fs/cgroup/memory/memory.limit_in_bytes
[ -e $f ] || f=/sys/fs/cgroup/memory.max
echo cg_memory=$(cat $f 2>/dev/null)
v=$(cat $f)
(echo $v > $f) 2>/dev/null && echo cg_write=ok || echo cg_write=denied
v=$(cat /proc/sys/net/ipv4/ip_forward)
(echo $v > /proc/sys/net/ipv4/ip_forward) 2>/dev/null && echo procsys_write=ok || echo procsys_write=denied
v=$(cat /sys/class/net/lo/mtu)
(echo $v > /sys/class/net/lo/mtu) 2>/dev/null && echo sys_write=ok || echo sys_write=denied
echo dev=$(ls /dev | tr '\n' ' ')
(unshare -U true) 2>/dev/null && echo userns=ok || echo userns=denied
(touch /tmp/probe-chown && chown 1 /tmp/probe-chown) 2>/dev/null && echo chown=ok || echo chown=denied
echo port_range=$(cat /proc/sys/net/ipv4/ip_local_port_range)
echo done=1
"#;

/// The security fields of the container's PID 1, as `pid1_<field>=…`.
const PID1: &str = r#"
for k in CapEff CapBnd Seccomp NoNewPrivs; do
  echo pid1_$k=$(awk -v k=$k: '$1==k {print $2}' /proc/1/status)
done
"#;

/// A long-running container with `securityContext` `sc`.
fn sleeper(name: &str, sc: Value) -> Value {
    json!({
        "name": name,
        "image": "busybox",
        "command": ["sleep", "3600"],
        "securityContext": sc,
    })
}

/// `key=value` lines.
fn parse(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// A container running [`PROBE`] with `securityContext` `sc` (null: none).
fn probe(name: &str, sc: Value) -> Value {
    let mut c = json!({
        "name": name,
        "image": "busybox",
        "command": ["sh", "-c", PROBE],
    });
    if !sc.is_null() {
        c["securityContext"] = sc;
    }
    c
}

/// `c` with a 64 MiB memory limit.
fn limited(mut c: Value) -> Value {
    c["resources"] = json!({"limits": {"memory": "64Mi"}});
    c
}

/// The same with an emptyDir `data` mounted at `/data`.
fn probe_with_data(name: &str, sc: Value) -> Value {
    let mut c = probe(name, sc);
    c["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    c
}

/// A pod that runs once; `spec` is merged over the defaults.
fn pod(name: &str, containers: Vec<Value>, spec: Value) -> Value {
    let mut p = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": containers,
        },
    });
    if let Value::Object(extra) = spec {
        for (k, v) in extra {
            p["spec"][k] = v;
        }
    }
    p
}

fn apply(c: &Cluster, pods: Vec<Value>) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": pods});
    c.ok_stdin(&["apply", "-f", "-"], &list.to_string());
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

/// Waits until every container of `pod` has terminated and returns its probe output per
/// container (parsed `key=value` lines, plus `exit` = the exit code).
fn probe_results(c: &Cluster, pod: &str) -> HashMap<String, HashMap<String, String>> {
    let p = poll(&format!("pod {pod} done"), START, || {
        pod_json(c, pod)
            .filter(|p| matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
    });
    let mut out = HashMap::new();
    for cs in p["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = cs["name"].as_str().unwrap_or_default().to_string();
        let logs = c.ok(&["logs", pod, "-c", &name]);
        let mut kv = parse(&logs);
        assert_eq!(
            kv.get("done").map(String::as_str),
            Some("1"),
            "probe of {pod}/{name} did not finish:\n{logs}\n{p}"
        );
        let exit = cs["state"]["terminated"]["exitCode"].to_string();
        kv.insert("exit".into(), exit);
        out.insert(name, kv);
    }
    out
}

fn hex(v: &HashMap<String, String>, key: &str) -> u64 {
    let s = v.get(key).unwrap_or_else(|| panic!("no {key} in {v:?}"));
    u64::from_str_radix(s, 16).unwrap_or_else(|e| panic!("{key}={s}: {e}"))
}

fn get<'a>(v: &'a HashMap<String, String>, key: &str) -> &'a str {
    v.get(key).map(String::as_str).unwrap_or("<missing>")
}

fn group_set(v: &HashMap<String, String>) -> Vec<u32> {
    let mut g: Vec<u32> = get(v, "groups")
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    g.sort_unstable();
    g.dedup();
    g
}

/// This process's effective capabilities: the server under test runs with the same.
fn own_caps() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .expect("CapEff")
}

/// What an unmasked / masked path looks like, given what the host has there.
fn host_has(path: &str) -> bool {
    Path::new(path).exists()
}

fn host_firmware_entries() -> usize {
    std::fs::read_dir("/sys/firmware")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The host's `/dev` entries that containerd would hand to a privileged container (device
/// nodes at the top level, without `console`).
fn host_top_level_devices() -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    let mut out: Vec<String> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let Ok(t) = e.file_type() else { return false };
            (t.is_block_device() || t.is_char_device()) && e.file_name() != "console"
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn default_capabilities_privileged_and_masked_paths() {
    let c = Cluster::start_with_agent(&[]);
    apply(
        &c,
        vec![
            pod("plain", vec![probe("c", Value::Null)], json!({})),
            pod(
                "caps",
                vec![
                    probe(
                        "bind",
                        json!({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}),
                    ),
                    probe("admin", json!({"capabilities": {"add": ["SYS_ADMIN"]}})),
                    probe("none", json!({"capabilities": {"drop": ["ALL"]}})),
                    limited(probe("chown", json!({"capabilities": {"drop": ["CHOWN"]}}))),
                ],
                json!({}),
            ),
            pod(
                "priv",
                vec![probe("c", json!({"privileged": true}))],
                json!({}),
            ),
        ],
    );

    // A container without securityContext: containerd's defaults.
    let plain = &probe_results(&c, "plain")["c"];
    assert_eq!(get(plain, "exit"), "0", "{plain:?}");
    assert_eq!(hex(plain, "CapEff"), DEFAULT_CAPS, "{plain:?}");
    assert_eq!(hex(plain, "CapBnd"), DEFAULT_CAPS, "{plain:?}");
    assert_eq!(hex(plain, "CapPrm"), DEFAULT_CAPS, "{plain:?}");
    assert_eq!((hex(plain, "CapInh"), hex(plain, "CapAmb")), (0, 0));
    // kubelet's default (no --seccomp-default): Unconfined.
    assert_eq!(get(plain, "Seccomp"), "0", "{plain:?}");
    assert_eq!(get(plain, "NoNewPrivs"), "0", "{plain:?}");
    assert_eq!(get(plain, "uid"), "0");
    assert_eq!(get(plain, "rootfs"), "rw", "{plain:?}");
    assert_eq!(get(plain, "chown"), "ok", "{plain:?}");
    if host_has("/proc/timer_list") {
        assert_eq!(
            get(plain, "timer_list"),
            "character special file",
            "{plain:?}"
        );
    }
    if host_has("/proc/keys") {
        assert_eq!(get(plain, "keys"), "character special file", "{plain:?}");
    }
    assert_eq!(
        get(plain, "firmware"),
        "0",
        "/sys/firmware masked: {plain:?}"
    );
    for m in [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/irq",
        "/sys",
        "/sys/fs/cgroup",
    ] {
        if host_has(m) {
            assert_eq!(get(plain, &format!("mount:{m}")), "ro", "{m}: {plain:?}");
        }
    }
    assert_eq!(get(plain, "cg_write"), "denied", "{plain:?}");
    assert_eq!(get(plain, "procsys_write"), "denied", "{plain:?}");
    assert_eq!(get(plain, "sys_write"), "denied", "{plain:?}");
    let devs: Vec<&str> = get(plain, "dev").split_whitespace().collect();
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
    ] {
        assert!(devs.contains(&d), "/dev/{d} missing: {devs:?}");
    }
    for d in host_top_level_devices() {
        let default = ["null", "zero", "full", "random", "urandom", "tty", "ptmx"];
        if !default.contains(&d.as_str()) {
            assert!(
                !devs.contains(&d.as_str()),
                "host /dev/{d} visible: {devs:?}"
            );
        }
    }

    // Capabilities add/drop.
    let caps = probe_results(&c, "caps");
    assert_eq!(
        hex(&caps["bind"], "CapEff"),
        CAP_NET_BIND_SERVICE,
        "{caps:?}"
    );
    assert_eq!(
        hex(&caps["bind"], "CapBnd"),
        CAP_NET_BIND_SERVICE,
        "{caps:?}"
    );
    assert_eq!(
        hex(&caps["admin"], "CapEff"),
        DEFAULT_CAPS | CAP_SYS_ADMIN,
        "{caps:?}"
    );
    assert_eq!(hex(&caps["none"], "CapEff"), 0, "{caps:?}");
    assert_eq!(hex(&caps["none"], "CapBnd"), 0, "{caps:?}");
    assert_eq!(get(&caps["none"], "chown"), "denied", "{caps:?}");
    assert_eq!(hex(&caps["chown"], "CapEff"), DEFAULT_CAPS & !1, "{caps:?}");
    assert_eq!(get(&caps["chown"], "chown"), "denied", "{caps:?}");
    // The container sees its own cgroup (its memory limit), read-only.
    assert_eq!(get(&caps["chown"], "cg_memory"), "67108864", "{caps:?}");
    assert_eq!(get(&caps["chown"], "cg_write"), "denied", "{caps:?}");
    for (name, v) in &caps {
        assert_eq!(get(v, "exit"), "0", "{name}: {v:?}");
        // Still not privileged: masks and read-only /sys stay.
        assert_eq!(get(v, "mount:/sys"), "ro", "{name}: {v:?}");
        assert_eq!(get(v, "mount:/proc/sys"), "ro", "{name}: {v:?}");
    }

    // Privileged: every capability the node has, no seccomp, writable /sys, host devices,
    // nothing masked.
    let privileged = &probe_results(&c, "priv")["c"];
    assert_eq!(get(privileged, "exit"), "0", "{privileged:?}");
    assert_eq!(hex(privileged, "CapEff"), own_caps(), "{privileged:?}");
    assert_eq!(hex(privileged, "CapBnd"), own_caps(), "{privileged:?}");
    assert_eq!(get(privileged, "Seccomp"), "0", "{privileged:?}");
    assert_eq!(get(privileged, "NoNewPrivs"), "0", "{privileged:?}");
    assert_eq!(get(privileged, "mount:/sys"), "rw", "{privileged:?}");
    assert_eq!(
        get(privileged, "mount:/sys/fs/cgroup"),
        "rw",
        "{privileged:?}"
    );
    assert_eq!(get(privileged, "sys_write"), "ok", "{privileged:?}");
    assert_eq!(get(privileged, "cg_write"), "ok", "{privileged:?}");
    // Not even a mount of its own: part of the rw /proc.
    assert_eq!(get(privileged, "mount:/proc/sys"), "", "{privileged:?}");
    assert_eq!(get(privileged, "procsys_write"), "ok", "{privileged:?}");
    if host_has("/proc/timer_list") {
        assert_ne!(get(privileged, "timer_list"), "character special file");
    }
    assert_eq!(
        get(privileged, "firmware"),
        host_firmware_entries().to_string(),
        "/sys/firmware not masked: {privileged:?}"
    );
    let devs: Vec<&str> = get(privileged, "dev").split_whitespace().collect();
    for d in host_top_level_devices() {
        assert!(
            devs.contains(&d.as_str()),
            "host /dev/{d} missing: {devs:?}"
        );
    }
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}

#[test]
fn users_groups_read_only_root_no_new_privs_and_seccomp() {
    let c = Cluster::start_with_agent(&[]);
    apply(
        &c,
        vec![
            pod(
                "users",
                vec![
                    probe_with_data("podlevel", Value::Null),
                    probe_with_data("ctrlevel", json!({"runAsUser": 2000, "runAsGroup": 5000})),
                    probe("useronly", json!({"runAsUser": 0, "runAsNonRoot": false})),
                ],
                json!({"securityContext": {
                    "runAsUser": 1000,
                    "runAsGroup": 3000,
                    "runAsNonRoot": true,
                    "fsGroup": 2000,
                    "supplementalGroups": [4000],
                }}),
            ),
            pod(
                "nonroot",
                vec![probe("c", json!({"runAsNonRoot": true}))],
                json!({}),
            ),
            pod(
                "nonroot-zero",
                vec![probe("c", json!({"runAsNonRoot": true, "runAsUser": 0}))],
                json!({}),
            ),
            pod(
                "readonly",
                vec![
                    probe_with_data(
                        "ro",
                        json!({"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false}),
                    ),
                    probe("escalate", json!({"allowPrivilegeEscalation": true})),
                ],
                json!({"securityContext": {"sysctls": [
                    {"name": "net.ipv4.ip_local_port_range", "value": "20000 40000"},
                ]}}),
            ),
            pod(
                "seccomp",
                vec![
                    probe("runtimedefault", Value::Null),
                    probe(
                        "unconfined",
                        json!({"seccompProfile": {"type": "Unconfined"}}),
                    ),
                    probe("admin", json!({"capabilities": {"add": ["SYS_ADMIN"]}})),
                ],
                json!({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}),
            ),
            sleeper_pod(),
        ],
    );

    // runAsUser/runAsGroup at pod level, overridden per container; fsGroup and
    // supplementalGroups are added to every container's groups.
    let users = probe_results(&c, "users");
    let pl = &users["podlevel"];
    assert_eq!((get(pl, "uid"), get(pl, "gid")), ("1000", "3000"), "{pl:?}");
    assert_eq!(group_set(pl), vec![2000, 3000, 4000], "{pl:?}");
    assert_eq!(
        hex(pl, "CapEff"),
        0,
        "non-root: no effective capabilities: {pl:?}"
    );
    assert_eq!(hex(pl, "CapBnd"), DEFAULT_CAPS, "{pl:?}");
    assert_eq!(get(pl, "data"), "rw", "{pl:?}");
    assert_eq!(
        get(pl, "datagid"),
        "2000",
        "emptyDir owned by fsGroup: {pl:?}"
    );
    assert_eq!(get(pl, "filegid"), "2000", "setgid emptyDir: {pl:?}");
    let cl = &users["ctrlevel"];
    assert_eq!((get(cl, "uid"), get(cl, "gid")), ("2000", "5000"), "{cl:?}");
    assert_eq!(group_set(cl), vec![2000, 4000, 5000], "{cl:?}");
    let uo = &users["useronly"];
    assert_eq!((get(uo, "uid"), get(uo, "gid")), ("0", "3000"), "{uo:?}");
    assert_eq!(hex(uo, "CapEff"), DEFAULT_CAPS, "{uo:?}");
    for (name, v) in &users {
        assert_eq!(get(v, "exit"), "0", "{name}: {v:?}");
    }

    // runAsNonRoot with an image that runs as root: never started.
    for (name, msg) in [
        (
            "nonroot",
            "container has runAsNonRoot and image will run as root",
        ),
        (
            "nonroot-zero",
            "container's runAsUser breaks non-root policy",
        ),
    ] {
        let p = poll(&format!("{name} CreateContainerConfigError"), START, || {
            pod_json(&c, name).filter(|p| {
                container_status(p, "c")["state"]["waiting"]["reason"]
                    == "CreateContainerConfigError"
            })
        });
        let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
        let cs = container_status(&p, "c");
        let expected = format!("{msg} (pod: \"{name}_default({uid})\", container: c)");
        assert_eq!(cs["state"]["waiting"]["message"], expected.as_str(), "{p}");
        assert_eq!(cs["restartCount"], 0, "{p}");
        assert_eq!(p["status"]["phase"], "Pending", "{p}");
        let table = c.ok(&["get", "pod", name]);
        assert!(table.contains("CreateContainerConfigError"), "{table}");
        let events = c.ok(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
        ]);
        assert!(
            events.contains("Failed") && events.contains(&format!("Error: {msg}")),
            "{events}"
        );
        // Nothing was created for it on the node.
        let ctr_dir = c
            .data_dir()
            .join("agent/pods")
            .join(uid)
            .join("containers/c");
        let attempts = std::fs::read_dir(&ctr_dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(attempts, 0, "{}", ctr_dir.display());
    }

    // readOnlyRootFilesystem: / is read-only, volumes are not. allowPrivilegeEscalation:
    // false sets no_new_privs. Pod sysctls apply.
    let ro = probe_results(&c, "readonly");
    let r = &ro["ro"];
    assert_eq!(get(r, "rootfs"), "ro", "{r:?}");
    assert_eq!(get(r, "data"), "rw", "{r:?}");
    assert_eq!(get(r, "NoNewPrivs"), "1", "{r:?}");
    assert_eq!(get(r, "port_range"), "20000 40000", "{r:?}");
    let e = &ro["escalate"];
    assert_eq!(get(e, "rootfs"), "rw", "{e:?}");
    assert_eq!(get(e, "NoNewPrivs"), "0", "{e:?}");
    assert_eq!(get(e, "port_range"), "20000 40000", "{e:?}");

    // seccompProfile: pod-level RuntimeDefault blocks user namespaces (unshare) unless the
    // container has CAP_SYS_ADMIN; container-level Unconfined overrides it.
    let sc = probe_results(&c, "seccomp");
    let rd = &sc["runtimedefault"];
    assert_eq!(get(rd, "Seccomp"), "2", "{rd:?}");
    assert_eq!(get(rd, "userns"), "denied", "{rd:?}");
    assert_eq!(get(rd, "chown"), "ok", "{rd:?}");
    let un = &sc["unconfined"];
    assert_eq!(get(un, "Seccomp"), "0", "{un:?}");
    assert_eq!(get(un, "userns"), "ok", "{un:?}");
    let ad = &sc["admin"];
    assert_eq!(get(ad, "Seccomp"), "2", "{ad:?}");
    assert_eq!(get(ad, "userns"), "ok", "{ad:?}");

    // Processes exec'd into a running container get its user, capabilities and
    // no_new_privs; the container's own process (PID 1) has its seccomp filter too.
    let r = exec_probe(&c, "restricted");
    assert_eq!((get(&r, "uid"), get(&r, "gid")), ("1000", "0"), "{r:?}");
    assert_eq!((hex(&r, "CapEff"), hex(&r, "CapBnd")), (0, 0), "{r:?}");
    assert_eq!(get(&r, "NoNewPrivs"), "1", "{r:?}");
    assert_eq!(
        (
            get(&r, "pid1_Seccomp"),
            get(&r, "pid1_NoNewPrivs"),
            get(&r, "pid1_CapBnd")
        ),
        ("2", "1", "0000000000000000"),
        "{r:?}"
    );
    let d = exec_probe(&c, "rd");
    assert_eq!(hex(&d, "CapEff"), DEFAULT_CAPS, "{d:?}");
    assert_eq!(get(&d, "NoNewPrivs"), "0", "{d:?}");
    assert_eq!(get(&d, "pid1_Seccomp"), "2", "{d:?}");
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}

/// The `sleeper` pod: one restricted container (non-root, no capabilities, no privilege
/// escalation, RuntimeDefault) and one root container with RuntimeDefault.
fn sleeper_pod() -> Value {
    pod(
        "sleeper",
        vec![
            sleeper(
                "restricted",
                json!({
                    "runAsUser": 1000,
                    "runAsNonRoot": true,
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                }),
            ),
            sleeper("rd", json!({"seccompProfile": {"type": "RuntimeDefault"}})),
        ],
        json!({}),
    )
}

/// [`PROBE`] and [`PID1`] run through `kubectl exec` in container `ctr` of the sleeper pod
/// (once it runs).
fn exec_probe(c: &Cluster, ctr: &str) -> HashMap<String, String> {
    poll("sleeper running", START, || {
        pod_json(c, "sleeper").filter(|p| p["status"]["phase"] == "Running")
    });
    let script = format!("{PROBE}\n{PID1}");
    parse(&c.ok(&["exec", "sleeper", "-c", ctr, "--", "sh", "-c", &script]))
}

/// kubelet + runc: an exec'd process runs under the container's seccomp filter, with the
/// container's capabilities and `no_new_privs` (libcontainer 0.7's tenant builder drops the
/// filter; `kubelite shim-exec` installs it).
#[test]
fn exec_processes_get_the_container_seccomp_filter() {
    let c = Cluster::start_with_agent(&[]);
    apply(&c, vec![sleeper_pod()]);
    for (ctr, no_new_privs) in [("restricted", "1"), ("rd", "0")] {
        let r = exec_probe(&c, ctr);
        assert_eq!(
            (get(&r, "Seccomp"), get(&r, "NoNewPrivs")),
            ("2", no_new_privs),
            "{ctr}: {r:?}"
        );
        assert_eq!(get(&r, "pid1_Seccomp"), "2", "{ctr}: {r:?}");
        // Loading the filter without no_new_privs needs CAP_SYS_ADMIN for a moment: the
        // process must still end up with exactly the container's capabilities.
        assert_eq!(get(&r, "CapEff"), get(&r, "pid1_CapEff"), "{ctr}: {r:?}");
        assert_eq!(get(&r, "CapBnd"), get(&r, "pid1_CapBnd"), "{ctr}: {r:?}");
        assert_eq!(get(&r, "CapPrm"), get(&r, "CapEff"), "{ctr}: {r:?}");
        assert_eq!(get(&r, "userns"), "denied", "{ctr}: {r:?}");
    }
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}
