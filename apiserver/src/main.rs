//! `rkube-apiserver`: parses flags and runs [`rkube_apiserver::run`].

use clap::Parser;
use rkube_apiserver::options::Options;

// A request builds and drops thousands of small JSON nodes on one worker
// thread and often frees them on another: glibc's allocator spent ~40% of
// the server's CPU on pod creates; mimalloc's per-thread heaps cost less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    init_logging(&options.log_format);
    let config = options.into_config();
    let shutdown = async {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    rkube_apiserver::run(config, shutdown).await?;
    Ok(())
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
