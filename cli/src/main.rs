//! `latch`: the commands a deployment runs around the edge and the origin. Today one:
//! `latch check-edge`, the edge worker's own configuration validation run before the worker
//! is (by `scripts/run.sh` before it says ready, and by hand before `wrangler deploy`).

mod check_edge;
mod probe;
mod report;
mod wrangler;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "latch", version, about = "Latch's deployment checks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    CheckEdge(check_edge::CheckEdge),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckEdge(check) => check.run(),
    }
}
