//! Flags of the in-process scheduler and controllers (`kubelite server`), turned into the
//! core's `ControllerConfig`. Durations take Go's form, as kube-controller-manager's flags do
//! (`40s`, `5m`, `1m30s`, `500ms`).

use clap::Args;
use kubelite_core::controllers::ControllerConfig;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Controllers to run, comma separated (default: all; `*` all, `-foo` all but foo). Names:
    /// scheduler, replicaset, deployment, statefulset, daemonset, job, cronjob, ttl-after-finished,
    /// nodelifecycle, persistentvolume-binder, local-path-provisioner,
    /// persistentvolumeclaim-protection, persistentvolume-protection.
    #[arg(long, value_delimiter = ',')]
    pub controllers: Vec<String>,
    /// ReplicaSets reconciled concurrently (kube-controller-manager's flag of that name).
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,
    /// Deployments reconciled concurrently (kube-controller-manager's flag of that name).
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,
    /// How often the node lifecycle controller checks node health.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub node_monitor_period: Duration,
    /// How long a node may go without renewing its Lease before it is marked Unknown.
    #[arg(long, value_parser = parse_duration, default_value = "40s")]
    pub node_monitor_grace_period: Duration,
    /// tolerationSeconds added to pods for the `node.kubernetes.io/not-ready:NoExecute` taint.
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,
    /// tolerationSeconds added to pods for the `node.kubernetes.io/unreachable:NoExecute` taint.
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
    /// Directory of the local-path provisioner's volumes (default `<data-dir>/storage`).
    #[arg(long)]
    pub default_local_storage_path: Option<std::path::PathBuf>,
    /// First delay before a Job replaces failed pods, doubled per further failure
    /// (Kubernetes: 10s, not a flag there; tests shorten it).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub job_pod_failure_backoff: Duration,
    /// Longest delay before a Job replaces failed pods (Kubernetes: 10m).
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub job_pod_failure_backoff_max: Duration,
}

impl ControllerArgs {
    pub fn config(&self) -> ControllerConfig {
        let mut config = ControllerConfig {
            enabled: self.controllers.clone(),
            concurrent_replicaset_syncs: self.concurrent_replicaset_syncs,
            concurrent_deployment_syncs: self.concurrent_deployment_syncs,
            node_monitor_period: Some(self.node_monitor_period),
            node_monitor_grace_period: Some(self.node_monitor_grace_period),
            job_pod_failure_backoff: Some(self.job_pod_failure_backoff),
            job_pod_failure_backoff_max: Some(self.job_pod_failure_backoff_max),
            ..Default::default()
        };
        config.local_storage_path = self.default_local_storage_path.clone();
        config
    }

    /// Settings that belong to API admission (DefaultTolerationSeconds), applied process-wide.
    pub fn apply_admission_defaults(&self) {
        kubelite_core::defaults::set_default_toleration_seconds(
            self.default_not_ready_toleration_seconds,
            self.default_unreachable_toleration_seconds,
        );
    }
}

/// Parses a Go duration (`1h2m3s`, `40s`, `500ms`, `1.5s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (use e.g. 40s, 5m, 500ms)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("40").is_err());
        assert!(parse_duration("5x").is_err());
    }
}
