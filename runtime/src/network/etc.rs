//! The per-pod `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` files (bind-mounted into
//! every container of the pod), generated as the kubelet and the CRI runtime do.
//!
//! DNS follows kubelet's `pkg/kubelet/network/dns`: `dnsPolicy` picks the base (cluster DNS,
//! the host's resolver configuration, or nothing for `None`), then `spec.dnsConfig` is merged in
//! (nameservers and searches appended without duplicates, options merged by name with the
//! pod's values winning), then the result is cut to the resolver's limits (3 nameservers, 32
//! search domains, 2048 characters of search list).
//!
//! kubelite has no cluster DNS service yet, so `DnsConfig::cluster_dns` is normally empty and
//! `ClusterFirst` falls back to `Default`, exactly as a kubelet without `--cluster-dns` does.
//! When a cluster DNS exists, `ClusterFirst` pods get it as their only nameserver, the search
//! list `<ns>.svc.<domain> svc.<domain> <domain>` followed by the host's, and `ndots:5`.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::NetworkError;

const HOSTS_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const HOSTS_HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";
const HOST_HOSTS: &str = "/etc/hosts";
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;
const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// `pod.spec.dnsPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DnsPolicy {
    #[default]
    ClusterFirst,
    ClusterFirstWithHostNet,
    Default,
    None,
}

impl DnsPolicy {
    /// Parses `spec.dnsPolicy` (absent means `ClusterFirst`).
    pub fn parse(value: Option<&str>) -> Result<DnsPolicy, NetworkError> {
        match value {
            None | Some("") | Some("ClusterFirst") => Ok(DnsPolicy::ClusterFirst),
            Some("ClusterFirstWithHostNet") => Ok(DnsPolicy::ClusterFirstWithHostNet),
            Some("Default") => Ok(DnsPolicy::Default),
            Some("None") => Ok(DnsPolicy::None),
            Some(other) => Err(NetworkError::InvalidArgument(format!(
                "unknown dnsPolicy {other:?}"
            ))),
        }
    }
}

/// Everything that decides a pod's `/etc/resolv.conf` (and the FQDN line of `/etc/hosts`).
#[derive(Debug, Clone, Default)]
pub struct DnsConfig {
    /// `spec.dnsPolicy`.
    pub policy: DnsPolicy,
    /// `spec.hostNetwork`.
    pub host_network: bool,
    /// Cluster DNS servers (kubelet `--cluster-dns`); empty while kubelite has no cluster DNS.
    pub cluster_dns: Vec<IpAddr>,
    /// Cluster domain; empty means `cluster.local`.
    pub cluster_domain: String,
    /// `spec.subdomain`: adds `<hostname>.<subdomain>.<ns>.svc.<domain>` to `/etc/hosts`.
    pub subdomain: Option<String>,
    /// `spec.dnsConfig.nameservers`.
    pub nameservers: Vec<String>,
    /// `spec.dnsConfig.searches`.
    pub searches: Vec<String>,
    /// `spec.dnsConfig.options` as (name, value).
    pub options: Vec<(String, Option<String>)>,
    /// The node's resolver configuration; `None` means `/etc/resolv.conf`, or
    /// `/run/systemd/resolve/resolv.conf` when the former points at a local stub resolver.
    pub host_resolv_conf: Option<PathBuf>,
    /// The node's hosts file used for host-network pods; `None` means `/etc/hosts`.
    pub host_hosts_file: Option<PathBuf>,
}

/// Paths of the generated files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    pub hostname: PathBuf,
}

/// The hostname Kubernetes gives a pod: `spec.hostname` or the pod name, cut to 63 characters
/// without trailing `-` or `.`.
pub fn pod_hostname(pod_name: &str, spec_hostname: Option<&str>) -> Result<String, NetworkError> {
    let name = spec_hostname.filter(|h| !h.is_empty()).unwrap_or(pod_name);
    let cut: String = name.chars().take(63).collect();
    let cut = cut.trim_end_matches(['-', '.']).to_string();
    if cut.is_empty() {
        return Err(NetworkError::InvalidArgument(format!(
            "pod {pod_name:?} has no usable hostname"
        )));
    }
    Ok(cut)
}

