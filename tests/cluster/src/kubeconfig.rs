//! The generated kubeconfig: one cluster (plain HTTP on loopback), one user without
//! credentials, one context, selected.

use std::path::Path;

/// Name of the cluster, user and context in the generated kubeconfig.
pub const CONTEXT: &str = "ksync-test";

/// The kubeconfig for a server at `url`, with `namespace` as the context's namespace.
pub(crate) fn render(url: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: {CONTEXT}
    cluster:
      server: {url}
users:
  - name: {CONTEXT}
    user: {{}}
contexts:
  - name: {CONTEXT}
    context:
      cluster: {CONTEXT}
      user: {CONTEXT}
      namespace: {namespace}
current-context: {CONTEXT}
preferences: {{}}
"
    )
}

/// Writes the kubeconfig to `path`.
pub(crate) fn write(path: &Path, url: &str, namespace: &str) -> std::io::Result<()> {
    std::fs::write(path, render(url, namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_yaml_with_one_selected_context() {
        let doc: serde_json::Value =
            serde_saphyr::from_str(&render("http://127.0.0.1:1234", "default")).expect("yaml");
        assert_eq!(doc["current-context"], CONTEXT);
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:1234"
        );
        assert_eq!(doc["contexts"][0]["context"]["namespace"], "default");
    }
}
