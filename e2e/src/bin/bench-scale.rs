//! `bench-scale`: the cluster scale run (see [`rkube_e2e::scale_run`]);
//! `hack/bench-scale.sh` runs it against rkube with simulated nodes.

use clap::Parser;
use rkube_e2e::scale_run::{self, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let outcome = scale_run::run(Config::parse()).await?;
    println!("{}", outcome.markdown());
    if !outcome.complete() {
        anyhow::bail!(
            "only {} of {} pods were Running in time",
            outcome.running,
            outcome.deployments * outcome.replicas
        );
    }
    Ok(())
}
