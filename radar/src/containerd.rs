//! containerd's own API (not CRI), over its Unix socket: the daemon's version, for
//! `GetVersion` on nodes without Docker.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Endpoint, Uri};

#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
mod api {
    tonic::include_proto!("containerd.services.version.v1");
}

/// The version containerd at `socket` reports, if it answers within a few seconds.
pub async fn version(socket: &Path) -> Option<String> {
    if !socket.exists() {
        return None;
    }
    let path: PathBuf = socket.to_path_buf();
    let ask = async move {
        let channel = Endpoint::try_from("http://containerd.invalid")
            .ok()?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .ok()?;
        let reply = api::version_client::VersionClient::new(channel)
            .version(())
            .await
            .ok()?;
        Some(reply.into_inner().version)
    };
    tokio::time::timeout(Duration::from_secs(5), ask)
        .await
        .ok()
        .flatten()
}