fn check_token(what: &str, value: &str) -> Result<(), NetworkError> {
    if value.is_empty()
        || value.len() > 253
        || value.chars().any(|c| c.is_whitespace() || c == '\0')
    {
        return Err(NetworkError::InvalidArgument(format!(
            "invalid {what} {value:?}"
        )));
    }
    Ok(())
}

/// Writes `hosts`, `resolv.conf` and `hostname` into `dir` (created if needed), atomically.
pub fn write_etc_files(
    dir: &Path,
    pod_name: &str,
    namespace: &str,
    pod_ip: Option<Ipv4Addr>,
    hostname: &str,
    dns: &DnsConfig,
    host_aliases: &[(String, Vec<String>)],
) -> Result<EtcFiles, NetworkError> {
    check_token("pod name", pod_name)?;
    check_token("namespace", namespace)?;
    check_token("hostname", hostname)?;
    if hostname.len() > 64 {
        return Err(NetworkError::InvalidArgument(format!(
            "hostname {hostname:?} is longer than 64 bytes"
        )));
    }
    let hosts = hosts_content(namespace, pod_ip, hostname, dns, host_aliases)?;
    let resolv = resolv_conf_content(namespace, dns)?;
    fs::create_dir_all(dir)
        .map_err(|e| NetworkError::io(format!("creating {}", dir.display()), e))?;
    let files = EtcFiles {
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
        hostname: dir.join("hostname"),
    };
    write_atomic(&files.hosts, &hosts)?;
    write_atomic(&files.resolv_conf, &resolv)?;
    write_atomic(&files.hostname, &format!("{hostname}\n"))?;
    Ok(files)
}

fn write_atomic(path: &Path, content: &str) -> Result<(), NetworkError> {
    let tmp = path.with_extension("kubelite-tmp");
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        NetworkError::io(format!("writing {}", path.display()), e)
    })
}

/// `/etc/hosts` as the kubelet writes it.
pub fn hosts_content(
    namespace: &str,
    pod_ip: Option<Ipv4Addr>,
    hostname: &str,
    dns: &DnsConfig,
    host_aliases: &[(String, Vec<String>)],
) -> Result<String, NetworkError> {
    let mut out = String::new();
    if dns.host_network {
        let path = dns
            .host_hosts_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(HOST_HOSTS));
        let node = match fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(NetworkError::io(format!("reading {}", path.display()), e)),
        };
        out.push_str(HOSTS_HEADER_HOST_NETWORK);
        out.push_str(&node);
        if !node.is_empty() && !node.ends_with('\n') {
            out.push('\n');
        }
    } else {
        out.push_str(HOSTS_HEADER);
        out.push_str("127.0.0.1\tlocalhost\n");
        out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
        out.push_str("fe00::0\tip6-localnet\n");
        out.push_str("fe00::0\tip6-mcastprefix\n");
        out.push_str("fe00::1\tip6-allnodes\n");
        out.push_str("fe00::2\tip6-allrouters\n");
        if let Some(ip) = pod_ip {
            match dns.subdomain.as_deref().filter(|s| !s.is_empty()) {
                Some(sub) => {
                    check_token("subdomain", sub)?;
                    out.push_str(&format!(
                        "{ip}\t{hostname}.{sub}.{namespace}.svc.{}\t{hostname}\n",
                        cluster_domain(dns)
                    ));
                }
                None => out.push_str(&format!("{ip}\t{hostname}\n")),
            }
        }
    }
    if !host_aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for (ip, names) in host_aliases {
            ip.parse::<IpAddr>().map_err(|_| {
                NetworkError::InvalidArgument(format!("hostAliases: invalid IP {ip:?}"))
            })?;
            for n in names {
                check_token("hostAliases hostname", n)?;
            }
            out.push_str(&format!("{ip}\t{}\n", names.join("\t")));
        }
    }
    Ok(out)
}

