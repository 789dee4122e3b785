//! Whole-system tests and load tools.
//!
//! - [`storage_bench`]: the storage benchmark (`hack/bench-storage.sh`,
//!   binary `bench-storage`).

pub mod storage_bench;
