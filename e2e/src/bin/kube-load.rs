//! `kube-load`: load on any Kubernetes API server through a kubeconfig
//! (see [`rkube_e2e::load`]). `hack/bench-api.sh` runs it against rkube.

use std::process::ExitCode;

use clap::Parser;
use rkube_e2e::load::{self, LoadConfig, Report};

// The load tool shares the machine with the server it measures: a faster
// allocator leaves more of the cores to the server (the watch scenario
// handles hundreds of thousands of events a second).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let config = LoadConfig::parse();
    if !config.merge.is_empty() {
        let reports = config
            .merge
            .iter()
            .map(|p| Report::read(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        print!("{}", load::report::markdown(&reports, false));
        return Ok(ExitCode::SUCCESS);
    }
    let report = load::run(config).await?;
    print!("{}", report.markdown());
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
