//! Tests of the spec builder (pure: temp rootfs directories only, no root needed).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Arch, Capability, LinuxNamespaceType, LinuxSeccompAction, LinuxSeccompOperator, Mount,
    PosixRlimitType, Spec,
};
use serde_json::{json, Value};

use super::*;

const GI: u64 = 1 << 30;

fn host() -> HostInfo {
    HostInfo::unrestricted("x86_64", 4 * GI)
}

fn image() -> ImageConfigLite {
    ImageConfigLite {
        entrypoint: vec!["/ep-1".into()],
        cmd: vec!["foo".into(), "bar".into()],
        env: vec!["PATH=/image/bin:/usr/bin".into(), "IMG=1".into()],
        working_dir: String::new(),
        user: String::new(),
    }
}

fn pod_with(ctr: Value, pod_spec_extra: Value) -> Value {
    let mut spec = json!({ "containers": [ctr] });
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), pod_spec_extra.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "demo", "namespace": "default", "uid": "1234-abcd" },
        "spec": spec,
    })
}

fn ctr(extra: Value) -> Value {
    let mut c = json!({ "name": "app", "image": "busybox:1.36" });
    if let (Some(o), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            o.insert(k.clone(), v.clone());
        }
    }
    c
}

fn bind(src: &str, dest: &str) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_source(Some(PathBuf::from(src)));
    m.set_typ(Some("bind".into()));
    m.set_options(Some(vec!["rbind".into(), "rprivate".into()]));
    m
}

struct Case {
    pod: Value,
    image: ImageConfigLite,
    rootfs: PathBuf,
    env: Vec<(String, String)>,
    mounts: Vec<Mount>,
    join: bool,
    host: HostInfo,
}

impl Case {
    fn new(container: Value) -> Case {
        Case::with_pod(pod_with(container, json!({})))
    }

    fn with_pod(pod: Value) -> Case {
        Case {
            pod,
            image: image(),
            rootfs: PathBuf::from("/nonexistent/kubelite-test-rootfs"),
            env: vec![("GREETING".into(), "hello".into())],
            mounts: vec![bind("/var/lib/kubelite/pods/x/etc/hosts", "/etc/hosts")],
            join: true,
            host: host(),
        }
    }

    fn build(&self) -> Result<Spec, SpecError> {
        let container = &self.pod["spec"]["containers"][0];
        let input = ContainerInput {
            pod: &self.pod,
            container,
            image: &self.image,
            rootfs: self.rootfs.clone(),
            netns: self.join.then(|| PathBuf::from("/var/run/netns/pod1")),
            ipcns: self.join.then(|| PathBuf::from("/proc/42/ns/ipc")),
            utsns: self.join.then(|| PathBuf::from("/proc/42/ns/uts")),
            hostname: "demo".into(),
            env: self.env.clone(),
            mounts: self.mounts.clone(),
            cgroups_path: "/kubelite/pod1234-abcd/ctr1".into(),
            pod_cgroup_shares_default: true,
        };
        build_spec_for_host(&input, &self.host)
    }

    fn spec(&self) -> Spec {
        self.build().expect("spec builds")
    }
}

fn caps_set(names: &[&str]) -> HashSet<Capability> {
    names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(json!(n)).unwrap_or_else(|e| panic!("{n}: {e}"))
        })
        .collect()
}

fn process(spec: &Spec) -> &oci_spec::runtime::Process {
    spec.process().as_ref().expect("process")
}

fn linux(spec: &Spec) -> &oci_spec::runtime::Linux {
    spec.linux().as_ref().expect("linux")
}

fn env_of(spec: &Spec) -> Vec<String> {
    process(spec).env().clone().unwrap_or_default()
}

fn mount_dests(spec: &Spec) -> Vec<String> {
    spec.mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().display().to_string())
        .collect()
}

fn mount_at<'a>(spec: &'a Spec, dest: &str) -> &'a Mount {
    spec.mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new(dest))
        .unwrap_or_else(|| panic!("no mount at {dest}"))
}

fn namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    linux(spec)
        .namespaces()
        .iter()
        .flatten()
        .map(|n| (n.typ(), n.path().clone()))
        .collect()
}

