//! Test fixtures: a throwaway OCI bundle with a static busybox root filesystem, shims run
//! from this test binary, and a guard that removes every trace of a test container (its
//! processes by PID, its cgroups, its state) even when the test fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::super::launch::Launch;
use super::super::spawn::spawn_with;
use super::super::status::{is_running, read_exit, read_pid_record, signal, ExitInfo, ProcessRef};
use super::super::{ShimError, Signal};

/// Environment switches that turn this test binary into a shim, a shim-exec or a fake agent.
pub(super) const SHIM_CHILD: &str = "KUBELITE_SHIM_TEST_LAUNCH";
pub(super) const EXEC_CHILD: &str = "KUBELITE_SHIM_TEST_EXEC";
pub(super) const AGENT_CHILD: &str = "KUBELITE_SHIM_TEST_AGENT";

/// Generous bound for things that take milliseconds; only hit when something is broken.
pub(super) const DEADLINE: Duration = Duration::from_secs(60);

const APPLETS: &[&str] = &[
    "sh", "echo", "sleep", "cat", "head", "tr", "printf", "tty", "pwd", "true", "dd",
];

/// Whether container tests can run here (they need root and busybox).
pub(super) fn can_run_containers() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let busybox = Path::new("/bin/busybox").exists();
    if !root || !busybox {
        eprintln!("skipping container test: needs root and /bin/busybox");
    }
    root && busybox
}

/// This test binary, re-executed to run only the test `name` with `env` set.
pub(super) fn child_command(name: &str, env: &str, value: &std::ffi::OsStr) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        &format!("shim::tests::{name}"),
        "--nocapture",
        "--test-threads=1",
    ])
    .env(env, value);
    cmd
}

/// The shim command line `spawn` uses in tests: this binary in the role of `kubelite shim`.
pub(super) fn shim_command(launch_file: &Path) -> Command {
    child_command("child_shim", SHIM_CHILD, launch_file.as_os_str())
}

/// Polls `check` until it returns Some, failing after [`DEADLINE`].
pub(super) fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One parsed CRI log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CriLine {
    pub time: String,
    pub stream: String,
    pub tag: String,
    pub content: String,
}

pub(super) fn parse_cri(text: &str) -> Vec<CriLine> {
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let mut next = || parts.next().unwrap_or_default().to_owned();
            let l = CriLine {
                time: next(),
                stream: next(),
                tag: next(),
                content: next(),
            };
            assert!(
                l.time.parse::<jiff::Timestamp>().is_ok(),
                "bad timestamp in {line:?}"
            );
            assert!(l.stream == "stdout" || l.stream == "stderr", "{line:?}");
            assert!(l.tag == "F" || l.tag == "P", "{line:?}");
            l
        })
        .collect()
}

/// A test container: bundle, launch and cleanup guard.
pub(super) struct TestBox {
    pub dir: tempfile::TempDir,
    pub launch: Launch,
    pub shim: Option<ProcessRef>,
    /// A fake agent process started by the test (killed by PID on drop).
    pub agent: Option<Child>,
}

impl TestBox {
    /// A bundle running `args` with PID, IPC, UTS, mount and network namespaces and the
    /// cgroup `/kubelite-test-<test pid>/<id>`; `adjust` edits the config.json (as JSON)
    /// before it is written.
    pub fn new(name: &str, args: &[&str], adjust: impl FnOnce(&mut Value)) -> TestBox {
        let id = format!("klshim-{name}-{}", std::process::id());
        let dir = tempfile::tempdir().expect("tempdir");
        let bundle = dir.path().join("bundle");
        let bin = bundle.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        for d in ["proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(bundle.join("rootfs").join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }

        let mut spec = serde_json::to_value(oci_spec::runtime::Spec::default()).unwrap();
        spec["process"]["args"] = json!(args);
        spec["process"]["terminal"] = json!(false);
        spec["root"] = json!({"path": "rootfs", "readonly": false});
        spec["hostname"] = json!("shim-test");
        spec["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", cgroup_parent()));
        spec["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "network"}
        ]);
        clamp_rlimits(&mut spec);
        adjust(&mut spec);
        let parsed: oci_spec::runtime::Spec =
            serde_json::from_value(spec.clone()).expect("valid OCI config");
        parsed.save(bundle.join("config.json")).unwrap();

