//! The HTTP server: plain HTTP/1.1 on a loopback port, with upgrades for port-forwarding.
//!
//! It can be stopped and started again on the same port with its state intact, as an API
//! server restart looks to clients: stopping closes the listener and every open connection
//! (requests, watches and port-forwards alike) at once.

mod handlers;
mod request;
pub(crate) mod table;
mod watch;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::State;
use crate::status::ApiError;

/// Response bodies.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// The API server.
pub(crate) struct ApiServer {
    state: Arc<State>,
    addr: SocketAddr,
    running: Mutex<Option<Running>>,
}

struct Running {
    stop: CancellationToken,
    tracker: TaskTracker,
    accept: JoinHandle<()>,
}

/// What a request handler needs from its connection.
#[derive(Clone)]
pub(crate) struct Conn {
    /// The server's address.
    pub(crate) addr: SocketAddr,
    /// Fires when the server stops.
    pub(crate) stop: CancellationToken,
    /// Tasks that must end before the server counts as stopped.
    pub(crate) tracker: TaskTracker,
}

impl ApiServer {
    /// Starts a server on an ephemeral port of 127.0.0.1.
    pub(crate) async fn start(state: Arc<State>) -> std::io::Result<ApiServer> {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let server = ApiServer {
            state,
            addr,
            running: Mutex::new(None),
        };
        *server.running.lock().await = Some(server.serve(listener));
        Ok(server)
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn serve(&self, listener: TcpListener) -> Running {
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let conn = Conn {
            addr: self.addr,
            stop: stop.clone(),
            tracker: tracker.clone(),
        };
        let state = self.state.clone();
        let accept = tokio::spawn(accept_loop(listener, state, conn));
        Running {
            stop,
            tracker,
            accept,
        }
    }

    /// Stops serving: the port is closed and every connection dropped. Idempotent.
    pub(crate) async fn stop(&self) {
        let Some(running) = self.running.lock().await.take() else {
            return;
        };
        running.stop.cancel();
        let _ = running.accept.await;
        running.tracker.close();
        running.tracker.wait().await;
    }

    /// Serves again on the same port, with the same state. Idempotent.
    pub(crate) async fn restart(&self) -> std::io::Result<()> {
        let mut running = self.running.lock().await;
        if running.is_none() {
            *running = Some(self.serve(listen(self.addr)?));
        }
        Ok(())
    }

    /// True while it serves.
    pub(crate) async fn is_running(&self) -> bool {
        self.running.lock().await.is_some()
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, conn: Conn) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = conn.stop.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let state = state.clone();
        let conn = conn.clone();
        conn.tracker.clone().spawn(async move {
            let stop = conn.stop.clone();
            let service = service_fn(move |req| {
                let state = state.clone();
                let conn = conn.clone();
                async move { Ok::<_, Infallible>(handlers::handle(state, req, conn).await) }
            });
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!("connection ended: {e}");
                    }
                }
                () = stop.cancelled() => {}
            }
        });
    }
}

/// A JSON response.
pub(crate) fn json(code: u16, value: &Value) -> hyper::Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// An error response: a `Status` object with its code.
pub(crate) fn error(err: &ApiError) -> hyper::Response<Body> {
    json(err.code, &err.to_status())
}
