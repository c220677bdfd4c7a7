//! `pods/{name}/portforward` over WebSocket, as the kubelet serves it, to real TCP endpoints.
//!
//! The channel protocols `v4.channel.k8s.io` and `v5.channel.k8s.io` (and the unnamed
//! original, which v4 only renames): every binary message starts with a channel byte; port
//! `i` of the `ports` parameter uses channel `2i` for data and `2i+1` for errors, and the
//! server's first message on each channel is the port number, two bytes little-endian. v5
//! adds the client's CLOSE signal (channel 255, then the channel it closes), which
//! half-closes the connection to the pod. Each port gets one TCP connection, opened when the
//! WebSocket is. When a pod's end of every connection has closed, the server closes the
//! WebSocket, as the kubelet does.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::sync::CancellationToken;

use crate::status::ApiError;

/// Subprotocols served, in order of preference.
const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"];
/// The v5 CLOSE signal's channel.
const CLOSE_CHANNEL: u8 = 255;
/// How long the client has to answer the server's close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting to a pod's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where each pod's ports are: its IP (every port of it), or explicit addresses for pods whose
/// containers are processes on loopback (the agent pods).
#[derive(Debug, Default)]
pub(crate) struct PortMap(Mutex<HashMap<(String, String), PodNetwork>>);

/// A pod's network.
#[derive(Debug, Clone, Default)]
pub(crate) struct PodNetwork {
    /// The pod's IP; any port not listed below is forwarded to it.
    pub(crate) ip: Option<IpAddr>,
    /// Explicit addresses per port.
    pub(crate) ports: HashMap<u16, SocketAddr>,
}

impl PortMap {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), PodNetwork>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets (or replaces) a pod's network.
    pub(crate) fn set(&self, ns: &str, pod: &str, network: PodNetwork) {
        self.lock()
            .insert((ns.to_string(), pod.to_string()), network);
    }

    /// Forgets a pod.
    pub(crate) fn remove(&self, ns: &str, pod: &str) {
        self.lock().remove(&(ns.to_string(), pod.to_string()));
    }

    /// The pod's network, if it has one.
    pub(crate) fn get(&self, ns: &str, pod: &str) -> Option<PodNetwork> {
        self.lock().get(&(ns.to_string(), pod.to_string())).cloned()
    }
}

impl PodNetwork {
    /// Where `port` of the pod is.
    pub(crate) fn address(&self, port: u16) -> Option<SocketAddr> {
        self.ports
            .get(&port)
            .copied()
            .or_else(|| self.ip.map(|ip| SocketAddr::new(ip, port)))
    }
}

/// What the upgrade response needs from the request.
pub(crate) struct Upgrade {
    key: HeaderValue,
    protocol: Option<&'static str>,
}

/// Checks the WebSocket handshake headers and picks the subprotocol.
pub(crate) fn negotiate(headers: &HeaderMap) -> Result<Upgrade, ApiError> {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: port-forward is served over WebSocket only (`Upgrade: {upgrade}` is not supported)"
        )));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?;
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let protocol = if offered.is_empty() {
        None
    } else {
        let chosen = offered
            .iter()
            .find_map(|o| PROTOCOLS.iter().find(|p| **p == o.as_str()))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to upgrade connection: none of the subprotocols {offered:?} is supported (served: {PROTOCOLS:?})"
                ))
            })?;
        Some(*chosen)
    };
    Ok(Upgrade { key, protocol })
}

impl Upgrade {
    /// The `101 Switching Protocols` response.
    pub(crate) fn response<B: Default>(&self) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(self.key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = self.protocol {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocol),
            );
        }
        response
    }

    fn v5(&self) -> bool {
        self.protocol == Some("v5.channel.k8s.io")
    }
}

/// One forwarded port, as the session sees it.
struct Port {
    number: u16,
    /// Bytes from the client for the pod; dropping it half-closes the connection.
    to_pod: Option<mpsc::Sender<Bytes>>,
}

/// Serves one port-forward session on the upgraded connection, until the pod's ends close,
/// the client goes, or one of `cancel` fires (a dropped connection: no close handshake).
pub(crate) async fn serve(
    on_upgrade: OnUpgrade,
    upgrade: Upgrade,
    pod: String,
    ports: Vec<(u16, Option<SocketAddr>)>,
    cancel: [CancellationToken; 2],
) {
    let [stop, dropped] = cancel;
    let cancelled = async {
        tokio::select! {
            () = stop.cancelled() => {}
            () = dropped.cancelled() => {}
        }
    };
    tokio::select! {
        () = async {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
                    session(ws, &upgrade, &pod, ports).await;
                }
                Err(e) => tracing::debug!("port-forward upgrade failed: {e}"),
            }
        } => {}
        () = cancelled => tracing::debug!("port-forward to {pod} dropped"),
    }
}

