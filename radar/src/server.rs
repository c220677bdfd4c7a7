//! The gRPC service: requests in, [`crate::runtime`] and [`crate::path`] do the work,
//! statuses out. The server takes its listener and its shutdown signal as arguments.

use std::future::Future;
use std::sync::Arc;

use radar_proto::v1::radar_server::{Radar, RadarServer};
use radar_proto::v1::{
    GetVersionRequest, GetVersionResponse, ResolvePathRequest, ResolvePathResponse, RestartMethod,
    RestartRequest, RestartResponse, RestartSyncthingRequest, RestartSyncthingResponse,
    SignalRequest, SignalResponse, Storage,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::container::ContainerId;
use crate::error::RadarError;
use crate::path;
use crate::procfs::Mount;
use crate::runtime::Runtimes;
use crate::signal::{Process, parse_signal};
use crate::syncthing::SyncthingApi;

/// Kernel filesystems radar never hands out paths into.
const KERNEL_FILESYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "configfs",
    "fusectl",
];

/// radar's service.
#[derive(Debug, Clone)]
pub struct RadarService {
    runtimes: Arc<Runtimes>,
    syncthing: SyncthingApi,
}

impl RadarService {
    /// A service over the node's runtimes and the pod's Syncthing.
    pub fn new(runtimes: Runtimes, syncthing: SyncthingApi) -> Self {
        RadarService {
            runtimes: Arc::new(runtimes),
            syncthing,
        }
    }

    async fn resolve(&self, req: ResolvePathRequest) -> Result<ResolvePathResponse, RadarError> {
        let id = ContainerId::parse(&req.container_id)?;
        path::check_request_path(&req.path)?;
        let main = self.runtimes.main_process(&id).await?;
        let proc = self.runtimes.proc();
        let mounts = proc.mounts(main.pid).map_err(|e| {
            RadarError::FailedPrecondition(format!(
                "cannot read the mounts of container {id} ({e}); it may have exited"
            ))
        })?;
        // Checked on the path as asked (before anything is created) and as resolved (after
        // following symlinks).
        refuse_kernel_filesystems(&mounts, &req.path)?;
        let resolved = path::resolve(&proc.root_of(main.pid), &req.path, req.create)?;
        let covering = refuse_kernel_filesystems(&mounts, &resolved.container_path)?;
        let (storage, mount_point) = match covering {
            Some(m) if m.mount_point != "/" => (Storage::Volume, m.mount_point.clone()),
            _ => (Storage::RootFilesystem, String::new()),
        };
        // The process must still be the container's: a restart between lookup and answer
        // would make the path point into a dead process.
        if !proc.exists(main.pid) {
            return Err(RadarError::FailedPrecondition(format!(
                "container {id} restarted while resolving; resolve again"
            )));
        }
        Ok(ResolvePathResponse {
            host_path: resolved.host_path.to_string_lossy().into_owned(),
            pid: main.pid,
            created: resolved.created,
            storage: storage as i32,
            mount_point,
        })
    }
}

/// The mount that holds `path`; refuses kernel filesystems.
fn refuse_kernel_filesystems<'a>(
    mounts: &'a [Mount],
    path: &str,
) -> Result<Option<&'a Mount>, RadarError> {
    let covering = mounts
        .iter()
        .filter(|m| is_under(path, &m.mount_point))
        .max_by_key(|m| m.mount_point.len());
    if let Some(m) = covering
        && KERNEL_FILESYSTEMS.contains(&m.fs_type.as_str())
    {
        return Err(RadarError::PermissionDenied(format!(
            "`{path}` is on the kernel filesystem {} ({}); radar only syncs into regular folders",
            m.mount_point, m.fs_type
        )));
    }
    Ok(covering)
}

fn is_under(path: &str, mount_point: &str) -> bool {
    mount_point == "/"
        || path == mount_point
        || path
            .strip_prefix(mount_point)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[tonic::async_trait]
impl Radar for RadarService {
    async fn get_version(
        &self,
        _: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, Status> {
        let runtime = self.runtimes.info().await;
        Ok(Response::new(GetVersionResponse {
            radar_version: env!("CARGO_PKG_VERSION").into(),
            protocol_version: radar_proto::PROTOCOL_VERSION,
            node_name: self.runtimes.node().name.clone(),
            runtime_name: runtime.name,
            runtime_version: runtime.version,
            git_commit: env!("RADAR_GIT_COMMIT").into(),
        }))
    }

    async fn resolve_path(
        &self,
        request: Request<ResolvePathRequest>,
    ) -> Result<Response<ResolvePathResponse>, Status> {
        let req = request.into_inner();
        let (id, path) = (req.container_id.clone(), req.path.clone());
        match self.resolve(req).await {
            Ok(reply) => {
                tracing::debug!(%id, %path, host_path = %reply.host_path, "resolved");
                Ok(Response::new(reply))
            }
            Err(e) => {
                tracing::info!(%id, %path, error = %e, "resolve refused");
                Err(e.into())
            }
        }
    }

    async fn restart(
        &self,
        request: Request<RestartRequest>,
    ) -> Result<Response<RestartResponse>, Status> {
        let id = ContainerId::parse(&request.into_inner().container_id)?;
        let done = self.runtimes.restart(&id).await?;
        tracing::info!(%id, in_place = done.in_place, "restarted");
        let reply = if done.in_place {
            RestartResponse {
                method: RestartMethod::Runtime as i32,
                old_pid: done.old_pid,
                new_pid: done.new_pid.unwrap_or(0),
                note: "the runtime restarted the container in place; its files are kept".into(),
            }
        } else {
            RestartResponse {
                method: RestartMethod::KillMainProcess as i32,
                old_pid: done.old_pid,
                new_pid: 0,
                note: "the main process was stopped and the kubelet starts a new container from the image; files outside volumes are gone and must be synced again".into(),
            }
        };
        Ok(Response::new(reply))
    }

    async fn signal(
        &self,
        request: Request<SignalRequest>,
    ) -> Result<Response<SignalResponse>, Status> {
        let req = request.into_inner();
        let id = ContainerId::parse(&req.container_id)?;
        let signal = parse_signal(&req.signal)?;
        let main = self.runtimes.main_process(&id).await?;
        Process::open(main.pid)?.signal(signal)?;
        tracing::info!(%id, pid = main.pid, signal = %req.signal, "signalled");
        Ok(Response::new(SignalResponse { pid: main.pid }))
    }

    async fn restart_syncthing(
        &self,
        _: Request<RestartSyncthingRequest>,
    ) -> Result<Response<RestartSyncthingResponse>, Status> {
        self.syncthing.restart().await?;
        tracing::info!("asked Syncthing to restart");
        Ok(Response::new(RestartSyncthingResponse {}))
    }
}

/// Serves `service` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    service: RadarService,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(RadarServer::new(service))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}
