//! The leak run of `kubelite bench --pods --leak-cycles N`: N pods created and deleted (a few
//! in flight at once), then everything a pod leaves on the node is counted again and compared
//! with the counts taken after a warm-up: pod dirs, log dirs, IPAM allocations, image leases,
//! veths on the bridge, mounts under the data and run dirs, namespace bind mounts, cgroups of
//! this run's pods (every v1 controller and v2), shim processes, the server's open fds and
//! RSS. Counts must come back to where they were. RSS grows with what the server rightly keeps
//! (SQLite page caches filling as the store grows, Events kept for their TTL), so the run uses
//! a server whose store keeps little history ([`SERVER_FLAGS`]) and judges RSS by its growth
//! over the second half of the cycles only, against a bound.

use anyhow::bail;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::bench_pods::{Bench, Event};
use crate::bench_procmem as procmem;

/// How long counts may take to come back to the baseline once the last pod is gone.
const SETTLE: Duration = Duration::from_secs(60);
/// Server flags of the leak run: compaction every 5 s down to the last 1,000 revisions (or
/// 10 s), so the store's size, and with it the SQLite page caches, stop growing early.
pub const SERVER_FLAGS: &[&str] = &[
    "--compaction-interval",
    "5",
    "--compaction-keep-seconds",
    "10",
    "--compaction-keep-revisions",
    "1000",
];
/// RSS growth over the second half of the cycles that counts as a leak: this much, plus this
/// many bytes per cycle. Even with little history the store grows with the pods' Events (kept
/// for their one-hour TTL, ~5 per pod, in the store, its page caches and the garbage
/// collector's graph), and glibc's arenas move RSS by several MiB either way: this catches
/// gross leaks only; the counts above are the exact check.
const RSS_SLACK_KIB: u64 = 16 * 1024;
const RSS_PER_CYCLE_BYTES: u64 = 4096;

/// What the node holds for pods, at one moment.
#[derive(Clone, Debug)]
struct Counts {
    rows: Vec<(&'static str, u64)>,
}

impl Counts {
    fn get(&self, name: &str) -> u64 {
        self.rows
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }
}

const RSS: &str = "server RSS (KiB)";
const THREADS: &str = "server threads (info only)";
const STORE: &str = "store files, KiB (info only)";
const FDS: &str = "server open fds";

fn entries(dir: &Path, keep: impl Fn(&str) -> bool) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| keep(&e.file_name().to_string_lossy()))
        .count() as u64
}

fn count(b: &Bench, uids: &HashSet<String>) -> Counts {
    let data = b.data_dir();
    let agent = data.join("agent");
    let run = b.run_dir();
    let mounts = procmem::mounts();
    let under = |p: &Path| p.starts_with(&data) || p.starts_with(&run);
    let mut v1 = 0;
    let mut v2 = 0;
    for (point, is_v2) in procmem::cgroup_hierarchies() {
        let n: usize = uids
            .iter()
            .map(|u| procmem::count_dirs(&point.join("kubelite").join(format!("pod{u}"))))
            .sum();
        if is_v2 {
            v2 += n;
        } else {
            v1 += n;
        }
    }
    let bridge = format!("/sys/class/net/{}/brif", b.bridge());
    let shims = procmem::shim_pids(&data.display().to_string()).len();
    Counts {
        rows: vec![
            ("pod dirs", entries(&agent.join("pods"), |_| true)),
            ("log dirs", entries(&agent.join("logs"), |_| true)),
            (
                "IPAM allocations",
                entries(&agent.join("network/ipam"), |n| {
                    n.parse::<Ipv4Addr>().is_ok()
                }),
            ),
            (
                "image leases",
                entries(&agent.join("images/leases"), |_| true),
            ),
            ("veths on the bridge", entries(Path::new(&bridge), |_| true)),
            (
                "mounts under data/run dirs",
                mounts.iter().filter(|(p, _)| under(p)).count() as u64,
            ),
            (
                "namespace bind mounts (nsfs)",
                mounts
                    .iter()
                    .filter(|(p, t)| t == "nsfs" && under(p))
                    .count() as u64,
            ),
            ("pod cgroups, v1 (all controllers)", v1 as u64),
            ("pod cgroups, v2", v2 as u64),
            ("shim processes", shims as u64),
            (FDS, procmem::open_fds(b.pid()) as u64),
            (THREADS, procmem::threads(b.pid()) as u64),
            (STORE, dir_kib(&data.join("db"))),
            (RSS, procmem::rss_kib(b.pid()).unwrap_or(0)),
        ],
    }
}

/// Rows that must come back to their baseline exactly.
fn strict(name: &str) -> bool {
    name != RSS && !name.ends_with("(info only)")
}

/// Size of the files directly in `dir`, KiB.
fn dir_kib(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum::<u64>()
        / 1024
}

