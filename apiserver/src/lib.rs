//! rkube's Kubernetes API server.
//!
//! Today it serves, over HTTPS (HTTP/1.1 and HTTP/2), the non-resource
//! endpoints every client and probe relies on: `/version`, `/healthz`,
//! `/livez`, `/readyz` (with `?verbose` and per-check paths) and `/metrics`,
//! with bearer-token authentication from an upstream-format token file, on
//! either storage backend. The REST registry of built-in kinds is the next
//! layer to land on top of [`rkube_storage::Store`].
//!
//! Layout: [`options`] (flags) -> [`config::Config`] -> [`run`], which opens
//! storage ([`rkube_storage::StorageConfig`]), loads or creates the PKI
//! ([`pki`]), builds the router ([`routes`]) and serves it ([`serve`]).

pub mod admission;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod bootstrap;
pub mod bootstrap_apiservices;
pub mod bootstrap_flowcontrol;
pub mod bootstrap_priority;
pub mod cel;
pub mod config;
pub mod convert;
pub mod encryption;
mod field_path;
pub mod handlers;
pub mod health;
pub mod impersonation;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod options;
pub mod patch;
pub mod pki;
pub mod protobuf;
pub mod registry;
pub mod request_info;
pub mod resources;
pub mod routes;
pub mod schema;
pub mod selector;
pub mod serve;
pub mod status;
pub mod storage_metrics;
pub mod table;
pub mod testing;
pub mod validation;
pub mod version;

use std::sync::Arc;

pub use config::Config;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening storage: {0}")]
    Storage(#[from] rkube_storage::StorageError),
    #[error("preparing certificates: {0}")]
    Pki(#[from] pki::PkiError),
    #[error("loading the token file: {0}")]
    TokenFile(#[from] authn::TokenFileError),
    #[error("binding {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("bootstrapping: {0}")]
    Bootstrap(#[from] status::ApiError),
    #[error("admission plugins: {0}")]
    Admission(#[from] admission::ChainError),
    #[error("authentication: {0}")]
    Authn(#[from] authn::options::AuthnError),
    #[error("audit: {0}")]
    Audit(#[from] audit::AuditError),
    #[error("encryption at rest: {0}")]
    Encryption(#[from] encryption::ConfigError),
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// Runs the API server until `shutdown` resolves, then drains connections.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let started = std::time::Instant::now();
    let metrics = Arc::new(metrics::Metrics::new());
    let store: Arc<dyn rkube_storage::Store> = Arc::new(storage_metrics::InstrumentedStore::new(
        config.encryption.wrap(config.storage.open().await?)?,
        metrics.storage_duration.clone(),
    ));
    let compactor = rkube_storage::compactor::spawn(store.clone(), config.storage.compaction_interval);
    let pki = pki::Pki::load_or_create(&config.pki_dir(), &config.certificate_names())?;
    let tokens = match &config.token_auth_file {
        Some(path) => authn::TokenFile::load(path)?,
        None => authn::TokenFile::default(),
    };
    let registry = Arc::new(registry::Registry::new(
        store.clone(),
        resources::ResourceTable::builtin(),
    ));
    bootstrap::ensure_system_namespaces(&registry).await?;
    bootstrap_priority::ensure_priority_classes(&registry).await?;
    bootstrap_apiservices::ensure_local_api_services(&registry).await?;
    bootstrap_flowcontrol::ensure_flowcontrol_configuration(&registry).await?;
    authz::policy::reconcile(&registry).await?;
    let aggregation = authz::aggregation::spawn(registry.clone());
    let mut state = routes::AppState::with_metrics(store.clone(), registry, Arc::new(tokens), metrics);
    state.authorizer = Arc::new(authz::Authorizer::new(
        config.authorization_mode,
        state.registry.clone(),
    ));
    state.anonymous_auth = config.anonymous_auth;
    state.audit = config.audit.build()?.map(Arc::new);
    state.authn = Arc::new(authn::options::build(
        &config.authn,
        state.authn.token_file.clone(),
        state.registry.clone(),
        &config.pki_dir(),
        &config.external_address(),
    )?);
    state.admission = Arc::new(
        admission::Chain::from_flags(&config.enable_admission_plugins, &config.disable_admission_plugins)?
            .with_authorizer(state.authorizer.clone()),
    );
    let x509 = Arc::new(authn::X509Authenticator::new(pki.ca_der()?).map_err(pki::PkiError::Tls)?);
    let router = routes::router(state.clone());
    let listener = tokio::net::TcpListener::bind(config.bind_address)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.bind_address.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(ServerError::Serve)?;
    bootstrap::ensure_kubernetes_service(&state.registry, local.port()).await?;
    tracing::info!(
        address = %local,
        backend = store.backend_name(),
        startup_ms = started.elapsed().as_millis() as u64,
        "serving the Kubernetes API"
    );
    let health = state.health.clone();
    let shutdown = async move {
        shutdown.await;
        health.begin_shutdown();
        tracing::info!("shutting down: draining connections");
    };
    let result = serve::serve(
        listener,
        pki.server_config(x509.tls_verifier())?,
        x509,
        router,
        shutdown,
    )
    .await;
    if let Some(c) = compactor {
        c.abort();
    }
    aggregation.abort();
    result.map_err(ServerError::Serve)
}
