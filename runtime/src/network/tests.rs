//! End-to-end tests of pod networking with real namespaces, veths, bridge and nftables (root
//! only; skipped otherwise). Each test runs its [`Network`] inside a fresh, throw-away "host"
//! network namespace (its own bridge `klt…`, CIDR `10.199.n.0/24`, sysctls, nftables and
//! iptables), so it can neither disturb nor be disturbed by a kubelite running on the machine,
//! and everything network-side disappears with that namespace even when a test fails. Mounts
//! (namespace pins under the test's temporary run dir) are undone by a guard.
//! Synchronisation is by channels and joins only; nothing sleeps.

use std::fs::File;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth};
use nix::sched::{setns, unshare, CloneFlags};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::netns::ns_id;
use super::*;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Per-test names and directories.
struct Env {
    root: PathBuf,
    bridge: String,
    /// Third octet of the test's 10.199.n.0/24 pod CIDR and 10.198.n.0/30 uplink.
    n: u8,
}

impl Env {
    fn cfg(&self) -> NetworkConfig {
        NetworkConfig {
            bridge: self.bridge.clone(),
            pod_cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 199, self.n, 0), 24),
            state_dir: self.root.join("state"),
            run_dir: self.root.join("run"),
            masquerade: true,
        }
    }
}

/// Unmounts everything below a directory (namespace pins, the shared bind mount).
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        loop {
            let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
                return;
            };
            let mut points: Vec<PathBuf> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .map(PathBuf::from)
                .filter(|p| p.starts_with(&self.0))
                .collect();
            if points.is_empty() {
                return;
            }
            points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            let mut progress = false;
            for p in points {
                progress |= nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH).is_ok();
            }
            if !progress {
                return;
            }
        }
    }
}

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipping: network tests need root");
        false
    }
}

/// Runs the async test body on a thread moved into a fresh network namespace (the test's
/// "host"), with a current-thread runtime.
fn in_fake_host<F, Fut>(f: F)
where
    F: FnOnce(Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let env = Env {
        root: dir.path().to_path_buf(),
        bridge: format!("klt{:05x}{n}", pid & 0xf_ffff),
        n: u8::try_from((pid % 50) * 5 + n % 5).unwrap_or(1),
    };
    let guard = MountGuard(dir.path().to_path_buf());
    let result = std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare fake host netns");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(f(env));
    })
    .join();
    drop(guard);
    drop(dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn open(path: &Path) -> File {
    File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// The calling thread's namespace of `kind`.
fn own_ns(kind: &str) -> PathBuf {
    PathBuf::from(format!("/proc/thread-self/ns/{kind}"))
}

/// Runs `f` on a thread that joined network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: File, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// A TCP listener inside `ns` on `ip`, serving one ping; yields the client's address.
fn serve_once(ns: File, ip: Ipv4Addr) -> (SocketAddr, JoinHandle<SocketAddr>) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
        let listener = TcpListener::bind((ip, 0)).expect("bind");
        tx.send(listener.local_addr().expect("addr")).expect("send");
        let (mut stream, peer) = listener.accept().expect("accept");
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"ping");
        stream.write_all(b"pong").expect("write");
        peer
    });
    (rx.recv().expect("listener address"), handle)
}

/// Connects from inside `ns` to `addr`, pings, checks the pong; returns the peer address the
/// server saw. The connect timeout only bounds a failing test; passing never depends on it.
fn ping(ns: File, server: (SocketAddr, JoinHandle<SocketAddr>)) -> SocketAddr {
    let (addr, handle) = server;
    let connected = in_netns(ns, move || -> std::io::Result<()> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(30))?;
        s.write_all(b"ping")?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf)?;
        assert_eq!(&buf, b"pong");
        Ok(())
    });
    if let Err(e) = connected {
        panic!("connecting to {addr}: {e}");
    }
    handle.join().expect("server thread")
}