        let mut launch = Launch::new(
            id,
            &bundle,
            dir.path().join("state"),
            dir.path().join("logs/0.log"),
            dir.path().join("exit.json"),
            dir.path().join("pid.json"),
        );
        launch.shim_log = Some(dir.path().join("shim.log"));
        launch.tty = spec["process"]["terminal"] == json!(true);
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        TestBox {
            dir,
            launch,
            shim: None,
            agent: None,
        }
    }

    /// Starts the shim (this test binary as `kubelite shim`).
    pub fn spawn(&mut self) -> Result<u32, ShimError> {
        let result = spawn_with(&self.launch, shim_command);
        if let Ok(pid) = result {
            self.shim = read_pid_record(&self.launch.pid_file)
                .map(|r| r.shim)
                .or_else(|| ProcessRef::current(pid as i32));
        }
        result
    }

    pub fn container(&self) -> ProcessRef {
        read_pid_record(&self.launch.pid_file)
            .expect("pid file")
            .container
    }

    pub fn wait_exit(&self) -> ExitInfo {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(info) = read_exit(&self.launch.exit_file) {
                return info;
            }
            if Instant::now() > deadline {
                panic!("no exit file; shim log:\n{}", self.shim_log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn shim_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("shim.log")).unwrap_or_default()
    }

    pub fn log(&self) -> Vec<CriLine> {
        parse_cri(&std::fs::read_to_string(&self.launch.log_path).unwrap_or_default())
    }

    /// Cgroup directories of this container that exist right now.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        cgroup_roots()
            .into_iter()
            .map(|root| root.join(cgroup_parent()).join(&self.launch.id))
            .filter(|p| p.exists())
            .collect()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.launch.state_root.join(&self.launch.id)
    }

    /// Starts the shim through a fake agent (a child process of the test that calls `spawn`
    /// and prints the shim's PID); returns that PID. The agent is kept in `self.agent`.
    pub fn spawn_via_agent(&mut self) -> u32 {
        let json = serde_json::to_string(&self.launch).unwrap();
        let mut agent = child_command("child_agent", AGENT_CHILD, json.as_ref())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fake agent");
        let stdout = agent.stdout.take().unwrap();
        self.agent = Some(agent);
        // libtest prints "test <name> ... " before the test's own output, on the same line.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("SHIM ") {
                    let _ = tx.send(line[i + "SHIM ".len()..].trim().parse::<u32>());
                    break;
                }
            }
        });
        let shim_pid = match rx.recv_timeout(DEADLINE) {
            Ok(Ok(pid)) => pid,
            other => panic!("fake agent: {other:?}; shim log:\n{}", self.shim_log()),
        };
        self.shim = read_pid_record(&self.launch.pid_file).map(|r| r.shim);
        shim_pid
    }
}

impl Drop for TestBox {
    fn drop(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
        // The container first: its shim then cleans up and exits by itself.
        if let Some(record) = read_pid_record(&self.launch.pid_file) {
            let _ = signal(record.container, Signal::SIGKILL);
            let deadline = Instant::now() + DEADLINE;
            while is_running(record.container) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if let Some(shim) = self.shim {
            let deadline = Instant::now() + Duration::from_secs(10);
            while is_running(shim) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = signal(shim, Signal::SIGKILL);
        }
        // Whatever the shim did not delete.
        for dir in self.cgroup_dirs() {
            let freezer_state = dir.join("freezer.state");
            if freezer_state.exists() {
                let _ = std::fs::write(&freezer_state, "THAWED");
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::remove_dir(&dir).is_err() && Instant::now() < deadline {
                kill_cgroup_tasks(&dir);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // The shared parent goes with the last container of this test process (never while
        // another test may be creating a cgroup under it).
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        *live -= 1;
        if *live == 0 {
            for root in cgroup_roots() {
                let _ = std::fs::remove_dir(root.join(cgroup_parent()));
            }
        }
    }
}

/// SIGKILLs the processes listed in a leftover cgroup of a test container (these are the
/// test's own container processes, named by PID).
fn kill_cgroup_tasks(dir: &Path) {
    if let Ok(tasks) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in tasks.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            if let Some(p) = ProcessRef::current(pid) {
                let _ = signal(p, Signal::SIGKILL);
            }
        }
    }
}

/// Test containers alive in this process (see `Drop for TestBox`).
static LIVE: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

/// Parent cgroup of this test process's containers.
pub(super) fn cgroup_parent() -> String {
    format!("kubelite-test-{}", std::process::id())
}

/// Every cgroup hierarchy root: v1 controllers and the unified (v2) mount.
fn cgroup_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                roots.push(e.path());
            }
        }
    }
    roots.push(PathBuf::from("/sys/fs/cgroup"));
    roots
}

/// Never ask for more than the host's hard limits.
fn clamp_rlimits(spec: &mut Value) {
    let Some(rlimits) = spec["process"]["rlimits"].as_array_mut() else {
        return;
    };
    for rl in rlimits {
        let resource = match rl["type"].as_str() {
            Some("RLIMIT_NOFILE") => libc::RLIMIT_NOFILE,
            Some("RLIMIT_NPROC") => libc::RLIMIT_NPROC,
            _ => continue,
        };
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills the struct we pass.
        if unsafe { libc::getrlimit(resource, &mut cur) } == 0 {
            for key in ["hard", "soft"] {
                let v = rl[key].as_u64().unwrap_or(0).min(cur.rlim_max);
                rl[key] = json!(v);
            }
        }
    }
}