#[test]
fn default_container() {
    let spec = Case::new(ctr(json!({}))).spec();
    let p = process(&spec);
    assert_eq!(
        p.args().clone().unwrap(),
        vec!["/ep-1", "foo", "bar"],
        "image ENTRYPOINT + CMD"
    );
    assert_eq!(p.cwd(), Path::new("/"));
    assert_eq!(p.terminal(), Some(false));
    assert_eq!(p.user().uid(), 0);
    assert_eq!(p.user().gid(), 0);
    assert_eq!(p.user().additional_gids().clone(), Some(vec![0]));
    assert_eq!(p.no_new_privileges(), None, "omitted when false");
    assert_eq!(p.oom_score_adj(), Some(1000), "BestEffort");
    assert_eq!(
        env_of(&spec),
        vec![
            "PATH=/image/bin:/usr/bin",
            "HOSTNAME=demo",
            "IMG=1",
            "GREETING=hello"
        ]
    );

    let caps = p.capabilities().as_ref().unwrap();
    let expected = caps_set(&[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]);
    assert_eq!(caps.bounding().as_ref(), Some(&expected));
    assert_eq!(caps.effective().as_ref(), Some(&expected));
    assert_eq!(caps.permitted().as_ref(), Some(&expected));
    assert_eq!(caps.inheritable().as_ref().map(HashSet::len), Some(0));
    assert_eq!(caps.ambient().as_ref().map(HashSet::len), Some(0));

    let rl = p.rlimits().clone().unwrap();
    assert_eq!(rl.len(), 1);
    assert_eq!(rl[0].typ(), PosixRlimitType::RlimitNofile);
    assert_eq!((rl[0].soft(), rl[0].hard()), (1_048_576, 1_048_576));

    let l = linux(&spec);
    assert_eq!(
        l.masked_paths().clone().unwrap(),
        DEFAULT_MASKED_PATHS.map(String::from).to_vec()
    );
    assert!(l
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/kcore".to_string()));
    assert_eq!(
        l.readonly_paths().clone().unwrap(),
        vec![
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]
    );
    assert!(l.seccomp().is_none(), "Unconfined is kubelet's default");
    assert_eq!(
        l.cgroups_path().clone(),
        Some(PathBuf::from("/kubelite/pod1234-abcd/ctr1"))
    );
    assert!(l.sysctl().is_none());
    assert!(
        l.devices().is_none(),
        "libcontainer creates the default device nodes"
    );
    assert_eq!(
        namespaces(&spec),
        vec![
            (LinuxNamespaceType::Pid, None),
            (
                LinuxNamespaceType::Ipc,
                Some(PathBuf::from("/proc/42/ns/ipc"))
            ),
            (
                LinuxNamespaceType::Uts,
                Some(PathBuf::from("/proc/42/ns/uts"))
            ),
            (LinuxNamespaceType::Mount, None),
            (
                LinuxNamespaceType::Network,
                Some(PathBuf::from("/var/run/netns/pod1"))
            ),
            (LinuxNamespaceType::Cgroup, None),
        ]
    );
    assert_eq!(spec.hostname(), &None, "joins the pod's UTS namespace");

    assert_eq!(
        mount_dests(&spec),
        vec![
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/sys/fs/cgroup",
            "/etc/hosts"
        ]
    );
    let sys = mount_at(&spec, "/sys");
    assert_eq!(sys.typ().as_deref(), Some("sysfs"));
    assert!(sys.options().as_ref().unwrap().contains(&"ro".to_string()));
    let shm = mount_at(&spec, "/dev/shm");
    assert!(shm
        .options()
        .as_ref()
        .unwrap()
        .contains(&"size=65536k".to_string()));
    let cg = mount_at(&spec, "/sys/fs/cgroup");
    assert_eq!(cg.typ().as_deref(), Some("cgroup"));
    assert!(cg.options().as_ref().unwrap().contains(&"ro".to_string()));
    // Then the same tree again, recursively read-only (libcontainer ignores `ro` on cgroup v1).
    let rebind = &spec.mounts().as_ref().unwrap()[7];
    assert_eq!(rebind.destination(), Path::new("/sys/fs/cgroup"));
    assert_eq!(rebind.typ().as_deref(), Some("bind"));
    assert_eq!(
        rebind.source().as_deref(),
        Some(Path::new("/nonexistent/kubelite-test-rootfs/sys/fs/cgroup"))
    );
    assert_eq!(
        rebind.options().clone().unwrap(),
        vec!["rbind", "rro", "nosuid", "noexec", "nodev"]
    );

    let res = l.resources().as_ref().unwrap();
    let cpu = res.cpu().as_ref().unwrap();
    assert_eq!(cpu.shares(), Some(2), "BestEffort gets the minimum shares");
    assert_eq!(cpu.period(), Some(100_000));
    assert_eq!(cpu.quota(), None);
    assert!(res.memory().is_none());
    let devices: Vec<String> = res
        .devices()
        .iter()
        .flatten()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(devices[0], "a *:* rwm");
    assert!(!res.devices().as_ref().unwrap()[0].allow());
    for d in [
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm",
        "c 1:8 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 136:* rwm",
        "c 5:2 rwm",
    ] {
        assert!(devices.contains(&d.to_string()), "{d} allowed");
    }

    let root = spec.root().as_ref().unwrap();
    assert_eq!(root.path(), Path::new("/nonexistent/kubelite-test-rootfs"));
    assert_eq!(root.readonly(), Some(false));
    let ann = spec.annotations().as_ref().unwrap();
    assert_eq!(ann["io.kubernetes.cri.container-type"], "container");
    assert_eq!(ann["io.kubernetes.cri.container-name"], "app");
    assert_eq!(ann["io.kubernetes.cri.sandbox-namespace"], "default");
    assert_eq!(ann["io.kubernetes.cri.image-name"], "busybox:1.36");
}

#[test]
fn spec_round_trips_through_json() {
    let mut case = Case::new(ctr(json!({
        "tty": true,
        "resources": { "requests": { "cpu": "250m", "memory": "64Mi" }, "limits": { "cpu": "1", "memory": "128Mi" } },
        "securityContext": { "seccompProfile": { "type": "RuntimeDefault" }, "allowPrivilegeEscalation": false },
    })));
    case.pod["spec"]["securityContext"] =
        json!({ "sysctls": [{ "name": "kernel.shm_rmid_forced", "value": "1" }] });
    let spec = case.spec();
    let text = serde_json::to_string_pretty(&spec).unwrap();
    let back: Spec = serde_json::from_str(&text).unwrap();
    assert_eq!(back, spec);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["ociVersion"], oci_spec::runtime::VERSION);
    assert_eq!(v["linux"]["cgroupsPath"], "/kubelite/pod1234-abcd/ctr1");
    assert_eq!(v["linux"]["resources"]["memory"]["limit"], 134_217_728);
    assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(v["process"]["noNewPrivileges"], true);
    assert_eq!(v["process"]["terminal"], true);
    assert_eq!(v["linux"]["sysctl"]["kernel.shm_rmid_forced"], "1");
    assert!(v["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .contains(&json!("CAP_NET_RAW")));
}

// The table of "Define a Command and Arguments for a Container" (Kubernetes docs).
#[test]
fn command_and_args_table() {
    let img = ImageConfigLite {
        entrypoint: vec!["/ep-1".into()],
        cmd: vec!["foo".into(), "bar".into()],
        ..Default::default()
    };
    let cases = [
        (json!({}), vec!["/ep-1", "foo", "bar"]),
        (json!({ "command": ["/ep-2"] }), vec!["/ep-2"]),
        (
            json!({ "args": ["zoo", "boo"] }),
            vec!["/ep-1", "zoo", "boo"],
        ),
        (
            json!({ "command": ["/ep-2"], "args": ["zoo", "boo"] }),
            vec!["/ep-2", "zoo", "boo"],
        ),
        (
            json!({ "command": [], "args": [] }),
            vec!["/ep-1", "foo", "bar"],
        ),
    ];
    for (c, want) in cases {
        assert_eq!(command_line(&c, &img).unwrap(), want, "{c}");
    }
    // No ENTRYPOINT: CMD alone, or args alone.
    let cmd_only = ImageConfigLite {
        cmd: vec!["sh".into()],
        ..Default::default()
    };
    assert_eq!(command_line(&json!({}), &cmd_only).unwrap(), vec!["sh"]);
    assert_eq!(
        command_line(&json!({ "args": ["echo", "hi"] }), &cmd_only).unwrap(),
        vec!["echo", "hi"]
    );
    // ENTRYPOINT [""] counts as none.
    let empty_ep = ImageConfigLite {
        entrypoint: vec![String::new()],
        cmd: vec!["run".into()],
        ..Default::default()
    };
    assert_eq!(command_line(&json!({}), &empty_ep).unwrap(), vec!["run"]);
    // Nothing at all.
    assert!(matches!(
        command_line(&json!({}), &ImageConfigLite::default()),
        Err(SpecError::NoCommand)
    ));
    assert_eq!(SpecError::NoCommand.to_string(), "no command specified");
}

#[test]
fn command_expansion_uses_container_env() {
    let c = json!({
        "command": ["/bin/echo", "$(MESSAGE)", "$$(MESSAGE)", "$(MISSING)"],
        "args": ["$(GREETING) $(NAME)"],
        "env": [
            { "name": "NAME", "value": "world" },
            { "name": "GREETING", "value": "hello $(NAME)" },
            { "name": "MESSAGE", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
        ],
    });
    assert_eq!(
        command_line(&c, &ImageConfigLite::default()).unwrap(),
        vec![
            "/bin/echo",
            "$(MESSAGE)",
            "$(MESSAGE)",
            "$(MISSING)",
            "hello world world"
        ]
    );
    let env = vec![("MESSAGE".to_string(), "resolved".to_string())];
    assert_eq!(
        command_line_with_env(&c, &ImageConfigLite::default(), &env).unwrap(),
        vec![
            "/bin/echo",
            "resolved",
            "$(MESSAGE)",
            "$(MISSING)",
            "$(GREETING) $(NAME)"
        ]
    );
    // build_spec expands against the resolved env.
    let mut case = Case::new(ctr(json!({ "command": ["sh", "-c", "echo $(GREETING)"] })));
    case.env = vec![("GREETING".into(), "hi".into())];
    assert_eq!(
        process(&case.spec()).args().clone().unwrap(),
        vec!["sh", "-c", "echo hi"]
    );
}

#[test]
fn expand_vars_edge_cases() {
    let env: Vec<(String, String)> = [
        ("VAR_A", "A"),
        ("VAR_B", "B"),
        ("VAR_C", "C"),
        ("VAR_REF", "$(VAR_A)"),
        ("VAR_EMPTY", ""),
        ("DUP", "first"),
        ("DUP", "last"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let cases = [
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_A)-$(VAR_A)", "A-A"),
        ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("foo\\$(VAR_C)bar", "foo\\Cbar"),
        ("foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
        ("$$(VAR_A)", "$(VAR_A)"),
        ("$$$(VAR_A)", "$A"),
        ("$$$$(VAR_A)", "$$(VAR_A)"),
        ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
        ("$(VAR_DNE)", "$(VAR_DNE)"),
        ("$(VAR_EMPTY)", ""),
        ("$(VAR_REF)", "$(VAR_A)"),
        ("$(VAR_A", "$(VAR_A"),
        ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
        ("$(VAR_B)$(VAR_A", "B$(VAR_A"),
        ("$()", "$()"),
        ("$", "$"),
        ("$$", "$"),
        ("foo$", "foo$"),
        ("$VAR_A", "$VAR_A"),
        ("$(", "$("),
        ("$)", "$)"),
        ("$(DUP)", "last"),
        ("é$(VAR_A)€$é", "éA€$é"),
        ("no refs", "no refs"),
        ("", ""),
    ];
    for (input, want) in cases {
        assert_eq!(expand_vars(input, &env), want, "input {input:?}");
    }
}

#[test]
fn cpu_and_memory_resources() {
    let case = Case::new(ctr(json!({
        "resources": {
            "requests": { "cpu": "250m", "memory": "64Mi" },
            "limits": { "cpu": "500m", "memory": "128Mi" },
        },
    })));
    let spec = case.spec();
    let res = linux(&spec).resources().clone().unwrap();
    let cpu = res.cpu().clone().unwrap();
    assert_eq!(cpu.shares(), Some(256));
    assert_eq!(cpu.quota(), Some(50_000));
    assert_eq!(cpu.period(), Some(100_000));
    let mem = res.memory().unwrap();
    assert_eq!(mem.limit(), Some(128 * 1024 * 1024));
    assert_eq!(mem.swap(), None, "no swap controller on this test host");

    // With the cgroup v1 swap controller, memory+swap = memory (no swap).
    let mut swap = Case::new(ctr(
        json!({ "resources": { "limits": { "memory": "1Gi" } } }),
    ));
    swap.host.swap_controller = true;
    let mem = linux(&swap.spec())
        .resources()
        .clone()
        .unwrap()
        .memory()
        .unwrap();
    assert_eq!((mem.limit(), mem.swap()), (Some(1 << 30), Some(1 << 30)));

    // Only a limit: the request defaults to it (shares from the limit).
    let spec = Case::new(ctr(
        json!({ "resources": { "limits": { "cpu": "2", "memory": "1G" } } }),
    ))
    .spec();
    let res = linux(&spec).resources().clone().unwrap();
    assert_eq!(res.cpu().as_ref().unwrap().shares(), Some(2048));
    assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(200_000));
    assert_eq!(res.memory().unwrap().limit(), Some(1_000_000_000));
    assert_eq!(process(&spec).oom_score_adj(), Some(-997), "Guaranteed");

    assert_eq!(milli_cpu_to_shares(0), 2);
    assert_eq!(milli_cpu_to_shares(1), 2);
    assert_eq!(milli_cpu_to_shares(100), 102);
    assert_eq!(milli_cpu_to_shares(1000), 1024);
    assert_eq!(milli_cpu_to_shares(300_000), 262_144);
    assert_eq!(milli_cpu_to_shares(i64::MAX), 262_144);
    assert_eq!(milli_cpu_to_quota(0, 100_000), 0);
    assert_eq!(milli_cpu_to_quota(1, 100_000), 1000, "at least 1 ms");
    assert_eq!(milli_cpu_to_quota(10, 100_000), 1000);
    assert_eq!(milli_cpu_to_quota(1500, 100_000), 150_000);
    assert_eq!(milli_cpu_to_quota(i64::MAX, 100_000), i64::MAX);

    // pod_cgroup_shares_default = false leaves shares unset without a CPU request.
    let case = Case::new(ctr(json!({})));
    let container = &case.pod["spec"]["containers"][0];
    let input = ContainerInput {
        pod: &case.pod,
        container,
        image: &case.image,
        rootfs: case.rootfs.clone(),
        netns: None,
        ipcns: None,
        utsns: None,
        hostname: "demo".into(),
        env: vec![],
        mounts: vec![],
        cgroups_path: "/kubelite/x".into(),
        pod_cgroup_shares_default: false,
    };
    let spec = build_spec_for_host(&input, &host()).unwrap();
    assert_eq!(
        linux(&spec)
            .resources()
            .as_ref()
            .unwrap()
            .cpu()
            .as_ref()
            .unwrap()
            .shares(),
        None
    );

    // Invalid quantities are errors.
    let bad = Case::new(ctr(
        json!({ "resources": { "limits": { "memory": "lots" } } }),
    ));
    let err = bad.build().unwrap_err();
    assert!(matches!(err, SpecError::Quantity { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid quantity \"lots\" in resources.limits.memory"
    );
}

#[test]
fn qos_classes() {
    let pod = |containers: Value, init: Value| json!({ "metadata": { "name": "p" }, "spec": { "containers": containers, "initContainers": init } });
    let res = |r: Value| json!({ "name": "c", "resources": r });
    assert_eq!(
        qos_class(&pod(json!([res(json!({}))]), json!([]))),
        "BestEffort"
    );
    assert_eq!(
        qos_class(&pod(
            json!([res(json!({ "requests": { "cpu": "0", "memory": "0" } }))]),
            json!([])
        )),
        "BestEffort",
        "zero quantities don't count"
    );
    assert_eq!(
        qos_class(&pod(
            json!([res(json!({ "requests": { "cpu": "100m" } }))]),
            json!([])
        )),
        "Burstable"
    );
    assert_eq!(
        qos_class(&pod(
            json!([res(json!({ "limits": { "cpu": "1", "memory": "1Gi" } }))]),
            json!([])
        )),
        "Guaranteed",
        "requests default to limits"
    );
    assert_eq!(
        qos_class(&pod(
            json!([res(
                json!({ "requests": { "cpu": "1000m", "memory": "1024Mi" }, "limits": { "cpu": "1", "memory": "1Gi" } })
            )]),
            json!([])
        )),
        "Guaranteed",
        "equal quantities in other forms"
    );
    assert_eq!(
        qos_class(&pod(
            json!([res(
                json!({ "requests": { "cpu": "500m", "memory": "1Gi" }, "limits": { "cpu": "1", "memory": "1Gi" } })
            )]),
            json!([])
        )),
        "Burstable"
    );
    assert_eq!(
        qos_class(&pod(
            json!([res(json!({ "limits": { "cpu": "1" } }))]),
            json!([])
        )),
        "Burstable",
        "memory limit missing"
    );
    assert_eq!(
        qos_class(&pod(
            json!([
                res(json!({ "limits": { "cpu": "1", "memory": "1Gi" } })),
                res(json!({}))
            ]),
            json!([])
        )),
        "Burstable",
        "a container without limits"
    );
    assert_eq!(
        qos_class(&pod(
            json!([res(json!({ "limits": { "cpu": "1", "memory": "1Gi" } }))]),
            json!([res(json!({ "requests": { "cpu": "100m" } }))])
        )),
        "Burstable",
        "init containers count"
    );
    assert_eq!(
        qos_class(&pod(
            json!([res(json!({ "limits": { "ephemeral-storage": "1Gi" } }))]),
            json!([])
        )),
        "BestEffort",
        "only cpu and memory matter"
    );
    let mut with_status = pod(json!([res(json!({}))]), json!([]));
    with_status["status"] = json!({ "qosClass": "Guaranteed" });
    assert_eq!(
        qos_class(&with_status),
        "Guaranteed",
        "status.qosClass wins"
    );
    assert_eq!(compute_qos_class(&with_status), "BestEffort");
}

#[test]
fn oom_score_adjustments() {
    let burstable = |mem: &str| {
        pod_with(
            ctr(json!({ "resources": { "requests": { "memory": mem } } })),
            json!({}),
        )
    };
    let score = |pod: &Value| oom_score_adj(pod, &pod["spec"]["containers"][0], 4 * GI);
    assert_eq!(score(&burstable("1Gi")), 750);
    assert_eq!(score(&burstable("4Gi")), 3, "never below 3");
    assert_eq!(score(&burstable("8Gi")), 3);
    assert_eq!(score(&burstable("1")), 999, "never 1000 for Burstable");
    let be = pod_with(ctr(json!({})), json!({}));
    assert_eq!(score(&be), 1000);
    let critical = pod_with(
        ctr(json!({})),
        json!({ "priorityClassName": "system-node-critical" }),
    );
    assert_eq!(score(&critical), -997);

    // A sidecar (restartable init container) scores no higher than the smallest regular one.
    let pod = json!({
        "metadata": { "name": "p" },
        "spec": {
            "containers": [
                { "name": "a", "resources": { "requests": { "memory": "2Gi" } } },
                { "name": "b", "resources": { "requests": { "memory": "1Gi" } } },
            ],
            "initContainers": [
                { "name": "side", "restartPolicy": "Always", "resources": { "requests": { "memory": "100Mi" } } },
            ],
        },
    });
    assert_eq!(
        oom_score_adj(&pod, &pod["spec"]["initContainers"][0], 4 * GI),
        750
    );

    // Without CAP_SYS_RESOURCE the score can't go below the agent's own.
    let mut case = Case::new(ctr(
        json!({ "resources": { "limits": { "cpu": "1", "memory": "1Gi" } } }),
    ));
    case.host.oom_score_adj_floor = Some(0);
    assert_eq!(process(&case.spec()).oom_score_adj(), Some(0));
}

#[test]
fn privileged_container() {
    let case = Case::new(ctr(json!({
        "securityContext": {
            "privileged": true,
            "seccompProfile": { "type": "RuntimeDefault" },
            "capabilities": { "drop": ["ALL"] },
        },
    })));
    let spec = case.spec();
    let caps = process(&spec).capabilities().clone().unwrap();
    assert_eq!(
        caps.bounding().as_ref().unwrap().len(),
        41,
        "every capability"
    );
    assert!(caps
        .effective()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysAdmin));
    assert_eq!(process(&spec).no_new_privileges(), None);
    let l = linux(&spec);
    assert!(l.masked_paths().is_none());
    assert!(l.readonly_paths().is_none());
    assert!(l.seccomp().is_none(), "privileged runs unconfined");
    assert!(!namespaces(&spec)
        .iter()
        .any(|(t, _)| *t == LinuxNamespaceType::Cgroup));
    let devices = l.resources().as_ref().unwrap().devices().clone().unwrap();
    assert_eq!(devices.len(), 1);
    assert!(devices[0].allow());
    assert_eq!(devices[0].to_string(), "a *:* rwm");
    for dest in ["/sys", "/sys/fs/cgroup"] {
        let opts = mount_at(&spec, dest).options().clone().unwrap();
        assert!(
            opts.contains(&"rw".to_string()) && !opts.contains(&"ro".to_string()),
            "{dest} rw"
        );
    }
    let cgroup_mounts = mount_dests(&spec)
        .iter()
        .filter(|d| *d == "/sys/fs/cgroup")
        .count();
    assert_eq!(cgroup_mounts, 1, "no read-only rebind");
    assert!(l.devices().is_none(), "no dev_dir: default nodes only");

    // With the host's /dev: its device nodes, as containerd's WithHostDevices.
    let mut with_dev = Case::new(ctr(json!({ "securityContext": { "privileged": true } })));
    with_dev.host.dev_dir = Some(PathBuf::from("/dev"));
    let spec = with_dev.spec();
    let devs = linux(&spec).devices().clone().unwrap();
    let null = devs
        .iter()
        .find(|d| d.path() == Path::new("/dev/null"))
        .expect("/dev/null");
    assert_eq!(
        (null.typ(), null.major(), null.minor()),
        (oci_spec::runtime::LinuxDeviceType::C, 1, 3)
    );
    assert_eq!(null.file_mode(), Some(0o666));
    for d in &devs {
        let p = d.path().display().to_string();
        assert!(
            p != "/dev/console" && !p.starts_with("/dev/pts/") && !p.starts_with("/dev/shm/"),
            "{p}"
        );
    }
    // Unprivileged containers never get them.
    let mut plain = Case::new(ctr(json!({})));
    plain.host.dev_dir = Some(PathBuf::from("/dev"));
    assert!(linux(&plain.spec()).devices().is_none());

    // On a host without CAP_SYS_RESOURCE, privileged gets what the host has.
    let mut case = case;
    case.host.capabilities = Some(0x1fffeffffff);
    let spec = case.spec();
    let bounding = process(&spec)
        .capabilities()
        .clone()
        .unwrap()
        .bounding()
        .clone()
        .unwrap();
    assert_eq!(bounding.len(), 40);
    assert!(!bounding.contains(&Capability::SysResource));
}

#[test]
fn capability_add_and_drop() {
    let caps_of = |sc: Value| {
        let spec = Case::new(ctr(json!({ "securityContext": sc }))).spec();
        process(&spec).capabilities().clone().unwrap()
    };
    let c = caps_of(json!({ "capabilities": { "drop": ["ALL"], "add": ["NET_BIND_SERVICE"] } }));
    assert_eq!(
        c.bounding().clone().unwrap(),
        caps_set(&["CAP_NET_BIND_SERVICE"])
    );
    assert_eq!(
        c.effective().clone().unwrap(),
        caps_set(&["CAP_NET_BIND_SERVICE"])
    );

    let c = caps_of(json!({ "capabilities": { "add": ["ALL"], "drop": ["CHOWN", "cap_kill"] } }));
    let b = c.bounding().clone().unwrap();
    assert_eq!(b.len(), 39);
    assert!(!b.contains(&Capability::Chown) && !b.contains(&Capability::Kill));

    let c = caps_of(
        json!({ "capabilities": { "add": ["sys_admin", "CAP_NET_ADMIN", "NOT_A_CAP"], "drop": ["NET_RAW"] } }),
    );
    let b = c.bounding().clone().unwrap();
    assert_eq!(b.len(), 15);
    assert!(b.contains(&Capability::SysAdmin) && b.contains(&Capability::NetAdmin));
    assert!(!b.contains(&Capability::NetRaw));

    // A capability the host lacks is not granted.
    let mut case = Case::new(ctr(
        json!({ "securityContext": { "capabilities": { "add": ["SYS_RESOURCE"] } } }),
    ));
    case.host.capabilities = Some(0x1fffeffffff);
    let b = process(&case.spec())
        .capabilities()
        .clone()
        .unwrap()
        .bounding()
        .clone()
        .unwrap();
    assert!(!b.contains(&Capability::SysResource));
    assert_eq!(b.len(), 14);
}

#[test]
fn no_new_privileges_follows_allow_privilege_escalation() {
    let nnp = |sc: Value| {
        process(&Case::new(ctr(json!({ "securityContext": sc }))).spec()).no_new_privileges()
    };
    assert_eq!(nnp(json!({})), None);
    assert_eq!(nnp(json!({ "allowPrivilegeEscalation": true })), None);
    assert_eq!(
        nnp(json!({ "allowPrivilegeEscalation": false })),
        Some(true)
    );
    assert_eq!(
        nnp(json!({ "allowPrivilegeEscalation": false, "capabilities": { "add": ["SYS_ADMIN"] } })),
        None
    );
}

#[test]
fn run_as_non_root() {
    let err = Case::new(ctr(json!({ "securityContext": { "runAsNonRoot": true } })))
        .build()
        .unwrap_err();
    assert!(matches!(err, SpecError::RunAsNonRoot(_)));
    assert_eq!(
        err.to_string(),
        "container has runAsNonRoot and image will run as root (pod: \"demo_default(1234-abcd)\", container: app)"
    );

    // Pod-level runAsNonRoot, image USER 0.
    let mut case = Case::with_pod(pod_with(
        ctr(json!({})),
        json!({ "securityContext": { "runAsNonRoot": true } }),
    ));
    case.image.user = "0:0".into();
    assert!(case
        .build()
        .unwrap_err()
        .to_string()
        .starts_with("container has runAsNonRoot and image will run as root"));
    case.image.user = "1000".into();
    assert_eq!(process(&case.spec()).user().uid(), 1000);
    case.image.user = "nobody".into();
    assert!(case
        .build()
        .unwrap_err()
        .to_string()
        .starts_with("container has runAsNonRoot and image has non-numeric user (nobody)"));

    let err = Case::new(ctr(
        json!({ "securityContext": { "runAsNonRoot": true, "runAsUser": 0 } }),
    ))
    .build()
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("container's runAsUser breaks non-root policy"),
        "{err}"
    );

    let spec = Case::new(ctr(
        json!({ "securityContext": { "runAsNonRoot": true, "runAsUser": 1000 } }),
    ))
    .spec();
    assert_eq!(process(&spec).user().uid(), 1000);
    // runAsNonRoot: false allows root.
    assert!(
        Case::new(ctr(json!({ "securityContext": { "runAsNonRoot": false } })))
            .build()
            .is_ok()
    );
}

fn temp_rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         # a comment\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
         app:x:1000:1000::/home/app:/bin/sh\n\
         broken line\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("etc/group"),
        "root:x:0:\n\
         wheel:x:10:root,app\n\
         staff:x:50:app\n\
         app:x:1000:app\n\
         nogroup:x:65534:\n",
    )
    .unwrap();
    dir
}

#[test]
fn user_resolution_from_rootfs() {
    let dir = temp_rootfs();
    let user_of = |image_user: &str, sc: Value, pod_sc: Value| {
        let mut case = Case::with_pod(pod_with(
            ctr(json!({ "securityContext": sc })),
            json!({ "securityContext": pod_sc }),
        ));
        case.rootfs = dir.path().to_path_buf();
        case.image.user = image_user.into();
        case.build().map(|s| {
            let u = process(&s).user().clone();
            (
                u.uid(),
                u.gid(),
                u.additional_gids().clone().unwrap_or_default(),
            )
        })
    };
    assert_eq!(
        user_of("nobody", json!({}), json!({})).unwrap(),
        (65534, 65534, vec![65534])
    );
    assert_eq!(
        user_of("app", json!({}), json!({})).unwrap(),
        (1000, 1000, vec![10, 50, 1000])
    );
    assert_eq!(
        user_of("app:staff", json!({}), json!({})).unwrap(),
        (1000, 50, vec![10, 50])
    );
    assert_eq!(
        user_of("app:4242", json!({}), json!({})).unwrap(),
        (1000, 4242, vec![10, 50, 4242])
    );
    assert_eq!(
        user_of("1000", json!({}), json!({})).unwrap(),
        (1000, 1000, vec![10, 50, 1000])
    );
    assert_eq!(
        user_of("1000:2000", json!({}), json!({})).unwrap(),
        (1000, 2000, vec![10, 50, 2000])
    );
    assert_eq!(
        user_of("4321", json!({}), json!({})).unwrap(),
        (4321, 0, vec![0]),
        "unknown uid: gid 0"
    );
    assert_eq!(
        user_of("", json!({}), json!({})).unwrap(),
        (0, 0, vec![0, 10]),
        "root is in wheel"
    );
    let err = user_of("ghost", json!({}), json!({})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
    let err = user_of("app:ghosts", json!({}), json!({})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to find group ghosts: no matching entries in group file"
    );

    // Security contexts win over the image USER (container over pod); fsGroup and
    // supplementalGroups join the additional gids.
    assert_eq!(
        user_of(
            "nobody",
            json!({ "runAsUser": 1000 }),
            json!({ "runAsUser": 5, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000, 10] })
        )
        .unwrap(),
        (1000, 3000, vec![10, 50, 2000, 3000, 4000])
    );
    assert_eq!(
        user_of("1000:1000", json!({ "runAsGroup": 7 }), json!({})).unwrap(),
        (1000, 7, vec![7, 10, 50]),
        "runAsGroup with the image's user"
    );
    assert_eq!(
        user_of(
            "app",
            json!({}),
            json!({ "supplementalGroupsPolicy": "Strict", "supplementalGroups": [4000] })
        )
        .unwrap(),
        (1000, 1000, vec![1000, 4000]),
        "Strict: no /etc/group memberships"
    );

    // No /etc files at all: numeric users still work.
    let empty = tempfile::tempdir().unwrap();
    let mut case = Case::new(ctr(json!({})));
    case.rootfs = empty.path().to_path_buf();
    case.image.user = "1000".into();
    assert_eq!(process(&case.spec()).user().gid(), 0);
    case.image.user = "nobody".into();
    assert!(matches!(case.build(), Err(SpecError::User(_))));
}

#[test]
fn user_files_are_read_inside_the_rootfs() {
    let dir = temp_rootfs();
    let etc = dir.path().join("etc");
    std::fs::rename(etc.join("passwd"), etc.join("passwd.real")).unwrap();
    // An absolute symlink is resolved against the rootfs, not the host.
    std::os::unix::fs::symlink("/etc/passwd.real", etc.join("passwd")).unwrap();
    let mut case = Case::new(ctr(json!({})));
    case.rootfs = dir.path().to_path_buf();
    case.image.user = "app".into();
    assert_eq!(process(&case.spec()).user().uid(), 1000);
    // `..` cannot climb out of the rootfs.
    std::fs::remove_file(etc.join("passwd")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc/passwd.real", etc.join("passwd")).unwrap();
    assert_eq!(process(&case.spec()).user().uid(), 1000);
    assert_eq!(
        user::resolve_in_root(dir.path(), "/etc/../../x").unwrap(),
        dir.path().join("x")
    );
}

#[test]
fn rlimits_clamped_to_host_hard_limit() {
    let r = nofile_rlimits(20_000);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].typ(), PosixRlimitType::RlimitNofile);
    assert_eq!((r[0].soft(), r[0].hard()), (20_000, 20_000));
    let r = nofile_rlimits(u64::MAX);
    assert_eq!((r[0].soft(), r[0].hard()), (1_048_576, 1_048_576));

    let mut case = Case::new(ctr(json!({})));
    case.host.nofile_hard = 20_000;
    let spec = case.spec();
    let r = process(&spec).rlimits().clone().unwrap();
    assert_eq!((r[0].soft(), r[0].hard()), (20_000, 20_000));

    // This process's own limits.
    let here = host_rlimits();
    assert!(here[0].hard() <= HostInfo::current().nofile_hard);
    assert!(here[0].hard() <= DEFAULT_NOFILE);
}

#[test]
fn seccomp_profiles() {
    let seccomp_of = |sc: Value, pod_sc: Value| {
        let case = Case::with_pod(pod_with(
            ctr(json!({ "securityContext": sc })),
            json!({ "securityContext": pod_sc }),
        ));
        case.build().map(|s| linux(&s).seccomp().clone())
    };
    let rd = json!({ "seccompProfile": { "type": "RuntimeDefault" } });
    let unconfined = json!({ "seccompProfile": { "type": "Unconfined" } });

    let s = seccomp_of(rd.clone(), json!({}))
        .unwrap()
        .expect("RuntimeDefault has a profile");
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(
        s.architectures().clone().unwrap(),
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    );
    let rules = s.syscalls().clone().unwrap();
    let allowed: HashSet<&str> = rules
        .iter()
        .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
        .flat_map(|r| r.names().iter().map(String::as_str))
        .collect();
    for name in ["read", "write", "execve", "arch_prctl", "ptrace", "chown"] {
        assert!(allowed.contains(name), "{name} allowed");
    }
    for name in [
        "io_uring_setup",
        "mount",
        "unshare",
        "reboot",
        "kexec_load",
        "set_tls",
    ] {
        let allowed_somehow = rules.iter().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow && r.names().iter().any(|n| n == name)
        });
        assert!(!allowed_somehow, "{name} not allowed");
    }
    // SYS_CHROOT is in the default set, so chroot is allowed.
    assert!(allowed.contains("chroot"));
    assert!(
        !allowed.contains("mount")
            && !allowed.contains("io_uring_setup")
            && !allowed.contains("set_tls")
    );
    // clone: only without namespace flags (encoded for libcontainer 0.7: value = expected,
    // valueTwo = mask); clone3: ENOSYS.
    let clone = rules
        .iter()
        .find(|r| r.names() == &["clone"])
        .expect("clone rule");
    let arg = clone.args().clone().unwrap()[0];
    assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    assert_eq!(
        (arg.index(), arg.value(), arg.value_two()),
        (0, 0, Some(0x7E02_0000))
    );
    let clone3 = rules
        .iter()
        .find(|r| r.names() == &["clone3"])
        .expect("clone3 rule");
    assert_eq!(
        (clone3.action(), clone3.errno_ret()),
        (LinuxSeccompAction::ScmpActErrno, Some(38))
    );
    let socket = rules
        .iter()
        .find(|r| r.names() == &["socket"])
        .expect("socket rule");
    assert_eq!(
        socket.args().clone().unwrap()[0].op(),
        LinuxSeccompOperator::ScmpCmpNe
    );

    // CAP_SYS_ADMIN allows mount & co and unconditional clone.
    let s = seccomp_of(json!({ "seccompProfile": { "type": "RuntimeDefault" }, "capabilities": { "add": ["SYS_ADMIN"] } }), json!({}))
        .unwrap()
        .unwrap();
    let rules = s.syscalls().clone().unwrap();
    assert!(rules
        .iter()
        .any(|r| r.args().is_none() && r.names().iter().any(|n| n == "mount")));
    assert!(rules
        .iter()
        .any(|r| r.args().is_none() && r.names().iter().any(|n| n == "clone")));
    assert!(!rules
        .iter()
        .any(|r| r.names() == &["clone3"] && r.action() == LinuxSeccompAction::ScmpActErrno));
    assert!(!rules
        .iter()
        .any(|r| r.names() == &["clone"] && r.args().is_some()));
    // Dropping SYS_CHROOT drops chroot.
    let s = seccomp_of(json!({ "seccompProfile": { "type": "RuntimeDefault" }, "capabilities": { "drop": ["SYS_CHROOT"] } }), json!({}))
        .unwrap()
        .unwrap();
    assert!(!s
        .syscalls()
        .clone()
        .unwrap()
        .iter()
        .any(|r| r.names().iter().any(|n| n == "chroot")));

    // Pod-level profile applies when the container has none; the container's wins.
    assert!(seccomp_of(json!({}), rd.clone()).unwrap().is_some());
    assert!(seccomp_of(unconfined.clone(), rd.clone())
        .unwrap()
        .is_none());
    assert!(seccomp_of(rd.clone(), unconfined.clone())
        .unwrap()
        .is_some());
    assert!(seccomp_of(unconfined, json!({})).unwrap().is_none());
    assert!(
        seccomp_of(json!({}), json!({})).unwrap().is_none(),
        "unset = Unconfined"
    );
    let err = seccomp_of(
        json!({ "seccompProfile": { "type": "Localhost", "localhostProfile": "my.json" } }),
        json!({}),
    )
    .unwrap_err();
    assert!(matches!(err, SpecError::Unsupported(_)), "{err}");

    // Other architectures.
    let arm = default_seccomp_profile("aarch64", 0).unwrap();
    assert_eq!(
        arm.architectures().clone().unwrap(),
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    );
    let names: HashSet<String> = arm
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.names().clone())
        .collect();
    assert!(names.contains("set_tls") && !names.contains("arch_prctl"));
    assert!(default_seccomp_profile("mystery", 0)
        .unwrap()
        .architectures()
        .is_none());
}

