//! `/version`: the `version.Info` clients use to pick behaviour (kubectl's
//! dispatcher selects its binary by `minor`).

use serde::Serialize;

/// Kubernetes API version served.
pub const MAJOR: &str = "1";
/// Kubernetes API minor version served.
pub const MINOR: &str = "36";

/// `version.Info`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    pub major: &'static str,
    pub minor: &'static str,
    pub emulation_major: &'static str,
    pub emulation_minor: &'static str,
    pub min_compatibility_major: &'static str,
    pub min_compatibility_minor: &'static str,
    pub git_version: String,
    pub git_commit: &'static str,
    pub git_tree_state: &'static str,
    pub build_date: &'static str,
    pub go_version: &'static str,
    pub compiler: &'static str,
    pub platform: String,
}

/// This build's version information.
pub fn info() -> Info {
    Info {
        major: MAJOR,
        minor: MINOR,
        emulation_major: MAJOR,
        emulation_minor: MINOR,
        min_compatibility_major: MAJOR,
        min_compatibility_minor: "35",
        git_version: format!("v{MAJOR}.{MINOR}.0-rkube"),
        git_commit: option_env!("RKUBE_GIT_COMMIT").unwrap_or("unknown"),
        git_tree_state: "clean",
        build_date: option_env!("RKUBE_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
        go_version: "none (rustc)",
        compiler: "rustc",
        platform: format!("{}/{}", std::env::consts::OS, go_arch()),
    }
}

/// The architecture in Go's spelling, as clients expect it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}
