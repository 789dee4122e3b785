//! The CSR signing flags, named like kube-controller-manager's: one CA for
//! every signer (`--cluster-signing-{cert,key}-file`), or one per signer
//! (`--cluster-signing-<signer>-{cert,key}-file`), never both.

use std::path::PathBuf;
use std::time::Duration;

use super::{
    KUBE_APISERVER_CLIENT_KUBELET_SIGNER, KUBE_APISERVER_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, LEGACY_UNKNOWN_SIGNER,
};

/// A CA certificate file and its key file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SigningFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// CSR signing settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Which CA signs for which signer name; empty: the signing controller
    /// does nothing (no CA was given).
    pub signers: Vec<(&'static str, SigningFiles)>,
    /// `--cluster-signing-duration`: the longest certificate issued.
    pub duration: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            signers: Vec::new(),
            duration: DEFAULT_DURATION,
        }
    }
}

/// Upstream's `--cluster-signing-duration` default (one year).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(8760 * 3600);

impl Settings {
    /// Every signer signed by the one CA in `cert_file`/`key_file`.
    pub fn with_cluster_ca(cert_file: PathBuf, key_file: PathBuf) -> Self {
        let files = SigningFiles { cert_file, key_file };
        Settings {
            signers: ALL_SIGNERS.iter().map(|s| (*s, files.clone())).collect(),
            duration: DEFAULT_DURATION,
        }
    }
}

/// The signers this controller manager signs for, in start order.
pub const ALL_SIGNERS: &[&str] = &[
    KUBELET_SERVING_SIGNER,
    KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
    KUBE_APISERVER_CLIENT_SIGNER,
    LEGACY_UNKNOWN_SIGNER,
];

/// The flags behind [`Settings`].
#[derive(Debug, Clone, Default, clap::Args)]
#[group(id = "csr-signing")]
pub struct SettingsFlags {
    /// PEM CA certificate issuing cluster-scoped certificates (every
    /// kubernetes.io signer unless per-signer files are given).
    #[arg(long)]
    pub cluster_signing_cert_file: Option<PathBuf>,
    /// PEM private key of --cluster-signing-cert-file.
    #[arg(long)]
    pub cluster_signing_key_file: Option<PathBuf>,
    /// The longest duration of a signed certificate; spec.expirationSeconds
    /// may ask for less.
    #[arg(long, default_value = "8760h0m0s", value_parser = crate::options::parse_duration)]
    pub cluster_signing_duration: Duration,
    /// CA certificate for kubernetes.io/kubelet-serving.
    #[arg(long)]
    pub cluster_signing_kubelet_serving_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/kubelet-serving.
    #[arg(long)]
    pub cluster_signing_kubelet_serving_key_file: Option<PathBuf>,
    /// CA certificate for kubernetes.io/kube-apiserver-client-kubelet.
    #[arg(long)]
    pub cluster_signing_kubelet_client_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/kube-apiserver-client-kubelet.
    #[arg(long)]
    pub cluster_signing_kubelet_client_key_file: Option<PathBuf>,
    /// CA certificate for kubernetes.io/kube-apiserver-client.
    #[arg(long)]
    pub cluster_signing_kube_apiserver_client_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/kube-apiserver-client.
    #[arg(long)]
    pub cluster_signing_kube_apiserver_client_key_file: Option<PathBuf>,
    /// CA certificate for kubernetes.io/legacy-unknown.
    #[arg(long)]
    pub cluster_signing_legacy_unknown_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/legacy-unknown.
    #[arg(long)]
    pub cluster_signing_legacy_unknown_key_file: Option<PathBuf>,
}

fn pair(cert: &Option<PathBuf>, key: &Option<PathBuf>, flag: &str) -> Result<Option<SigningFiles>, String> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert_file), Some(key_file)) => Ok(Some(SigningFiles {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        })),
        _ => Err(format!(
            "--{flag}-cert-file and --{flag}-key-file must be given together"
        )),
    }
}

impl SettingsFlags {
    /// The settings, or what is wrong with the flags.
    pub fn into_settings(self) -> Result<Settings, String> {
        let cluster = pair(
            &self.cluster_signing_cert_file,
            &self.cluster_signing_key_file,
            "cluster-signing",
        )?;
        let specific = [
            (
                KUBELET_SERVING_SIGNER,
                pair(
                    &self.cluster_signing_kubelet_serving_cert_file,
                    &self.cluster_signing_kubelet_serving_key_file,
                    "cluster-signing-kubelet-serving",
                )?,
            ),
            (
                KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
                pair(
                    &self.cluster_signing_kubelet_client_cert_file,
                    &self.cluster_signing_kubelet_client_key_file,
                    "cluster-signing-kubelet-client",
                )?,
            ),
            (
                KUBE_APISERVER_CLIENT_SIGNER,
                pair(
                    &self.cluster_signing_kube_apiserver_client_cert_file,
                    &self.cluster_signing_kube_apiserver_client_key_file,
                    "cluster-signing-kube-apiserver-client",
                )?,
            ),
            (
                LEGACY_UNKNOWN_SIGNER,
                pair(
                    &self.cluster_signing_legacy_unknown_cert_file,
                    &self.cluster_signing_legacy_unknown_key_file,
                    "cluster-signing-legacy-unknown",
                )?,
            ),
        ];
        let any_specific = specific.iter().any(|(_, f)| f.is_some());
        let signers = match cluster {
            Some(_) if any_specific => {
                return Err(
                    "cannot specify --cluster-signing-{cert,key}-file and the per-signer --cluster-signing-*-{cert,key}-file flags at the same time"
                        .into(),
                );
            }
            Some(files) => ALL_SIGNERS.iter().map(|s| (*s, files.clone())).collect(),
            // Per-signer files: only the signers given one run.
            None => specific.into_iter().filter_map(|(s, f)| f.map(|f| (s, f))).collect(),
        };
        Ok(Settings {
            signers,
            duration: self.cluster_signing_duration,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        flags: SettingsFlags,
    }

    fn settings(args: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["test"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .flags
            .into_settings()
    }

    #[test]
    fn one_ca_signs_for_every_signer() {
        let s = settings(&[
            "--cluster-signing-cert-file=ca.crt",
            "--cluster-signing-key-file=ca.key",
        ])
        .unwrap();
        assert_eq!(s.signers.len(), 4);
        assert!(
            s.signers
                .iter()
                .all(|(_, f)| f.cert_file.as_path() == std::path::Path::new("ca.crt"))
        );
        assert_eq!(s.duration, DEFAULT_DURATION);
        assert_eq!(settings(&[]).unwrap().signers, vec![]);
    }

    #[test]
    fn per_signer_files_run_only_those_signers() {
        let s = settings(&[
            "--cluster-signing-kubelet-client-cert-file=k.crt",
            "--cluster-signing-kubelet-client-key-file=k.key",
            "--cluster-signing-duration=2h",
        ])
        .unwrap();
        assert_eq!(s.signers.len(), 1);
        assert_eq!(s.signers[0].0, KUBE_APISERVER_CLIENT_KUBELET_SIGNER);
        assert_eq!(s.duration, Duration::from_secs(7200));
    }

    #[test]
    fn mixed_or_half_given_files_are_rejected() {
        assert!(settings(&["--cluster-signing-cert-file=ca.crt"]).is_err());
        assert!(
            settings(&[
                "--cluster-signing-cert-file=ca.crt",
                "--cluster-signing-key-file=ca.key",
                "--cluster-signing-legacy-unknown-cert-file=l.crt",
                "--cluster-signing-legacy-unknown-key-file=l.key",
            ])
            .is_err()
        );
    }
}
