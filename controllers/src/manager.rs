//! The registry of controllers and the context they share.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::Config;
use crate::controllers;
use crate::informer::SharedInformers;
use crate::metrics::Metrics;
use crate::selection::Selection;

/// What every controller is given: the client, the shared informers, the
/// metrics and the process configuration. Cheap to clone.
#[derive(Clone)]
pub struct ControllerContext {
    pub client: kube::Client,
    pub informers: SharedInformers,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
}

impl ControllerContext {
    pub fn new(client: kube::Client, metrics: Arc<Metrics>, config: &Config) -> Self {
        ControllerContext {
            informers: SharedInformers::new(client.clone()),
            client,
            metrics,
            config: Arc::new(config.clone()),
        }
    }
}

/// A controller's start function: runs the controller until dropped.
pub type StartFn = fn(ControllerContext) -> BoxFuture<'static, Result<(), crate::Error>>;

/// One registered controller.
pub struct ControllerDescriptor {
    /// Upstream's name (`replicaset-controller`).
    pub name: &'static str,
    /// Upstream's aliases accepted by `--controllers` (`replicaset`).
    pub aliases: &'static [&'static str],
    /// Off unless named explicitly (e.g. `bootstrap-signer-controller`).
    pub disabled_by_default: bool,
    pub start: StartFn,
}

impl ControllerDescriptor {
    fn names(&self) -> Vec<&'static str> {
        let mut v = vec![self.name];
        v.extend_from_slice(self.aliases);
        v
    }
}

