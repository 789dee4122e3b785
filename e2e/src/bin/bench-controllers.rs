//! `bench-controllers`: Deployments to Ready pods through a running
//! control plane (see [`rkube_e2e::ctrl_bench`]); `hack/bench-controllers.sh`
//! runs it against rkube with simulated nodes.

use clap::Parser;
use rkube_e2e::ctrl_bench::{self, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let outcome = ctrl_bench::run(Config::parse()).await?;
    println!("{}", outcome.markdown());
    Ok(())
}
