//! Tests of the shim: pure parts (CRI lines, rotation, procfs and cgroup parsing, exit
//! semantics) anywhere; real containers (busybox bundles, as root) through shims that are
//! this test binary re-executed in the role of `kubelite shim` / `kubelite shim-exec`.

mod bundle;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use super::cgroup::{
    container_relative_path, parse_hierarchies, parse_mountinfo, parse_oom_kill, parse_proc_cgroup,
};
use super::crilog::{rotated_files, CriLog, LineSplitter, Stream, Tag, MAX_LINE};
use super::spawn::spawn_with;
use super::status::{parse_stat, ProcessRef};
use super::*;
use bundle::*;

// ---------------------------------------------------------------------------------------
// Child roles (no-ops unless this binary was re-executed with the matching variable).

/// `kubelite shim <launch-file>`.
#[test]
fn child_shim() {
    if let Some(file) = std::env::var_os(SHIM_CHILD) {
        run_shim(Path::new(&file));
    }
}

/// `kubelite shim-exec` with an [`ExecRequest`] as JSON.
#[test]
fn child_exec() {
    if let Ok(json) = std::env::var(EXEC_CHILD) {
        run_exec(&serde_json::from_str(&json).unwrap());
    }
}

/// A stand-in agent: spawns a shim, prints `SHIM <pid>`, then waits to be killed.
#[test]
fn child_agent() {
    if let Ok(json) = std::env::var(AGENT_CHILD) {
        let launch: Launch = serde_json::from_str(&json).unwrap();
        let pid = spawn_with(&launch, shim_command).unwrap();
        let mut out = std::io::stdout().lock();
        writeln!(out, "SHIM {pid}").unwrap();
        out.flush().unwrap();
        drop(out);
        loop {
            std::thread::park();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pure parts.

fn split_all(chunks: &[&[u8]]) -> Vec<(Tag, Vec<u8>)> {
    let mut s = LineSplitter::default();
    let mut out = Vec::new();
    for chunk in chunks {
        s.push(chunk, |tag, c| out.push((tag, c.to_vec())));
    }
    s.finish(|tag, c| out.push((tag, c.to_vec())));
    out
}

#[test]
fn splitter_full_partial_and_long_lines() {
    assert_eq!(
        split_all(&[b"a\nb", b"c\n\nd"]),
        vec![
            (Tag::Full, b"a".to_vec()),
            (Tag::Full, b"bc".to_vec()),
            (Tag::Full, b"".to_vec()),
            (Tag::Partial, b"d".to_vec()),
        ]
    );
    let mut long = vec![b'x'; MAX_LINE + 10];
    long.push(b'\n');
    let got = split_all(&[&long[..100], &long[100..]]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], (Tag::Partial, vec![b'x'; MAX_LINE]));
    assert_eq!(got[1], (Tag::Full, vec![b'x'; 10]));
    // Exactly MAX_LINE bytes and a newline is one full line.
    let mut exact = vec![b'y'; MAX_LINE];
    exact.push(b'\n');
    assert_eq!(
        split_all(&[&exact]),
        vec![(Tag::Full, vec![b'y'; MAX_LINE])]
    );
}

#[test]
fn cri_log_rotates_and_keeps_max_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c/0.log");
    let mut log = CriLog::open(&path, 200, 3).unwrap();
    for i in 0..100 {
        log.write(Stream::Stderr, Tag::Full, format!("line {i}").as_bytes())
            .unwrap();
    }
    let rotated = rotated_files(&path).unwrap();
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    let mut numbers = Vec::new();
    for file in rotated.iter().chain([&path]) {
        let text = std::fs::read_to_string(file).unwrap();
        for l in parse_cri(&text) {
            assert_eq!((l.stream.as_str(), l.tag.as_str()), ("stderr", "F"));
            numbers.push(l.content["line ".len()..].parse::<u32>().unwrap());
        }
    }
    // The newest lines survive, in order, without gaps; nothing else is in the directory.
    let first = numbers[0];
    assert_eq!(numbers, (first..100).collect::<Vec<_>>());
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        3
    );
}