async fn session<S>(
    ws: WebSocketStream<S>,
    upgrade: &Upgrade,
    pod: &str,
    targets: Vec<(u16, Option<SocketAddr>)>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    // Everything the server sends goes through one queue, so frames never interleave badly.
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    let (done_tx, mut done_rx) = mpsc::channel::<usize>(targets.len());
    let mut ports = Vec::with_capacity(targets.len());
    for (i, (number, address)) in targets.into_iter().enumerate() {
        let data = (2 * i) as u8;
        let [lo, hi] = number.to_le_bytes();
        for channel in [data, data + 1] {
            let _ = out_tx.send(Message::binary(vec![channel, lo, hi])).await;
        }
        let (to_pod, from_client) = mpsc::channel::<Bytes>(64);
        ports.push(Port {
            number,
            to_pod: Some(to_pod),
        });
        tokio::spawn(forward_port(
            i,
            number,
            address,
            pod.to_string(),
            from_client,
            out_tx.clone(),
            done_tx.clone(),
        ));
    }
    drop(done_tx);
    let mut open = ports.len();
    let (finish, mut finished) = tokio::sync::oneshot::channel::<()>();
    drop(out_tx);
    let writer = async {
        loop {
            tokio::select! {
                message = out_rx.recv() => match message {
                    Some(message) => {
                        if sink.send(message).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                _ = &mut finished => {
                    // What is queued goes first, then the close frame.
                    while let Ok(message) = out_rx.try_recv() {
                        if sink.send(message).await.is_err() {
                            break;
                        }
                    }
                    break;
                }
            }
        }
        let _ = sink.close().await;
        // Dropping the queue ends the port tasks still running.
        drop(out_rx);
    };
    let reader = async {
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(Ok(Message::Binary(bytes))) => client_frame(&mut ports, bytes, upgrade.v5()).await,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                done = done_rx.recv() => {
                    if done.is_some() {
                        open -= 1;
                    }
                    if open == 0 || done.is_none() {
                        break;
                    }
                }
            }
        }
        ports.clear();
        let _ = finish.send(());
        // Let the closing handshake finish: the client answers our close frame.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    };
    tokio::join!(reader, writer);
}

/// Handles one binary message from the client.
async fn client_frame(ports: &mut [Port], mut bytes: Bytes, v5: bool) {
    if bytes.is_empty() {
        return;
    }
    let channel = bytes.split_to(1)[0];
    if v5 && channel == CLOSE_CHANNEL {
        if let Some(&closed) = bytes.first()
            && closed % 2 == 0
            && let Some(port) = ports.get_mut(usize::from(closed / 2))
        {
            port.to_pod = None;
        }
        return;
    }
    if channel % 2 == 1 || bytes.is_empty() {
        return;
    }
    if let Some(port) = ports.get_mut(usize::from(channel / 2))
        && let Some(to_pod) = &port.to_pod
        && to_pod.send(bytes).await.is_err()
    {
        tracing::debug!("port {} of the session is closed", port.number);
        port.to_pod = None;
    }
}

/// A connection error worded as the kubelet (Go) words it.
fn dial_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::HostUnreachable => "no route to host".into(),
        std::io::ErrorKind::NetworkUnreachable => "network is unreachable".into(),
        _ => e.to_string(),
    }
}

/// Connects port `index` to the pod and copies both ways until the pod's end closes.
async fn forward_port(
    index: usize,
    number: u16,
    address: Option<SocketAddr>,
    pod: String,
    mut from_client: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Message>,
    done: mpsc::Sender<usize>,
) {
    let data = (2 * index) as u8;
    let connected = match address {
        Some(address) => {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(e)) => Err(format!("dial tcp {address}: connect: {}", dial_error(&e))),
                Err(_) => Err(format!("dial tcp {address}: i/o timeout")),
            }
        }
        None => Err("the pod has no network".to_string()),
    };
    let stream = match connected {
        Ok(stream) => stream,
        Err(reason) => {
            let message = format!("error forwarding port {number} to pod {pod}: {reason}");
            let mut frame = vec![data + 1];
            frame.extend_from_slice(message.as_bytes());
            let _ = out.send(Message::binary(frame)).await;
            let _ = done.send(index).await;
            return;
        }
    };
    let (mut read, mut write) = stream.into_split();
    let to_pod = async move {
        while let Some(bytes) = from_client.recv().await {
            if write.write_all(&bytes).await.is_err() {
                return;
            }
        }
        // The client closed its side (v5 CLOSE, or the session ended).
        let _ = write.shutdown().await;
    };
    let from_pod = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut frame = Vec::with_capacity(n + 1);
                    frame.push(data);
                    frame.extend_from_slice(&buf[..n]);
                    if out.send(Message::binary(frame)).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = done.send(index).await;
    };
    tokio::select! {
        ((), ()) = async { tokio::join!(to_pod, from_pod) } => {}
        () = out.closed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_v5_and_refuses_spdy() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v4.channel.k8s.io, v5.channel.k8s.io"),
        );
        let upgrade = negotiate(&headers).expect("negotiates");
        assert_eq!(upgrade.protocol, Some("v4.channel.k8s.io"));
        let response: Response<String> = upgrade.response();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );

        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("SPDY/3.1+portforward.k8s.io"),
        );
        assert_eq!(negotiate(&headers).err().map(|e| e.code), Some(400));
        headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert_eq!(negotiate(&headers).err().map(|e| e.code), Some(400));
    }

    #[test]
    fn explicit_ports_win_over_the_pod_ip() {
        let network = PodNetwork {
            ip: Some([172, 17, 0, 2].into()),
            ports: [(40321, SocketAddr::from(([127, 0, 0, 1], 5555)))].into(),
        };
        assert_eq!(
            network.address(40321),
            Some(SocketAddr::from(([127, 0, 0, 1], 5555)))
        );
        assert_eq!(
            network.address(80),
            Some(SocketAddr::from(([172, 17, 0, 2], 80)))
        );
        assert_eq!(PodNetwork::default().address(80), None);
    }
}
