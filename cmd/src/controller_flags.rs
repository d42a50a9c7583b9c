//! Flags of the in-process scheduler and controllers (`kubelite server`), turned into the
//! core's `ControllerConfig`.

use clap::Args;
use kubelite_core::controllers::ControllerConfig;

#[derive(Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Controllers to run, comma separated (default: all). Names: scheduler, replicaset,
    /// deployment, statefulset, daemonset, job, cronjob, nodelifecycle.
    #[arg(long, value_delimiter = ',')]
    pub controllers: Vec<String>,
}

impl ControllerArgs {
    pub fn config(&self) -> ControllerConfig {
        ControllerConfig {
            enabled: self.controllers.clone(),
        }
    }
}