fn cluster_domain(dns: &DnsConfig) -> &str {
    if dns.cluster_domain.is_empty() {
        DEFAULT_CLUSTER_DOMAIN
    } else {
        dns.cluster_domain.trim_end_matches('.')
    }
}

/// A parsed resolv.conf.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Resolv {
    nameservers: Vec<String>,
    searches: Vec<String>,
    options: Vec<String>,
}

fn parse_resolv(text: &str) -> Resolv {
    let mut r = Resolv::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => r.nameservers.extend(fields.next().map(str::to_string)),
            // The last of "search"/"domain" wins, as in glibc.
            Some("search") | Some("domain") => {
                r.searches = fields
                    .map(|s| s.trim_end_matches('.').to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            Some("options") => r.options.extend(fields.map(str::to_string)),
            _ => {}
        }
    }
    r
}

fn is_loopback(ns: &str) -> bool {
    ns.parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

fn read_resolv(path: &Path) -> Result<Option<Resolv>, NetworkError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(parse_resolv(&s))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(NetworkError::io(format!("reading {}", path.display()), e)),
    }
}

/// The node's resolver configuration as pods should see it.
fn host_resolv(dns: &DnsConfig) -> Result<Resolv, NetworkError> {
    let mut r = match &dns.host_resolv_conf {
        Some(path) => read_resolv(path)?.unwrap_or_default(),
        None => {
            let etc = read_resolv(Path::new(HOST_RESOLV_CONF))?.unwrap_or_default();
            // systemd-resolved's stub (127.0.0.53) is useless in a pod; its upstream list is.
            if etc.nameservers.iter().any(|n| is_loopback(n)) {
                read_resolv(Path::new(SYSTEMD_RESOLV_CONF))?.unwrap_or(etc)
            } else {
                etc
            }
        }
    };
    if !dns.host_network {
        // A loopback resolver of the node is unreachable from the pod's own netns.
        r.nameservers.retain(|n| !is_loopback(n));
    }
    Ok(r)
}

fn push_unique(into: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    let mut seen: HashSet<String> = into.iter().cloned().collect();
    for item in items {
        if seen.insert(item.clone()) {
            into.push(item);
        }
    }
}

/// Merges options by name (`ndots:5` and `ndots:2` → the later), keeping first-seen order.
fn merge_options(base: Vec<String>, extra: &[(String, Option<String>)]) -> Vec<String> {
    let mut merged: Vec<(String, Option<String>)> = Vec::new();
    let mut set =
        |name: String, value: Option<String>| match merged.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => merged.push((name, value)),
        };
    for op in base {
        match op.split_once(':') {
            Some((n, v)) => set(n.to_string(), Some(v.to_string())),
            None => set(op, None),
        }
    }
    for (n, v) in extra {
        set(n.clone(), v.clone().filter(|v| !v.is_empty()));
    }
    merged
        .into_iter()
        .map(|(n, v)| match v {
            Some(v) => format!("{n}:{v}"),
            None => n,
        })
        .collect()
}

