//! Whole-system tests and load tools.
//!
//! - [`cluster`]: a real control plane (the apiserver binary on the
//!   embedded store or a real etcd) and real kubectl, for `e2e/tests/`.
//! - [`ctrl_bench`]: Deployments to Ready pods through the controllers
//!   (`hack/bench-controllers.sh`, binary `bench-controllers`).
//! - [`load`]: the API load tool (`hack/bench-api.sh`, binary
//!   `kube-load`), for rkube or any API server behind a kubeconfig.
//! - [`simnodes`]: simulated nodes (binary `rkube-simnodes`): Nodes,
//!   Leases and pods played through the API, for scheduler tests and scale
//!   runs without containers.
//! - [`scale_run`]: the cluster scale run, cluster-loader2 style
//!   (`hack/bench-scale.sh`, binary `bench-scale`).
//! - [`sched_bench`]: scheduler throughput in the style of scheduler_perf
//!   (`hack/bench-scheduler.sh`, binary `bench-scheduler`).
//! - [`storage_bench`]: the storage benchmark (`hack/bench-storage.sh`,
//!   binary `bench-storage`).

pub mod cluster;
pub mod components;
pub mod controllers_support;
pub mod ctrl_bench;
pub mod load;
pub mod pod_startup;
pub mod scale_run;
pub mod sched_bench;
pub mod simnodes;
pub mod storage_bench;
