//! The port-forward channel protocol byte by byte, with a bare WebSocket client: the
//! handshake, the port frames, and v5's CLOSE signal half-closing the connection to the pod.

use futures::{SinkExt, StreamExt};
use ksync_test_cluster::TestCluster;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{EVENT, cluster_with_echo_pod};

async fn next_binary(
    ws: &mut (impl futures::Stream<Item = Result<Message, Error>> + Unpin),
) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(EVENT, ws.next())
            .await
            .expect("a message in time")?
        {
            Ok(Message::Binary(bytes)) => return Some(bytes.to_vec()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// A port-forward WebSocket to `pod` in `default`, asking for `ports` (a query string) in the
/// given channel `protocol`; with the upgrade response.
async fn forward(
    cluster: &TestCluster,
    pod: &str,
    ports: &str,
    protocol: &str,
) -> (
    WebSocketStream<MaybeTlsStream<TcpStream>>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
) {
    let url = format!(
        "{}/api/v1/namespaces/default/pods/{pod}/portforward?{ports}",
        cluster.server_url().replace("http://", "ws://")
    );
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().expect("header"));
    tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade")
}

#[tokio::test]
async fn v5_close_signal_half_closes_the_pod_connection() {
    let (cluster, pod) = cluster_with_echo_pod().await;
    let (mut ws, response) = forward(&cluster, &pod, "ports=7000", "v5.channel.k8s.io").await;
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "v5.channel.k8s.io"
    );

    // The port, little-endian, first on the data channel and on the error channel.
    let [lo, hi] = 7000u16.to_le_bytes();
    let mut first = vec![
        next_binary(&mut ws).await.expect("frame"),
        next_binary(&mut ws).await.expect("frame"),
    ];
    first.sort();
    assert_eq!(first, [vec![0, lo, hi], vec![1, lo, hi]]);

    ws.send(Message::binary(b"\x00half".to_vec()))
        .await
        .expect("send");
    assert_eq!(next_binary(&mut ws).await.expect("echo"), b"\x00half");

    // CLOSE for channel 0: the pod's echo server sees the end of its input, exits and
    // closes; with its only port done, the server closes the WebSocket.
    ws.send(Message::binary(vec![255, 0]))
        .await
        .expect("close signal");
    assert_eq!(next_binary(&mut ws).await, None, "the session ends");
}

#[tokio::test]
async fn the_error_channel_explains_an_unreachable_port() {
    let (cluster, pod) = cluster_with_echo_pod().await;
    let (mut ws, _) = forward(&cluster, &pod, "ports=7000&ports=9", "v4.channel.k8s.io").await;
    let mut error = None;
    let mut frames = 0;
    while error.is_none() {
        let frame = next_binary(&mut ws).await.expect("frames until the error");
        frames += 1;
        if frame[0] == 3 && frame.len() > 3 {
            error = Some(String::from_utf8_lossy(&frame[1..]).into_owned());
        }
    }
    assert!(frames >= 5, "four port frames come first");
    let error = error.expect("error");
    assert!(
        error.starts_with(&format!("error forwarding port 9 to pod {pod}")),
        "{error}"
    );
    // The other port still works.
    ws.send(Message::binary(b"\x00still here".to_vec()))
        .await
        .expect("send");
    assert_eq!(next_binary(&mut ws).await.expect("echo"), b"\x00still here");
}
