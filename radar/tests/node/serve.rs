//! The `radar serve` binary listens on its bind address and nothing else, and stops cleanly
//! on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use radar_proto::v1::GetVersionRequest;
use radar_proto::v1::radar_client::RadarClient;

/// A `radar serve` process, stopped by pid when dropped.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn listens_only_on_its_bind_address() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_radar"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--node-name",
            "node-x",
            "--docker-socket",
            "/nonexistent/docker.sock",
            "--containerd-socket",
            crate::containerd::socket(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("radar starts");
    let stdout = child.stdout.take().expect("stdout");
    let served = Served(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("radar prints its address");
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("radar listening on ")
        .expect("listening line")
        .parse()
        .expect("address");
    assert_eq!(addr.ip().to_string(), "127.0.0.1");

    let mut client = RadarClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let version = client
        .get_version(GetVersionRequest {})
        .await
        .expect("answers")
        .into_inner();
    assert_eq!(version.node_name, "node-x");
    assert_eq!(version.radar_version, env!("CARGO_PKG_VERSION"));
    // Without a Docker socket, containerd's own API names the runtime and its version.
    assert_eq!(version.runtime_name, "containerd");
    let ctr_version = crate::support::run("ctr", &["-a", crate::containerd::socket(), "version"]);
    let server_version = ctr_version
        .split("Server:")
        .nth(1)
        .and_then(|server| {
            server
                .lines()
                .find_map(|l| l.trim().strip_prefix("Version:"))
        })
        .expect("ctr version shows the server's version")
        .trim();
    assert_eq!(version.runtime_version, server_version);

    // Another loopback address on the same port is not served: radar is bound to exactly
    // 127.0.0.1, not to every address.
    let other = SocketAddr::new([127, 0, 0, 2].into(), addr.port());
    assert!(
        TcpStream::connect(other).is_err(),
        "radar must not answer on {other}"
    );

    // SIGTERM ends it cleanly.
    let mut served = served;
    let pid = served.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = served.0.wait().expect("exits");
    assert!(status.success(), "{status:?}");
}
