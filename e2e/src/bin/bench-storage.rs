//! `bench-storage`: the embedded backend and a real etcd side by side
//! (see [`rkube_e2e::storage_bench`]). Run it through `hack/bench-storage.sh`.

use std::process::ExitCode;

use clap::Parser;
use rkube_e2e::storage_bench::{self, BenchConfig};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let report = storage_bench::run(BenchConfig::parse()).await?;
    print!("{}", report.markdown());
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