#[test]
fn proc_stat_and_cgroup_parsing() {
    let stat = "1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
    let s = parse_stat(stat).unwrap();
    assert_eq!((s.state, s.start_time), ('S', 98765));
    let me = ProcessRef::current(std::process::id() as i32).unwrap();
    assert!(is_running(me));
    assert!(!is_running(ProcessRef {
        start_time: me.start_time + 1,
        ..me
    }));

    let (v1, v2) = parse_proc_cgroup("12:memory:/kubelite/x\n3:cpu,cpuacct:/y\n0::/z\n");
    assert_eq!(v1.as_deref(), Some("/kubelite/x"));
    assert_eq!(v2.as_deref(), Some("/z"));
    assert_eq!(
        container_relative_path("/kubelite/pod/c"),
        Some("kubelite/pod/c".into())
    );
    assert_eq!(container_relative_path(":youki:c"), Some(":youki:c".into()));
    assert_eq!(container_relative_path("/"), None);
    assert_eq!(container_relative_path(""), None);
    assert_eq!(container_relative_path("/a/../.."), None);
    let mounts = parse_mountinfo(
        "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n\
         35 25 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory\n\
         36 25 0:32 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids\n",
    );
    assert_eq!(
        mounts.v1_memory.unwrap().point,
        Path::new("/sys/fs/cgroup/memory")
    );
    assert_eq!(
        mounts.v2.unwrap().point,
        Path::new("/sys/fs/cgroup/unified")
    );
    assert_eq!(
        parse_hierarchies(
            "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n\
             31 25 0:27 / /proc rw - proc proc rw\n\
             35 25 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory\n\
             36 25 0:32 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids\n",
        ),
        [
            Path::new("/sys/fs/cgroup/unified"),
            Path::new("/sys/fs/cgroup/memory"),
            Path::new("/sys/fs/cgroup/with space"),
        ]
    );
    assert_eq!(
        parse_oom_kill("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
        Some(2)
    );
    assert_eq!(
        parse_oom_kill("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
        Some(1)
    );
}

#[test]
fn exit_semantics_and_file_formats() {
    let t = || "2024-01-01T00:00:00Z".to_owned();
    let e = ExitInfo::from_status(Some(0), None, false, Some(t()), t());
    assert_eq!((e.exit_code, e.reason), (0, ExitReason::Completed));
    let e = ExitInfo::from_status(Some(3), None, false, Some(t()), t());
    assert_eq!((e.exit_code, e.reason), (3, ExitReason::Error));
    let e = ExitInfo::from_status(None, Some(9), true, Some(t()), t());
    assert_eq!(
        (e.exit_code, e.signal, e.reason),
        (137, Some(9), ExitReason::OOMKilled)
    );
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["exitCode"], 137);
    assert_eq!(v["reason"], "OOMKilled");
    assert_eq!(v["finishedAt"], "2024-01-01T00:00:00Z");

    // A launch file written by an older agent without the optional fields still parses.
    let launch: Launch = serde_json::from_value(json!({
        "id": "c1", "bundle": "/b", "stateRoot": "/s", "logPath": "/l",
        "exitFile": "/e", "pidFile": "/p"
    }))
    .unwrap();
    assert_eq!(launch.log_max_bytes, DEFAULT_LOG_MAX_BYTES);
    assert_eq!(launch.log_max_files, DEFAULT_LOG_MAX_FILES);
    assert!(!launch.stdin && !launch.tty);
    assert_eq!(launch.launch_file(), Path::new("/p.launch.json"));
    assert_eq!(launch.lock_file(), Path::new("/p.lock"));
    let mut bad = launch.clone();
    bad.id = "../x".into();
    assert!(bad.validate().is_err());
}

#[test]
fn exec_command_line() {
    let cmd = exec_command(
        Path::new("/usr/bin/kubelite"),
        Path::new("/run/kl"),
        "c1",
        &["sh".into(), "-c".into(), "echo --x".into()],
        &["A=b=c".into()],
        Some("/tmp"),
        true,
    );
    let args: Vec<_> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        args,
        [
            "shim-exec",
            "--root=/run/kl",
            "--id=c1",
            "--env=A=b=c",
            "--cwd=/tmp",
            "--tty",
            "--",
            "sh",
            "-c",
            "echo --x"
        ]
    );
}