fn iptables(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("iptables")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An "outside" network behind the host: a namespace with 10.198.n.2/30 on eth0, connected to
/// the host's `kltup<n>` (10.198.n.1/30), default route via the host.
async fn make_outside(env: &Env, net: &Network) -> (PathBuf, Ipv4Addr, Ipv4Addr) {
    let host_ip = Ipv4Addr::new(10, 198, env.n, 1);
    let outside_ip = Ipv4Addr::new(10, 198, env.n, 2);
    let paths = NsPaths::in_dir(&env.root.join("outside"));
    netns::create(
        paths.clone(),
        NsMode::Isolated {
            hostname: "outside".into(),
        },
        net.host_ns.clone(),
    )
    .await
    .expect("outside netns");
    let outside_ns = open(&paths.net);
    let up = format!("kltup{}", env.n);
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name("eth0")
        .setns_by_fd(outside_ns.as_raw_fd())
        .build();
    let h = &net.rtnl.handle;
    h.link()
        .add(
            LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                .name(up.clone())
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                .build(),
        )
        .execute()
        .await
        .expect("uplink veth");
    let idx = link::get_link(h, &up)
        .await
        .expect("get")
        .expect("uplink")
        .header
        .index;
    h.address()
        .add(idx, host_ip.into(), 30)
        .execute()
        .await
        .expect("uplink address");
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .expect("uplink up");
    let outside = Rtnl::connect_in(Arc::new(outside_ns))
        .await
        .expect("outside rtnl");
    link::configure_pod_side(&outside.handle, outside_ip, 30, host_ip)
        .await
        .expect("outside config");
    (paths.net, host_ip, outside_ip)
}

#[test]
fn network_pods_talk_to_each_other_gateway_and_outside() {
    if !is_root() {
        return;
    }
    in_fake_host(|env| async move {
        // What Docker does to the host; our FORWARD rules must undo its effect for pods.
        let have_iptables = iptables(&["-w", "-P", "FORWARD", "DROP"]).is_some();
        let process_ns = ns_id(Path::new("/proc/self/ns/net"));
        let host_ns_path = own_ns("net");
        let host_id = ns_id(&host_ns_path);

        let net = Network::new(env.cfg()).await.expect("network");
        let cidr = net.config().pod_cidr;
        let a = net
            .create_sandbox("uid-a", "pod-a", false)
            .await
            .expect("sandbox a");
        let b = net
            .create_sandbox("uid-b", "pod-b", false)
            .await
            .expect("sandbox b");
        let (ip_a, ip_b) = (a.ip.expect("ip a"), b.ip.expect("ip b"));
        assert_ne!(ip_a, ip_b);
        for ip in [ip_a, ip_b] {
            assert!(cidr.contains(&ip) && ip != net.gateway() && ip != cidr.broadcast());
        }
        assert_eq!(a.gateway, Ipv4Addr::new(10, 199, env.n, 1));
        assert_eq!(a.pod_ips(), vec![ip_a.to_string()]);
        assert_eq!(net.sandbox("uid-a").await.as_ref(), Some(&a));
        assert_eq!(
            net.create_sandbox("uid-a", "pod-a", false)
                .await
                .expect("idempotent"),
            a
        );
        // The pins live under a shared mount point (so unmounts propagate).
        let pods_dir = env.root.join("run").join("pods");
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(
            mountinfo
                .lines()
                .any(|l| { l.split(' ').nth(4) == pods_dir.to_str() && l.contains(" shared:") }),
            "{mountinfo}"
        );
        // Namespace work happened on helper threads only.
        assert_eq!(ns_id(&host_ns_path), host_id);
        assert_eq!(ns_id(Path::new("/proc/self/ns/net")), process_ns);
        assert_ne!(ns_id(&a.netns_path), host_id);
        assert_ne!(ns_id(&a.ipcns_path), ns_id(&own_ns("ipc")));
        assert_ne!(ns_id(&a.utsns_path), ns_id(&own_ns("uts")));
        assert_ne!(ns_id(&a.netns_path), ns_id(&b.netns_path));

        // UTS: hostname = pod name.
        let uts = open(&a.utsns_path);
        let hostname = std::thread::spawn(move || {
            setns(&uts, CloneFlags::CLONE_NEWUTS).expect("setns uts");
            nix::unistd::gethostname().expect("gethostname")
        })
        .join()
        .expect("uts thread");
        assert_eq!(hostname.to_str(), Some("pod-a"));

        // Pod to pod, both ways, seen with the real pod IPs.
        let seen = ping(open(&b.netns_path), serve_once(open(&a.netns_path), ip_a));
        assert_eq!(seen.ip(), std::net::IpAddr::V4(ip_b));
        let seen = ping(open(&a.netns_path), serve_once(open(&b.netns_path), ip_b));
        assert_eq!(seen.ip(), std::net::IpAddr::V4(ip_a));
        // Loopback inside a pod.
        ping(
            open(&a.netns_path),
            serve_once(open(&a.netns_path), Ipv4Addr::LOCALHOST),
        );
        // The gateway (the host side of the bridge).
        let seen = ping(
            open(&a.netns_path),
            serve_once(open(&host_ns_path), net.gateway()),
        );
        assert_eq!(seen.ip(), std::net::IpAddr::V4(ip_a));
        // Outside the node: forwarded and masqueraded behind the host's uplink address.
        let (outside, host_ip, outside_ip) = make_outside(&env, &net).await;
        let seen = ping(open(&a.netns_path), serve_once(open(&outside), outside_ip));
        assert_eq!(seen.ip(), std::net::IpAddr::V4(host_ip));

        if have_iptables {
            let rules = iptables(&["-w", "-S", "FORWARD"]).expect("iptables -S");
            assert!(rules.contains(&format!("-i {} ", env.bridge)), "{rules}");
            assert!(rules.contains(&format!("-o {} ", env.bridge)), "{rules}");
        }

        net.destroy().await.expect("destroy");
        assert!(link::get_link(&net.rtnl.handle, &env.bridge)
            .await
            .expect("get")
            .is_none());
        assert!(!a.netns_path.exists() && !b.netns_path.exists());
        assert!(net.ipam.allocations().expect("allocations").is_empty());
        if have_iptables {
            let rules = iptables(&["-w", "-S", "FORWARD"]).expect("iptables -S");
            assert!(!rules.contains(&env.bridge), "{rules}");
        }
    });
}

#[test]
fn network_ipam_survives_restart_and_remove_releases() {
    if !is_root() {
        return;
    }
    in_fake_host(|env| async move {
        let net = Network::new(env.cfg()).await.expect("network");
        let a = net
            .create_sandbox("uid-a", "pod-a", false)
            .await
            .expect("a");
        drop(net);

        // Agent restart: same state and run dirs.
        let net = Network::new(env.cfg()).await.expect("network again");
        assert_eq!(net.sandbox("uid-a").await.as_ref(), Some(&a));
        assert_eq!(
            net.create_sandbox("uid-a", "pod-a", false)
                .await
                .expect("a again"),
            a
        );
        let b = net
            .create_sandbox("uid-b", "pod-b", false)
            .await
            .expect("b");
        assert_ne!(a.ip, b.ip);
        // Still connected after the restart.
        let ip_a = a.ip.expect("ip");
        ping(open(&b.netns_path), serve_once(open(&a.netns_path), ip_a));

        // Remove: veth, namespaces and IP are gone; removing twice is fine.
        let veth = a.host_veth.clone().expect("veth");
        assert!(link::get_link(&net.rtnl.handle, &veth)
            .await
            .expect("get")
            .is_some());
        net.remove_sandbox("uid-a").await.expect("remove");
        net.remove_sandbox("uid-a").await.expect("remove again");
        assert!(link::get_link(&net.rtnl.handle, &veth)
            .await
            .expect("get")
            .is_none());
        assert!(!a.netns_path.exists() && !a.ipcns_path.exists() && !a.utsns_path.exists());
        assert_eq!(net.sandbox("uid-a").await, None);
        assert_eq!(net.ipam.lookup("uid-a").expect("lookup"), None);
        assert_eq!(net.ipam.lookup("uid-b").expect("lookup"), b.ip);

        // A new sandbox never gets an IP in use.
        let c = net
            .create_sandbox("uid-c", "pod-c", false)
            .await
            .expect("c");
        assert_ne!(c.ip, b.ip);
    });
}

#[test]
fn network_garbage_collect_frees_leaks_and_recovers_partial_sandboxes() {
    if !is_root() {
        return;
    }
    in_fake_host(|env| async move {
        let net = Network::new(env.cfg()).await.expect("network");
        let x = net.create_sandbox("uid-x", "x", false).await.expect("x");
        let y = net.create_sandbox("uid-y", "y", false).await.expect("y");
        // An IP leaked by a crash between allocation and namespace creation.
        let ghost_ip = net.ipam.allocate("uid-ghost").expect("ghost");
        // A veth on the bridge that nobody knows about.
        let bridge = link::ensure_bridge(
            &net.rtnl.handle,
            &env.bridge,
            net.gateway(),
            net.config().pod_cidr,
        )
        .await
        .expect("bridge");
        let host_ns = open(&own_ns("net"));
        link::create_veth(&net.rtnl.handle, "vethdeadbeef", bridge, &host_ns)
            .await
            .expect("orphan veth");

        let live: HashSet<String> = ["uid-x".to_string()].into();
        let removed = net.garbage_collect(&live).await.expect("gc");
        assert_eq!(removed, vec!["uid-ghost".to_string(), "uid-y".to_string()]);
        for gone in [y.host_veth.as_deref().expect("veth"), "vethdeadbeef"] {
            assert!(link::get_link(&net.rtnl.handle, gone)
                .await
                .expect("get")
                .is_none());
        }
        assert!(!y.netns_path.exists());
        let owners = net.ipam.allocations().expect("allocations");
        assert_eq!(owners, vec![(x.ip.expect("ip"), "uid-x".to_string())]);
        assert!(!owners.iter().any(|(ip, _)| *ip == ghost_ip));
        assert_eq!(net.sandbox("uid-x").await.as_ref(), Some(&x));
        assert!(net
            .garbage_collect(&live)
            .await
            .expect("gc again")
            .is_empty());

        // A crash in the middle of creating x's sandbox (no metadata yet): the next create
        // starts over in fresh namespaces, with the same IP, and works.
        std::fs::remove_file(net.pod_dir("uid-x").join(METADATA)).expect("remove metadata");
        assert_eq!(net.sandbox("uid-x").await, None);
        let x2 = net
            .create_sandbox("uid-x", "x", false)
            .await
            .expect("x again");
        assert_eq!(x2.ip, x.ip);
        ping(
            open(&x2.netns_path),
            serve_once(open(&own_ns("net")), net.gateway()),
        );
    });
}

#[test]
fn network_host_network_sandbox_shares_host_net_and_uts() {
    if !is_root() {
        return;
    }
    in_fake_host(|env| async move {
        let net = Network::new(env.cfg()).await.expect("network");
        let h = net
            .create_sandbox("uid-h", "ignored", true)
            .await
            .expect("host sandbox");
        assert_eq!(h.ip, None);
        assert_eq!(h.host_veth, None);
        assert!(h.pod_ips().is_empty());
        assert_eq!(ns_id(&h.netns_path), ns_id(&own_ns("net")));
        assert_eq!(ns_id(&h.utsns_path), ns_id(&own_ns("uts")));
        assert_ne!(ns_id(&h.ipcns_path), ns_id(&own_ns("ipc")));
        assert_eq!(net.sandbox("uid-h").await.as_ref(), Some(&h));
        assert!(net.ipam.allocations().expect("allocations").is_empty());
        assert!(matches!(
            net.create_sandbox("uid-h", "x", false).await,
            Err(NetworkError::InvalidArgument(_))
        ));
        net.remove_sandbox("uid-h").await.expect("remove");
        assert!(!h.netns_path.exists());
        // Removing a host-network sandbox must not hurt the host's namespaces.
        assert!(netns::is_ns_file(&own_ns("net")));
    });
}

#[test]
fn network_without_masquerade_keeps_pod_source_and_validates_input() {
    if !is_root() {
        return;
    }
    in_fake_host(|env| async move {
        let bad = NetworkConfig {
            bridge: "this-name-is-too-long".into(),
            ..env.cfg()
        };
        assert!(matches!(
            Network::new(bad).await,
            Err(NetworkError::InvalidConfig(_))
        ));
        let tiny = NetworkConfig {
            pod_cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 199, env.n, 0), 31),
            ..env.cfg()
        };
        assert!(Network::new(tiny).await.is_err());

        let net = Network::new(NetworkConfig {
            masquerade: false,
            ..env.cfg()
        })
        .await
        .expect("network");
        for (uid, host) in [("../x", "h"), ("", "h"), ("ok", ""), ("ok", "a b")] {
            assert!(matches!(
                net.create_sandbox(uid, host, false).await,
                Err(NetworkError::InvalidArgument(_))
            ));
        }
        assert_eq!(net.sandbox("../etc").await, None);
        let p = net.create_sandbox("uid-p", "p", false).await.expect("p");
        let (outside, _, outside_ip) = make_outside(&env, &net).await;
        let seen = ping(open(&p.netns_path), serve_once(open(&outside), outside_ip));
        assert_eq!(seen.ip(), std::net::IpAddr::V4(p.ip.expect("ip")));
    });
}