/// Creates and deletes `cycles` pods, `parallel` in flight, and checks that nothing stayed.
/// Returns whether the node came back clean.
pub async fn run(b: &mut Bench, cycles: usize, parallel: usize) -> anyhow::Result<bool> {
    let parallel = parallel.max(1);
    let mut uids = HashSet::new();
    // Warm-up: the first pods create the bridge, NAT rules, the store's caches…
    churn(b, "leak-warm", parallel, parallel, &mut uids).await?;
    let before = settle(b, &uids, None).await;
    let fds_before = procmem::fd_kinds(b.pid());
    let t = Instant::now();
    let mut rss_samples = vec![(0, before.get(RSS))];
    let quarter = cycles.div_ceil(4).max(1);
    let mut done = 0;
    while done < cycles {
        let n = quarter.min(cycles - done);
        churn(b, &format!("leak-{done}"), n, parallel, &mut uids).await?;
        done += n;
        rss_samples.push((done, procmem::rss_kib(b.pid()).unwrap_or(0)));
    }
    let took = t.elapsed();
    let after = settle(b, &uids, Some(&before)).await;
    println!(
        "leak run: {cycles} pods created and deleted ({parallel} in flight) in {:.1} s ({:.1} pods/s)",
        took.as_secs_f64(),
        cycles as f64 / took.as_secs_f64().max(0.001)
    );
    println!("  {:<36} {:>10} {:>10}", "", "before", "after");
    let mut clean = true;
    for (name, was) in &before.rows {
        let now = after.get(name);
        let verdict = if *name == RSS {
            // Second half: from the sample nearest the middle to the end.
            let mid = rss_samples
                .iter()
                .min_by_key(|(c, _)| c.abs_diff(cycles / 2))
                .map(|(_, kib)| *kib)
                .unwrap_or(*was);
            let half = cycles - cycles / 2;
            let bound = RSS_SLACK_KIB + half as u64 * RSS_PER_CYCLE_BYTES / 1024;
            if now > mid + bound {
                clean = false;
                format!("GREW > {:.1} MiB in the 2nd half", bound as f64 / 1024.0)
            } else {
                format!(
                    "ok, 2nd half {:+.1} MiB",
                    (now as f64 - mid as f64) / 1024.0
                )
            }
        } else if strict(name) && now > *was {
            clean = false;
            "GREW".to_string()
        } else if now != *was {
            "changed".to_string()
        } else {
            "ok".to_string()
        };
        println!("  {name:<36} {was:>10} {now:>10}  {verdict}");
    }
    let samples: Vec<String> = rss_samples
        .iter()
        .map(|(c, kib)| format!("{c}: {:.1}", *kib as f64 / 1024.0))
        .collect();
    println!(
        "  server RSS (MiB) after N cycles: {}; after settling {:.1}",
        samples.join(", "),
        after.get(RSS) as f64 / 1024.0
    );
    if after.get(FDS) != before.get(FDS) {
        let fds_after = procmem::fd_kinds(b.pid());
        let mut kinds: Vec<&String> = fds_before.keys().chain(fds_after.keys()).collect();
        kinds.sort();
        kinds.dedup();
        for k in kinds {
            let (was, now) = (
                fds_before.get(k).copied().unwrap_or(0),
                fds_after.get(k).copied().unwrap_or(0),
            );
            if was != now {
                println!("  server fds {k}: {was} -> {now}");
            }
        }
    }
    if !clean {
        print_leftovers(b, &uids);
    }
    Ok(clean)
}

/// Polls the counts until every strict one is back to `baseline` (or, without one, until the
/// node has no pod state left), at most [`SETTLE`].
async fn settle(b: &Bench, uids: &HashSet<String>, baseline: Option<&Counts>) -> Counts {
    let deadline = Instant::now() + SETTLE;
    loop {
        let c = count(b, uids);
        let done = match baseline {
            Some(base) => base
                .rows
                .iter()
                .filter(|(n, _)| strict(n))
                .all(|(n, v)| c.get(n) <= *v),
            None => c.get("pod dirs") == 0 && c.get("shim processes") == 0,
        };
        if done || Instant::now() >= deadline {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates `n` pods named `<prefix>-<i>` with at most `parallel` alive at once; each is deleted
/// as soon as a watch sees it Running, and the next is created once one is gone.
async fn churn(
    b: &mut Bench,
    prefix: &str,
    n: usize,
    parallel: usize,
    uids: &mut HashSet<String>,
) -> anyhow::Result<()> {
    let mut created = 0;
    let mut gone = 0;
    let mut mine: HashSet<String> = HashSet::new();
    while created < n.min(parallel) {
        let name = format!("{prefix}-{created}");
        uids.insert(b.create(&name).await?);
        mine.insert(name);
        created += 1;
    }
    while gone < n {
        let Some((name, what, _)) = b.next_event(Duration::from_secs(120)).await else {
            bail!("leak run: no pod event for 120 s ({gone} of {n} gone in {prefix})");
        };
        if !mine.contains(&name) {
            continue;
        }
        match what {
            Event::Running => b.delete(&name).await?,
            Event::Gone => {
                mine.remove(&name);
                gone += 1;
                if created < n {
                    let name = format!("{prefix}-{created}");
                    uids.insert(b.create(&name).await?);
                    mine.insert(name);
                    created += 1;
                }
            }
        }
    }
    Ok(())
}

/// Names what is left, to start looking from.
fn print_leftovers(b: &Bench, uids: &HashSet<String>) {
    let agent = b.data_dir().join("agent");
    for sub in ["pods", "logs"] {
        for e in std::fs::read_dir(agent.join(sub))
            .into_iter()
            .flatten()
            .flatten()
            .take(5)
        {
            println!("  left: {}", e.path().display());
        }
    }
    let mut shown = 0;
    for (point, _) in procmem::cgroup_hierarchies() {
        for u in uids {
            let p: PathBuf = point.join("kubelite").join(format!("pod{u}"));
            if p.exists() && shown < 5 {
                println!("  left: {}", p.display());
                shown += 1;
            }
        }
    }
    let (data, run) = (b.data_dir(), b.run_dir());
    for (p, t) in procmem::mounts()
        .iter()
        .filter(|(p, _)| p.starts_with(&data) || p.starts_with(&run))
        .take(5)
    {
        println!("  left mount: {} ({t})", p.display());
    }
}
