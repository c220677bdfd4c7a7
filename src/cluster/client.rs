//! A Kubernetes client from the kubeconfig, and which namespace a spec's pods are in.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::ClusterError;

/// How to reach the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// A kubeconfig file; default: `KUBECONFIG`, then `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// The context; default: the kubeconfig's current context.
    pub context: Option<String>,
}

/// A connected cluster.
#[derive(Clone)]
pub struct Cluster {
    /// The client.
    pub client: kube::Client,
    /// The context in use.
    pub context: String,
    /// The API server's URL.
    pub server: String,
    /// The context's namespace (`default` when it names none).
    pub context_namespace: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("context", &self.context)
            .field("server", &self.server)
            .finish()
    }
}

impl Cluster {
    /// Loads the kubeconfig and builds a client (no request is made yet).
    pub async fn connect(options: &ClusterOptions) -> Result<Cluster, ClusterError> {
        let kubeconfig = match &options.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|e| ClusterError::Kubeconfig {
            reason: e.to_string(),
        })?;
        let context = options
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())
            .ok_or_else(|| ClusterError::Kubeconfig {
                reason: "it has no current context and none was given".into(),
            })?;
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            let known: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(ClusterError::Kubeconfig {
                reason: format!(
                    "it has no context `{context}` (it has: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        }
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &KubeConfigOptions {
                context: Some(context.clone()),
                ..KubeConfigOptions::default()
            },
        )
        .await
        .map_err(|e| ClusterError::Kubeconfig {
            reason: e.to_string(),
        })?;
        let server = config.cluster_url.to_string();
        let context_namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config).map_err(|e| ClusterError::Kubeconfig {
            reason: e.to_string(),
        })?;
        Ok(Cluster {
            client,
            context,
            server,
            context_namespace,
        })
    }

    /// The namespace of a spec's pods: the spec's (which the configuration already
    /// defaulted to the project's, then the user's), else the context's. The original ksync
    /// ignored the context's namespace.
    pub fn namespace_for(&self, spec_namespace: Option<&str>) -> String {
        spec_namespace.map_or_else(|| self.context_namespace.clone(), str::to_string)
    }

    /// An API error with the context of this cluster.
    pub fn api_error(&self, what: impl Into<String>, e: impl std::fmt::Display) -> ClusterError {
        ClusterError::Api {
            server: self.server.clone(),
            context: self.context.clone(),
            what: what.into(),
            reason: e.to_string(),
        }
    }

    /// The API server's version, e.g. `v1.32.4`.
    pub async fn server_version(&self) -> Result<String, ClusterError> {
        let info = self
            .client
            .apiserver_version()
            .await
            .map_err(|e| self.api_error("GET /version", e))?;
        Ok(info.git_version)
    }
}