/// Signals never reach a process that merely has a recorded PID (PID reuse).
#[test]
fn signal_checks_start_time() {
    let mut child = Command::new("/bin/busybox")
        .args(["sleep", "1000"])
        .spawn()
        .unwrap();
    let real = ProcessRef::current(child.id() as i32).unwrap();
    let stale = ProcessRef {
        start_time: real.start_time.wrapping_sub(1),
        ..real
    };
    signal(stale, Signal::SIGKILL).unwrap();
    assert!(is_running(real));
    signal(real, Signal::SIGKILL).unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    assert!(!is_running(real));
    // Gone: still fine.
    signal(real, Signal::SIGKILL).unwrap();
}

// ---------------------------------------------------------------------------------------
// Real containers.

#[test]
fn container_output_and_exit_code() {
    if !can_run_containers() {
        return;
    }
    let script = "echo out; echo err >&2; head -c 20000 /dev/zero | tr '\\0' a; echo; \
                  printf tail; exit 3";
    let mut b = TestBox::new("output", &["sh", "-c", script], |_| {});
    b.spawn().expect("spawn");
    let info = b.wait_exit();
    assert_eq!(
        (info.exit_code, info.signal, info.reason),
        (3, None, ExitReason::Error),
        "{info:?}"
    );
    assert!(info.started_at.is_some());

    let log = b.log();
    let stream = |name: &str| -> Vec<(String, String)> {
        log.iter()
            .filter(|l| l.stream == name)
            .map(|l| (l.tag.clone(), l.content.clone()))
            .collect()
    };
    let a = |n: usize| "a".repeat(n);
    assert_eq!(
        stream("stdout"),
        vec![
            ("F".into(), "out".into()),
            ("P".into(), a(MAX_LINE)),
            ("F".into(), a(20000 - MAX_LINE)),
            ("P".into(), "tail".into()),
        ]
    );
    assert_eq!(stream("stderr"), vec![("F".into(), "err".into())]);

    // The pid file named the init; it is gone, and so are its state and cgroups.
    let record = read_pid_record(&b.launch.pid_file).unwrap();
    assert_eq!(read_pid(&b.launch.pid_file), Some(record.container.pid));
    assert!(!is_running(record.container));
    assert!(!b.state_dir().exists(), "libcontainer state left behind");
    assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new());
    wait_for("shim exit", || (!is_running(record.shim)).then_some(()));
    // Nothing to report, and libcontainer's own logging goes nowhere.
    assert_eq!(b.shim_log(), "");
}

#[test]
fn container_sigterm_exit_143() {
    if !can_run_containers() {
        return;
    }
    // Without a PID namespace: as PID 1 of its own namespace `sleep` (no handler) would
    // ignore SIGTERM, exactly as in Kubernetes, and only SIGKILL would stop it.
    let mut b = TestBox::new("sigterm", &["sleep", "1000"], |spec| {
        spec["linux"]["namespaces"] = json!([
            {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}
        ]);
    });
    b.spawn().expect("spawn");
    let c = b.container();
    assert!(is_running(c));
    assert!(read_exit(&b.launch.exit_file).is_none());
    signal(c, Signal::SIGTERM).unwrap();
    let info = b.wait_exit();
    assert_eq!(
        (info.exit_code, info.signal, info.reason),
        (143, Some(15), ExitReason::Error)
    );
}

#[test]
fn container_sigkill_exit_137() {
    if !can_run_containers() {
        return;
    }
    let mut b = TestBox::new("sigkill", &["sleep", "1000"], |_| {});
    b.spawn().expect("spawn");
    signal(b.container(), Signal::SIGKILL).unwrap();
    let info = b.wait_exit();
    assert_eq!(
        (info.exit_code, info.signal, info.reason),
        (137, Some(9), ExitReason::Error)
    );
    assert!(!b.state_dir().exists());
}

