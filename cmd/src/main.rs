//! The `kubelite` binary: parses flags into config values and wires the library crates.
//! `kubelite server` runs the control plane (and, from issue #3, the node agent).

mod bench;
mod server;

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
    Server(server::ServerArgs),
    /// Measure start-up, memory, create throughput, LIST and watch latency of a server.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBELITE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Server(args) => server::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
