//! `bench-scheduler`: scheduler throughput in the style of upstream's
//! scheduler_perf (see [`rkube_e2e::sched_bench`]); `hack/bench-scheduler.sh`
//! runs it against rkube.

use clap::Parser;
use rkube_e2e::sched_bench::{self, Config, Result_};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = sched_bench::run(Config::parse()).await?;
    println!("{}", Result_::markdown_header());
    println!("{}", result.markdown_row());
    Ok(())
}
