//! The admin endpoint of a running server: a Unix socket (mode 0600) in
//! the data directory, because the server holds the store exclusively and
//! the CLI must reach the registry through it.
//!
//! Only peers running as the server's user (or root) are served; the
//! kernel reports the peer's uid (`SO_PEERCRED`), so this does not depend
//! on file permissions alone. Each request runs on the blocking pool.
//!
//! Other subsystems (the rules engine) serve their requests on the same
//! socket as [`AdminService`]s, reached with [`AdminRequest::Service`].

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::admin_client::AdminError;
use crate::events::Actor;
use crate::protocol::{AdminRequest, AdminResponse, Problem};
use crate::service::Registry;

/// The socket's file name in the data directory.
pub const ADMIN_SOCKET_FILE: &str = "admin.sock";
/// Longest request line accepted: room for a CSR and a policy document.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Which peers the endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAccess {
    pub owner_uid: u32,
    pub allow_root: bool,
}

impl PeerAccess {
    /// The effective user of this process, and root.
    pub fn current_user() -> PeerAccess {
        PeerAccess {
            owner_uid: current_uid(),
            allow_root: true,
        }
    }

    pub fn allows(&self, uid: u32) -> bool {
        uid == self.owner_uid || (self.allow_root && uid == 0)
    }
}

/// The effective uid of this process.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Another subsystem's requests on the admin socket, in its own JSON.
pub trait AdminService: Send + Sync + 'static {
    /// Answers one request on behalf of `actor`; runs on the blocking
    /// pool. `Err` reaches the client as [`AdminResponse::Error`].
    fn execute(
        &self,
        actor: &Actor,
        request: serde_json::Value,
    ) -> Result<serde_json::Value, Problem>;
}

type Services = Arc<HashMap<String, Arc<dyn AdminService>>>;

/// A bound admin socket, ready to [`serve`](Self::serve).
pub struct AdminServer {
    listener: UnixListener,
    path: PathBuf,
    access: PeerAccess,
    services: HashMap<String, Arc<dyn AdminService>>,
}

impl std::fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminServer")
            .field("path", &self.path)
            .field("access", &self.access)
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AdminServer {
    /// Binds `path` with mode 0600. A socket file left by a server that is
    /// gone is replaced; one that still answers is refused, as is any
    /// other kind of file. Needs a Tokio runtime.
    pub fn bind(path: &Path) -> Result<AdminServer, AdminError> {
        let io = |source| AdminError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(AdminError::InUse {
                        path: path.to_path_buf(),
                    });
                }
                std::fs::remove_file(path).map_err(io)?;
            }
            Ok(_) => {
                return Err(AdminError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "exists and is not a socket",
                    ),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        // The data directory is 0700 already; the peer check below is what
        // actually decides, this only keeps the file itself private.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        Ok(AdminServer {
            listener,
            path: path.to_path_buf(),
            access: PeerAccess::current_user(),
            services: HashMap::new(),
        })
    }

    /// Serves other peers than the current user's (tests use it to be
    /// refused).
    pub fn with_access(mut self, access: PeerAccess) -> AdminServer {
        self.access = access;
        self
    }

    /// Serves `service`'s requests ([`AdminRequest::Service`] naming
    /// `name`) on this socket too.
    pub fn with_service(mut self, name: &str, service: Arc<dyn AdminService>) -> AdminServer {
        self.services.insert(name.to_owned(), service);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answers requests until `shutdown`, then removes the socket file.
    pub async fn serve(mut self, registry: Arc<Registry>, shutdown: CancellationToken) {
        tracing::info!(path = %self.path.display(), "admin endpoint listening");
        let services: Services = Arc::new(std::mem::take(&mut self.services));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let registry = Arc::clone(&registry);
                        let services = Arc::clone(&services);
                        let shutdown = shutdown.clone();
                        let access = self.access;
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = shutdown.cancelled() => {}
                                r = connection(stream, registry, services, access) => if let Err(e) = r {
                                    tracing::debug!(error = %e, "admin connection ended");
                                },
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "admin endpoint: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
            }
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(error = %e, "admin socket already gone");
        }
    }
}

async fn send(
    stream: &mut (impl AsyncWriteExt + Unpin),
    response: &AdminResponse,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    stream.flush().await
}

async fn connection(
    stream: UnixStream,
    registry: Arc<Registry>,
    services: Services,
    access: PeerAccess,
) -> std::io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    if !access.allows(uid) {
        tracing::warn!(
            uid,
            "admin endpoint: refused a peer running as another user"
        );
        let problem = Problem::new(
            "forbidden",
            format!("uid {uid} may not administer this civitas"),
        );
        return send(&mut write, &AdminResponse::Error(problem)).await;
    }
    let actor = Actor::operator(uid, "admin-socket");
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = (MAX_REQUEST_BYTES + 1) as u64;
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') && n > MAX_REQUEST_BYTES {
            let problem = Problem::new(
                "bad_request",
                format!("request longer than {MAX_REQUEST_BYTES} bytes"),
            );
            return send(&mut write, &AdminResponse::Error(problem)).await;
        }
        let response = match serde_json::from_slice::<AdminRequest>(&line) {
            Err(e) => AdminResponse::Error(Problem::new("bad_request", e.to_string())),
            Ok(AdminRequest::Service { service, request })
                if let Some(handler) = services.get(&service).cloned() =>
            {
                let actor = actor.clone();
                tokio::task::spawn_blocking(move || match handler.execute(&actor, request) {
                    Ok(answer) => AdminResponse::Service(answer),
                    Err(problem) => AdminResponse::Error(problem),
                })
                .await
                .unwrap_or_else(|e| {
                    AdminResponse::Error(Problem::new("internal", format!("request failed: {e}")))
                })
            }
            Ok(request) => {
                let registry = Arc::clone(&registry);
                let actor = actor.clone();
                tokio::task::spawn_blocking(move || registry.execute(&actor, request))
                    .await
                    .unwrap_or_else(|e| {
                        AdminResponse::Error(Problem::new(
                            "internal",
                            format!("request failed: {e}"),
                        ))
                    })
            }
        };
        send(&mut write, &response).await?;
    }
}