/// `/etc/resolv.conf` for a pod in `namespace`.
pub fn resolv_conf_content(namespace: &str, dns: &DnsConfig) -> Result<String, NetworkError> {
    for n in &dns.nameservers {
        n.parse::<IpAddr>().map_err(|_| {
            NetworkError::InvalidArgument(format!("dnsConfig: invalid nameserver {n:?}"))
        })?;
    }
    for s in &dns.searches {
        check_token("dnsConfig search domain", s)?;
    }
    for (n, v) in &dns.options {
        check_token("dnsConfig option name", n)?;
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            check_token("dnsConfig option value", v)?;
        }
    }
    let cluster = match dns.policy {
        DnsPolicy::None => None,
        DnsPolicy::ClusterFirstWithHostNet => Some(true),
        DnsPolicy::ClusterFirst => Some(!dns.host_network),
        DnsPolicy::Default => Some(false),
    };
    let mut r = match cluster {
        None => Resolv::default(),
        Some(true) if !dns.cluster_dns.is_empty() => {
            let host = host_resolv(dns)?;
            let domain = cluster_domain(dns);
            let mut searches = vec![
                format!("{namespace}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.to_string(),
            ];
            push_unique(&mut searches, host.searches);
            Resolv {
                nameservers: dns.cluster_dns.iter().map(|ip| ip.to_string()).collect(),
                searches,
                options: vec!["ndots:5".to_string()],
            }
        }
        // No cluster DNS (kubelite today): ClusterFirst falls back to Default.
        Some(_) => host_resolv(dns)?,
    };
    push_unique(&mut r.nameservers, dns.nameservers.iter().cloned());
    push_unique(
        &mut r.searches,
        dns.searches
            .iter()
            .map(|s| s.trim_end_matches('.').to_string()),
    );
    r.options = merge_options(std::mem::take(&mut r.options), &dns.options);

    r.nameservers.truncate(MAX_NAMESERVERS);
    r.searches.truncate(MAX_SEARCHES);
    let mut chars = 0;
    r.searches.retain(|s| {
        chars += s.len() + 1;
        chars <= MAX_SEARCH_CHARS + 1
    });

    let mut out = String::new();
    if !r.searches.is_empty() {
        out.push_str(&format!("search {}\n", r.searches.join(" ")));
    }
    for n in &r.nameservers {
        out.push_str(&format!("nameserver {n}\n"));
    }
    if !r.options.is_empty() {
        out.push_str(&format!("options {}\n", r.options.join(" ")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_files(resolv: &str) -> (tempfile::TempDir, DnsConfig) {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("resolv.conf"), resolv).expect("resolv");
        fs::write(
            dir.path().join("hosts"),
            "127.0.0.1 localhost\n10.0.0.5 node1",
        )
        .expect("hosts");
        let dns = DnsConfig {
            host_resolv_conf: Some(dir.path().join("resolv.conf")),
            host_hosts_file: Some(dir.path().join("hosts")),
            ..DnsConfig::default()
        };
        (dir, dns)
    }

    #[test]
    fn network_etc_files_for_a_pod() {
        let (host, dns) = host_files(
            "# generated\nnameserver 127.0.0.53\nnameserver 1.1.1.1\nsearch example.com. corp\noptions edns0 ndots:2\n",
        );
        let out = tempfile::tempdir().expect("out");
        let aliases = vec![(
            "10.1.2.3".to_string(),
            vec!["foo.local".to_string(), "bar.local".to_string()],
        )];
        let files = write_etc_files(
            out.path(),
            "web-0",
            "default",
            Some(Ipv4Addr::new(10, 42, 0, 7)),
            "web-0",
            &dns,
            &aliases,
        )
        .expect("write");
        let hosts = fs::read_to_string(&files.hosts).expect("hosts");
        assert_eq!(
            hosts,
            "# Kubernetes-managed hosts file.\n\
             127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\n\
             fe00::1\tip6-allnodes\n\
             fe00::2\tip6-allrouters\n\
             10.42.0.7\tweb-0\n\
             \n# Entries added by HostAliases.\n\
             10.1.2.3\tfoo.local\tbar.local\n"
        );
        // ClusterFirst without cluster DNS = Default; the loopback stub is dropped.
        assert_eq!(
            fs::read_to_string(&files.resolv_conf).expect("resolv"),
            "search example.com corp\nnameserver 1.1.1.1\noptions edns0 ndots:2\n"
        );
        assert_eq!(
            fs::read_to_string(&files.hostname).expect("hostname"),
            "web-0\n"
        );
        drop(host);
    }

    #[test]
    fn network_etc_dns_policies_and_merge() {
        let (_host, base) = host_files("nameserver 8.8.8.8\nsearch corp\noptions ndots:2 rotate\n");
        let dns = DnsConfig {
            policy: DnsPolicy::ClusterFirst,
            cluster_dns: vec!["10.43.0.10".parse().expect("ip")],
            nameservers: vec!["9.9.9.9".into(), "10.43.0.10".into()],
            searches: vec!["extra.org".into()],
            options: vec![("ndots".into(), Some("3".into())), ("edns0".into(), None)],
            ..base.clone()
        };
        assert_eq!(
            resolv_conf_content("team-a", &dns).expect("cluster"),
            "search team-a.svc.cluster.local svc.cluster.local cluster.local corp extra.org\n\
             nameserver 10.43.0.10\nnameserver 9.9.9.9\n\
             options ndots:3 edns0\n"
        );
        // hostNetwork + ClusterFirst → host resolver (loopback kept: same netns as the node).
        let host_net = DnsConfig {
            host_network: true,
            ..dns.clone()
        };
        assert!(resolv_conf_content("team-a", &host_net)
            .expect("hostnet")
            .starts_with("search corp extra.org\nnameserver 8.8.8.8\nnameserver 9.9.9.9\n"));
        let none = DnsConfig {
            policy: DnsPolicy::None,
            nameservers: vec!["1.2.3.4".into()],
            options: vec![],
            searches: vec![],
            ..base.clone()
        };
        assert_eq!(
            resolv_conf_content("x", &none).expect("none"),
            "nameserver 1.2.3.4\n"
        );
        let bad = DnsConfig {
            nameservers: vec!["not-an-ip".into()],
            ..base.clone()
        };
        assert!(resolv_conf_content("x", &bad).is_err());
        let many = DnsConfig {
            policy: DnsPolicy::None,
            nameservers: (1..=5).map(|i| format!("10.0.0.{i}")).collect(),
            ..base
        };
        assert_eq!(
            resolv_conf_content("x", &many)
                .expect("many")
                .matches("nameserver")
                .count(),
            3
        );
        assert_eq!(
            DnsPolicy::parse(None).expect("default"),
            DnsPolicy::ClusterFirst
        );
        assert!(DnsPolicy::parse(Some("Bogus")).is_err());
    }

    #[test]
    fn network_etc_host_network_and_subdomain() {
        let (_host, base) = host_files("nameserver 127.0.0.53\n");
        let dns = DnsConfig {
            host_network: true,
            ..base.clone()
        };
        let hosts = hosts_content("default", None, "node1", &dns, &[]).expect("hosts");
        assert_eq!(
            hosts,
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n10.0.0.5 node1\n"
        );
        assert_eq!(
            resolv_conf_content("default", &dns).expect("resolv"),
            "nameserver 127.0.0.53\n"
        );
        let sub = DnsConfig {
            subdomain: Some("db".into()),
            ..base
        };
        let hosts = hosts_content("prod", Some(Ipv4Addr::new(10, 42, 0, 9)), "db-0", &sub, &[])
            .expect("hosts");
        assert!(
            hosts.ends_with("10.42.0.9\tdb-0.db.prod.svc.cluster.local\tdb-0\n"),
            "{hosts}"
        );
        assert_eq!(pod_hostname("p", Some("")).expect("p"), "p");
        let long = format!("{}-x", "a".repeat(62));
        assert_eq!(pod_hostname(&long, None).expect("long"), "a".repeat(62));
        assert!(pod_hostname("---", None).is_err());
        assert!(write_etc_files(
            Path::new("/nonexistent-kubelite"),
            "p",
            "ns",
            None,
            "bad host",
            &DnsConfig::default(),
            &[]
        )
        .is_err());
    }
}
