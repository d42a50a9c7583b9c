//! The `kubelite` binary: parses flags into config values and wires the library crates.
//! `kubelite server` runs the control plane (and, from issue #3, the node agent).

mod bench;
mod bench_controllers;
mod bench_leak;
mod bench_podman;
mod bench_pods;
mod bench_procmem;
mod controller_flags;
mod image;
mod killall;
mod server;
mod shim;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kubelite",
    version,
    about = "A Kubernetes-compatible mini-cluster in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (control plane) on this machine.
    Server(Box<server::ServerArgs>),
    /// Measure start-up, memory, create throughput, LIST and watch latency of a server.
    Bench(bench::BenchArgs),
    /// Manage the node's image store (import archives, list, remove).
    Image(image::ImageArgs),
    /// Stop every container of this node and remove the pod network (like k3s-killall.sh).
    Killall(killall::KillallArgs),
    /// (internal) The helper process that owns one container.
    #[command(hide = true)]
    Shim(shim::ShimArgs),
    /// (internal) Runs a process inside a running container (kubectl exec).
    #[command(hide = true, name = "shim-exec")]
    ShimExec(shim::ShimExecArgs),
}

fn main() -> anyhow::Result<()> {
    // The container helpers first, with a command line of their own (see `shim`).
    shim::dispatch_helper();
    let cli = Cli::parse();
    // The container helpers run libcontainer: no tracing subscriber, no threads, before anything.
    let command = match cli.command {
        Command::Shim(args) => shim::run(args),
        Command::ShimExec(args) => shim::run_exec(args),
        other => other,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBELITE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match command {
        Command::Server(args) => server::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::Image(args) => image::run(args),
        Command::Killall(args) => killall::run(args),
        Command::Shim(_) | Command::ShimExec(_) => unreachable!("the helpers never return"),
    }
}
