//! A radar client through a node's tunnel, after the version handshake.

use std::net::SocketAddr;
use std::time::Duration;

use radar_proto::v1::radar_client::RadarClient;
use radar_proto::v1::{GetVersionRequest, GetVersionResponse};
use tonic::transport::Channel;

use super::ClusterError;

/// A connected radar whose protocol matches ours.
#[derive(Debug, Clone)]
pub struct Radar {
    /// The client.
    pub client: RadarClient<Channel>,
    /// What it reported.
    pub version: GetVersionResponse,
}

impl Radar {
    /// Connects to radar at `addr` (a tunnel's local end for `node`) and checks its protocol.
    pub async fn connect(addr: SocketAddr, node: &str) -> Result<Radar, ClusterError> {
        let error = |reason: String| ClusterError::Radar {
            node: node.to_string(),
            reason,
        };
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| error(e.to_string()))?
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| error(format!("cannot connect through the tunnel: {e}")))?;
        let mut client = RadarClient::new(channel);
        let version = tokio::time::timeout(
            Duration::from_secs(30),
            client.get_version(GetVersionRequest {}),
        )
        .await
        .map_err(|_| error("it did not answer within 30 s".into()))?
        .map_err(|e| error(e.message().to_string()))?
        .into_inner();
        if version.protocol_version != radar_proto::PROTOCOL_VERSION {
            return Err(ClusterError::RadarVersion {
                node: node.to_string(),
                theirs: version.protocol_version,
                ours: radar_proto::PROTOCOL_VERSION,
            });
        }
        Ok(Radar { client, version })
    }
}