/// Every controller this manager can run, in start order.
pub const CONTROLLERS: &[ControllerDescriptor] = &[
    ControllerDescriptor {
        name: "serviceaccount-controller",
        aliases: &["serviceaccount"],
        disabled_by_default: false,
        start: controllers::serviceaccount::start,
    },
    ControllerDescriptor {
        name: "root-ca-certificate-publisher-controller",
        aliases: &["root-ca-cert-publisher"],
        disabled_by_default: false,
        start: controllers::root_ca_publisher::start,
    },
    ControllerDescriptor {
        name: "namespace-controller",
        aliases: &["namespace"],
        disabled_by_default: false,
        start: controllers::namespace::start,
    },
    ControllerDescriptor {
        name: "garbage-collector-controller",
        aliases: &["garbage-collector", "garbagecollector"],
        disabled_by_default: false,
        start: controllers::garbage_collector::start,
    },
    ControllerDescriptor {
        name: "replicaset-controller",
        aliases: &["replicaset"],
        disabled_by_default: false,
        start: controllers::replicaset::start,
    },
    ControllerDescriptor {
        name: "replicationcontroller-controller",
        aliases: &["replicationcontroller"],
        disabled_by_default: false,
        start: controllers::replicaset::start_replication_controller,
    },
    ControllerDescriptor {
        name: "deployment-controller",
        aliases: &["deployment"],
        disabled_by_default: false,
        start: controllers::deployment::start,
    },
    ControllerDescriptor {
        name: "job-controller",
        aliases: &["job"],
        disabled_by_default: false,
        start: controllers::job::start,
    },
    ControllerDescriptor {
        name: "cronjob-controller",
        aliases: &["cronjob"],
        disabled_by_default: false,
        start: controllers::cronjob::start,
    },
    ControllerDescriptor {
        name: "ttl-after-finished-controller",
        aliases: &["ttl-after-finished"],
        disabled_by_default: false,
        start: controllers::ttl_after_finished::start,
    },
    ControllerDescriptor {
        name: "statefulset-controller",
        aliases: &["statefulset"],
        disabled_by_default: false,
        start: controllers::statefulset::start,
    },
    ControllerDescriptor {
        name: "daemonset-controller",
        aliases: &["daemonset"],
        disabled_by_default: false,
        start: controllers::daemonset::start,
    },
    ControllerDescriptor {
        name: "endpoints-controller",
        aliases: &["endpoint"],
        disabled_by_default: false,
        start: controllers::endpoints::start,
    },
    ControllerDescriptor {
        name: "endpointslice-controller",
        aliases: &["endpointslice"],
        disabled_by_default: false,
        start: controllers::endpointslice::start,
    },
    ControllerDescriptor {
        name: "endpointslice-mirroring-controller",
        aliases: &["endpointslicemirroring"],
        disabled_by_default: false,
        start: controllers::endpointslice_mirroring::start,
    },
    ControllerDescriptor {
        name: "pod-garbage-collector-controller",
        aliases: &["podgc"],
        disabled_by_default: false,
        start: controllers::podgc::start,
    },
    ControllerDescriptor {
        name: "node-lifecycle-controller",
        aliases: &["nodelifecycle"],
        disabled_by_default: false,
        start: controllers::node_lifecycle::start,
    },
    ControllerDescriptor {
        name: "taint-eviction-controller",
        aliases: &[],
        disabled_by_default: false,
        start: controllers::node_lifecycle::taint_eviction::start,
    },
    ControllerDescriptor {
        name: "node-ipam-controller",
        aliases: &["nodeipam"],
        disabled_by_default: false,
        start: controllers::node_ipam::start,
    },
    ControllerDescriptor {
        name: "resourcequota-controller",
        aliases: &["resourcequota"],
        disabled_by_default: false,
        start: controllers::resourcequota::start,
    },
    ControllerDescriptor {
        name: "persistentvolume-binder-controller",
        aliases: &["persistentvolume-binder"],
        disabled_by_default: false,
        start: controllers::persistentvolume::start,
    },
    ControllerDescriptor {
        name: "hostpath-provisioner-controller",
        aliases: &["hostpath-provisioner"],
        disabled_by_default: false,
        start: controllers::hostpath_provisioner::start,
    },
    ControllerDescriptor {
        name: "disruption-controller",
        aliases: &["disruption"],
        disabled_by_default: false,
        start: controllers::disruption::start,
    },
    ControllerDescriptor {
        name: "token-cleaner-controller",
        aliases: &["tokencleaner"],
        disabled_by_default: true,
        start: controllers::bootstrap::token_cleaner::start,
    },
    ControllerDescriptor {
        name: "bootstrap-signer-controller",
        aliases: &["bootstrapsigner"],
        disabled_by_default: true,
        start: controllers::bootstrap::signer::start,
    },
    ControllerDescriptor {
        name: "serviceaccount-token-controller",
        aliases: &["serviceaccount-token"],
        disabled_by_default: false,
        start: controllers::serviceaccount_token::start,
    },
    ControllerDescriptor {
        name: "certificatesigningrequest-signing-controller",
        aliases: &["csrsigning"],
        disabled_by_default: false,
        start: controllers::certificates::signer::start,
    },
    ControllerDescriptor {
        name: "certificatesigningrequest-approving-controller",
        aliases: &["csrapproving"],
        disabled_by_default: false,
        start: controllers::certificates::approver::start,
    },
    ControllerDescriptor {
        name: "certificatesigningrequest-cleaner-controller",
        aliases: &["csrcleaner"],
        disabled_by_default: false,
        start: controllers::certificates::cleaner::start,
    },
    ControllerDescriptor {
        name: "horizontal-pod-autoscaler-controller",
        aliases: &["horizontalpodautoscaling"],
        disabled_by_default: false,
        start: controllers::hpa::start,
    },
];

/// Whether `name` is a known controller name or alias.
pub fn is_known(name: &str) -> bool {
    CONTROLLERS.iter().any(|c| c.names().contains(&name))
}

/// Starts every selected controller and runs them until dropped.
pub async fn run_controllers(ctx: ControllerContext, selection: &Selection) {
    let mut set = tokio::task::JoinSet::new();
    for c in CONTROLLERS {
        if !selection.is_enabled(&c.names(), c.disabled_by_default) {
            tracing::info!(controller = c.name, "controller is disabled");
            continue;
        }
        tracing::info!(controller = c.name, "starting controller");
        let name = c.name;
        let fut = (c.start)(ctx.clone());
        set.spawn(async move {
            if let Err(e) = fut.await {
                tracing::error!(controller = name, error = %e, "controller stopped");
            }
        });
    }
    while set.join_next().await.is_some() {}
}