#[test]
fn namespaces_and_hostname() {
    // Not joining: new namespaces, and the new UTS namespace gets the hostname.
    let mut case = Case::new(ctr(json!({})));
    case.join = false;
    let spec = case.spec();
    assert_eq!(
        namespaces(&spec),
        [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Cgroup
        ]
        .into_iter()
        .map(|t| (t, None))
        .collect::<Vec<_>>()
    );
    assert_eq!(spec.hostname().as_deref(), Some("demo"));

    // Host namespaces.
    let mut case = Case::with_pod(pod_with(
        ctr(json!({})),
        json!({ "hostNetwork": true, "hostPID": true, "hostIPC": true }),
    ));
    case.join = false;
    let spec = case.spec();
    assert_eq!(
        namespaces(&spec),
        vec![
            (LinuxNamespaceType::Mount, None),
            (LinuxNamespaceType::Cgroup, None)
        ]
    );
    assert_eq!(spec.hostname(), &None);
    assert!(env_of(&spec).contains(&"HOSTNAME=demo".to_string()));

    // cgroup v1 / hybrid hosts: no cgroup namespace (containerd's choice).
    case.host.cgroup2_unified = false;
    assert_eq!(
        namespaces(&case.spec()),
        vec![(LinuxNamespaceType::Mount, None)]
    );
}