#[test]
fn container_log_rotation() {
    if !can_run_containers() {
        return;
    }
    let script = "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done";
    let mut b = TestBox::new("rotate", &["sh", "-c", script], |_| {});
    b.launch.log_max_bytes = 2048;
    b.launch.log_max_files = 3;
    b.spawn().expect("spawn");
    let info = b.wait_exit();
    assert_eq!(info.reason, ExitReason::Completed);
    let rotated = rotated_files(&b.launch.log_path).unwrap();
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    let mut numbers = Vec::new();
    for file in rotated.iter().chain([&b.launch.log_path]) {
        let size = std::fs::metadata(file).unwrap().len();
        if file != &b.launch.log_path {
            assert!(size >= 2048, "rotated early: {size}");
        }
        for l in parse_cri(&std::fs::read_to_string(file).unwrap()) {
            numbers.push(l.content["line-".len()..].parse::<u32>().unwrap());
        }
    }
    let first = numbers[0];
    assert!(first > 0, "nothing was rotated away");
    assert_eq!(numbers, (first..400).collect::<Vec<_>>());
}

/// Runs `kubelite shim-exec` (this binary in that role); returns (exit code, stdout, stderr).
fn run_exec_child(
    b: &TestBox,
    args: &[&str],
    env: &[&str],
    cwd: Option<&str>,
    tty: bool,
) -> (i32, String, String) {
    let request = ExecRequest {
        state_root: b.launch.state_root.clone(),
        id: b.launch.id.clone(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: env.iter().map(|s| s.to_string()).collect(),
        cwd: cwd.map(str::to_owned),
        tty,
        resize_fd: None,
    };
    let json = serde_json::to_string(&request).unwrap();
    let out = child_command("child_exec", EXEC_CHILD, json.as_ref())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // libtest announces the test before the exec's own output.
    let banner = "running 1 test\ntest shim::tests::child_exec ... ";
    let stdout = match stdout.find(banner) {
        Some(i) => stdout[i + banner.len()..].to_owned(),
        None => panic!("unexpected child output {stdout:?}"),
    };
    (
        out.status.code().unwrap_or(-1),
        stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exec_into_running_container() {
    if !can_run_containers() {
        return;
    }
    let mut b = TestBox::new("exec", &["sleep", "1000"], |spec| {
        spec["process"]["env"] = json!(["PATH=/bin", "FOO=from-spec", "KEEP=1"]);
    });
    b.spawn().expect("spawn");

    assert_eq!(run_exec_child(&b, &["echo", "hi"], &[], None, false).0, 0);
    assert_eq!(
        run_exec_child(&b, &["echo", "hi"], &[], None, false).1,
        "hi\n"
    );

    let (code, out, err) =
        run_exec_child(&b, &["sh", "-c", "echo oops >&2; exit 7"], &[], None, false);
    assert_eq!((code, out.as_str()), (7, ""));
    assert!(err.contains("oops"), "{err}");

    let (code, out, _) = run_exec_child(
        &b,
        &["sh", "-c", "echo $FOO $KEEP; pwd"],
        &["FOO=bar"],
        Some("/tmp"),
        false,
    );
    assert_eq!((code, out.as_str()), (0, "bar 1\n/tmp\n"));

    let (code, out, err) = run_exec_child(&b, &["tty"], &[], None, true);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("/dev/pts/"), "{out:?}");

    let (code, _, err) = run_exec_child(&b, &["/no/such/binary"], &[], None, false);
    assert_ne!(code, 0, "{err}");

    // The container itself was not disturbed by any of this.
    assert!(is_running(b.container()));
    assert!(read_exit(&b.launch.exit_file).is_none());
    signal(b.container(), Signal::SIGKILL).unwrap();
    assert_eq!(b.wait_exit().exit_code, 137);
    // Exec into a stopped container fails cleanly.
    assert_eq!(run_exec_child(&b, &["true"], &[], None, false).0, 125);
}

#[test]
fn shim_survives_its_parent() {
    if !can_run_containers() {
        return;
    }
    let mut b = TestBox::new(
        "orphan",
        &["sh", "-c", "echo started; exec sleep 1000"],
        |_| {},
    );
    let shim_pid = b.spawn_via_agent();
    let record = read_pid_record(&b.launch.pid_file).unwrap();
    assert_eq!(record.shim.pid as u32, shim_pid);
    // Not the agent's child, and in a session of its own.
    let agent_pid = b.agent.as_ref().unwrap().id() as i32;
    let stat = std::fs::read_to_string(format!("/proc/{shim_pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let (ppid, sid): (i32, i32) = (fields[1].parse().unwrap(), fields[3].parse().unwrap());
    assert_ne!(ppid, agent_pid);
    assert_ne!(sid, agent_pid);

    let mut agent = b.agent.take().unwrap();
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert!(is_running(record.shim));
    assert!(is_running(record.container));

    signal(record.container, Signal::SIGKILL).unwrap();
    let info = b.wait_exit();
    assert_eq!((info.exit_code, info.reason), (137, ExitReason::Error));
    assert!(b
        .log()
        .iter()
        .any(|l| l.stream == "stdout" && l.content == "started"));
    wait_for("shim exit", || (!is_running(record.shim)).then_some(()));
}

#[test]
fn container_oom_killed() {
    if !can_run_containers() {
        return;
    }
    let mut b = TestBox::new(
        "oom",
        &["sh", "-c", "x=a; while true; do x=\"$x$x\"; done"],
        |spec| {
            spec["linux"]["resources"] = json!({
                "memory": {"limit": 16 << 20, "swap": 16 << 20}
            });
        },
    );
    b.spawn().expect("spawn");
    let info = b.wait_exit();
    assert_eq!(
        (info.exit_code, info.signal, info.reason),
        (137, Some(9), ExitReason::OOMKilled),
        "{info:?}\nshim log: {}",
        b.shim_log()
    );
    assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn container_start_error() {
    if !can_run_containers() {
        return;
    }
    let mut b = TestBox::new("starterr", &["/no/such/binary"], |_| {});
    let err = b.spawn().expect_err("must not start");
    assert!(matches!(err, ShimError::StartFailed { .. }), "{err}");
    let info = read_exit(&b.launch.exit_file).expect("exit file");
    assert_eq!((info.exit_code, info.reason), (128, ExitReason::StartError));
    assert!(info.message.is_some());
    assert!(!b.state_dir().exists());
    assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn container_stdin_fifo() {
    if !can_run_containers() {
        return;
    }
    let mut b = TestBox::new("stdin", &["sh", "-c", "read line; echo got:$line"], |_| {});
    b.launch.stdin = true;
    b.spawn().expect("spawn");
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(b.launch.stdin_fifo())
        .unwrap();
    fifo.write_all(b"hello\n").unwrap();
    let info = b.wait_exit();
    assert_eq!(info.reason, ExitReason::Completed, "{}", b.shim_log());
    let lines: Vec<_> = b
        .log()
        .into_iter()
        .map(|l| (l.stream, l.tag, l.content))
        .collect();
    assert_eq!(
        lines,
        vec![("stdout".into(), "F".into(), "got:hello".into())]
    );
}

#[test]
fn container_with_tty_and_stdin() {
    if !can_run_containers() {
        return;
    }
    let mut b = TestBox::new(
        "tty",
        &["sh", "-c", "tty; read line; echo got:$line"],
        |spec| {
            spec["process"]["terminal"] = json!(true);
        },
    );
    b.launch.stdin = true;
    assert!(b.launch.tty);
    b.spawn().expect("spawn");
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(b.launch.stdin_fifo())
        .unwrap();
    fifo.write_all(b"hello\n").unwrap();
    let info = b.wait_exit();
    assert_eq!(info.reason, ExitReason::Completed, "{}", b.shim_log());
    let log = b.log();
    assert!(log.iter().all(|l| l.stream == "stdout"), "{log:?}");
    assert!(
        log.iter().any(|l| l.content.starts_with("/dev/pts/")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l.content.trim_end() == "got:hello"),
        "{log:?}"
    );
}

#[test]
fn leftovers_without_pid_namespace_are_killed() {
    if !can_run_containers() {
        return;
    }
    // Without a PID namespace a background process outlives the init (and is re-parented to
    // the shim, a subreaper); the container still ends with its init.
    let mut b = TestBox::new(
        "leftover",
        &[
            "sh",
            "-c",
            "sleep 1000 & echo $! > /tmp/bg; echo bg; exit 0",
        ],
        |spec| {
            spec["linux"]["namespaces"] = json!([
                {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}
            ]);
        },
    );
    b.spawn().expect("spawn");
    let record = read_pid_record(&b.launch.pid_file).unwrap();
    let info = b.wait_exit();
    assert_eq!((info.exit_code, info.reason), (0, ExitReason::Completed));
    let bg: i32 = std::fs::read_to_string(b.launch.bundle.join("rootfs/tmp/bg"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        ProcessRef::current(bg).is_none_or(|p| !is_running(p)),
        "background process survived"
    );
    assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new());
    assert!(!b.state_dir().exists());
    wait_for("shim exit", || (!is_running(record.shim)).then_some(()));
}

#[test]
fn observe_follows_an_attempt_from_its_spawn_to_its_exit() {
    if !can_run_containers() {
        return;
    }
    let mut b = TestBox::new("observe", &["sleep", "1000"], |_| {});
    let (pid_file, exit_file) = (b.launch.pid_file.clone(), b.launch.exit_file.clone());
    let seen = || observe(&pid_file, &exit_file);
    assert_eq!(seen(), Observed::NeverStarted);
    // The spawner holds the owner lock from before the fork: a start is in progress (here no
    // shim comes, as when it was killed right before forking), and no second shim may start.
    let lock = owner::acquire(&b.launch.lock_file(), &b.launch.id).unwrap();
    assert!(
        matches!(seen(), Observed::Starting { shim: None, .. }),
        "{:?}",
        seen()
    );
    assert!(matches!(b.spawn(), Err(ShimError::Owned { .. })));
    drop(lock);
    assert_eq!(seen(), Observed::NeverStarted);

    b.spawn().expect("spawn");
    let record = read_pid_record(&pid_file).unwrap();
    assert_eq!(seen(), Observed::Running(record.clone()));
    // The shim holds the lock for its whole life and names itself in it.
    assert!(owner::is_held(&b.launch.lock_file()));
    assert_eq!(owner::owner(&b.launch.lock_file()).0, Some(record.shim));
    assert!(matches!(b.spawn(), Err(ShimError::Owned { .. })));
    // The lock never reaches the container's program.
    let lock_file = b.launch.lock_file();
    let open_in_container: Vec<_> = std::fs::read_dir(format!("/proc/{}/fd", record.container.pid))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|target| *target == lock_file)
        .collect();
    assert_eq!(open_in_container, Vec::<std::path::PathBuf>::new());

    signal(record.container, Signal::SIGKILL).unwrap();
    let info = b.wait_exit();
    assert_eq!(seen(), Observed::Exited(info));
    wait_for("shim exit", || (!is_running(record.shim)).then_some(()));
    assert!(!owner::is_held(&b.launch.lock_file()));
}

#[test]
fn a_container_whose_shim_died_is_killed_and_recorded_unknown() {
    if !can_run_containers() {
        return;
    }
    let mut b = TestBox::new("lost", &["sleep", "1000"], |_| {});
    b.spawn().expect("spawn");
    let record = read_pid_record(&b.launch.pid_file).unwrap();
    signal(record.shim, Signal::SIGKILL).unwrap();
    wait_for("shim gone", || (!is_running(record.shim)).then_some(()));
    // Nobody supervises the container any more, and nobody will record its exit.
    assert!(is_running(record.container));
    assert_eq!(
        observe(&b.launch.pid_file, &b.launch.exit_file),
        Observed::Lost(record.clone())
    );
    let cgroups_path = format!("/{}/{}", bundle::cgroup_parent(), b.launch.id);
    let info = wait_for("lost container settled", || {
        settle_lost(
            &record,
            &b.launch.exit_file,
            &b.launch.state_root,
            &b.launch.id,
            &cgroups_path,
        )
    });
    assert_eq!(
        (info.exit_code, info.reason, info.signal),
        (UNKNOWN_EXIT_CODE, ExitReason::Unknown, None)
    );
    assert_eq!(info.started_at.as_deref(), Some(record.started_at.as_str()));
    assert!(!is_running(record.container));
    assert!(!b.state_dir().exists());
    assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new());
    assert_eq!(
        observe(&b.launch.pid_file, &b.launch.exit_file),
        Observed::Exited(info)
    );
    // Nothing is left to remove.
    assert!(remove_container(
        &b.launch.state_root,
        &b.launch.id,
        &cgroups_path
    ));
}