#[test]
fn mounts_and_read_only_root() {
    let mut case = Case::new(ctr(
        json!({ "securityContext": { "readOnlyRootFilesystem": true } }),
    ));
    case.mounts = vec![
        bind("/data/sub", "/data/sub"),
        bind("/pod/termination-log", "/dev/termination-log"),
        bind("/data", "/data"),
        bind("/pod/shm", "/dev/shm"),
        bind("/pod/hosts", "/etc/hosts"),
        bind("/pod/resolv.conf", "/etc/resolv.conf/"),
    ];
    let spec = case.spec();
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    assert_eq!(
        mount_dests(&spec),
        vec![
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/sys/fs/cgroup",
            "/data",
            "/data/sub",
            "/dev/termination-log",
            "/dev/shm",
            "/etc/hosts",
            "/etc/resolv.conf/",
        ],
        "caller's /dev/shm replaces the default; caller mounts sorted by depth"
    );
    assert!(mount_at(&spec, "/etc/hosts")
        .options()
        .clone()
        .unwrap()
        .contains(&"ro".to_string()));
    assert!(!mount_at(&spec, "/data")
        .options()
        .clone()
        .unwrap()
        .contains(&"ro".to_string()));
    assert!(linux(&spec).rootfs_propagation().is_none());

    // A caller /dev replaces every default /dev mount; rslave sets the rootfs propagation.
    let mut case = Case::new(ctr(json!({})));
    let mut dev = bind("/host/dev", "/dev");
    dev.set_options(Some(vec!["rbind".into(), "rslave".into()]));
    case.mounts = vec![dev];
    let spec = case.spec();
    assert_eq!(
        mount_dests(&spec),
        vec!["/proc", "/sys", "/sys/fs/cgroup", "/sys/fs/cgroup", "/dev"]
    );
    assert_eq!(linux(&spec).rootfs_propagation().as_deref(), Some("rslave"));
}

#[test]
fn env_and_working_dir() {
    let mut case = Case::new(ctr(json!({ "tty": true, "workingDir": "/work" })));
    case.image.env = vec![
        "IMG=1".into(),
        "HOSTNAME=image".into(),
        "DROPPED=1".into(),
        "DROPPED".into(),
    ];
    case.env = vec![
        ("IMG".into(), "2".into()),
        ("PATH".into(), "/k8s/bin".into()),
    ];
    let spec = case.spec();
    assert_eq!(
        env_of(&spec),
        vec!["PATH=/k8s/bin", "TERM=xterm", "HOSTNAME=image", "IMG=2"],
        "later sources replace in place; a bare name unsets"
    );
    assert_eq!(process(&spec).terminal(), Some(true));
    assert_eq!(process(&spec).cwd(), Path::new("/work"));

    let mut case = Case::new(ctr(json!({})));
    case.image.env = vec![];
    case.image.working_dir = "/srv".into();
    let spec = case.spec();
    assert_eq!(env_of(&spec)[0], format!("PATH={DEFAULT_PATH}"));
    assert_eq!(process(&spec).cwd(), Path::new("/srv"));
}

#[test]
fn sysctls_from_pod_security_context() {
    let case = Case::with_pod(pod_with(
        ctr(json!({})),
        json!({ "securityContext": { "sysctls": [
            { "name": "kernel.shm_rmid_forced", "value": "1" },
            { "name": "net/ipv4/conf/eno2.100/rp_filter", "value": "0" },
        ] } }),
    ));
    let sysctl = linux(&case.spec()).sysctl().clone().unwrap();
    assert_eq!(sysctl["kernel.shm_rmid_forced"], "1");
    assert_eq!(sysctl["net.ipv4.conf.eno2/100.rp_filter"], "0");
    assert_eq!(sysctl.len(), 2);
}

#[test]
fn host_facts_parse() {
    assert_eq!(
        host::parse_cap_eff("Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n"),
        Some(0x1fffeffffff)
    );
    assert_eq!(
        host::parse_mem_total("MemTotal:        8041312 kB\nMemFree: 1 kB\n"),
        Some(8_041_312 * 1024)
    );
    let h = HostInfo::detect();
    assert!(!h.arch.is_empty());
    assert!(h.nofile_hard > 0);
}
