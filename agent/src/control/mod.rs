//! The control socket: the CLI, and a device's own settings screen, talk to the running
//! daemon through it. The messages are [`protocol::Request`] and [`protocol::Answer`]
//! (documented in `docs/control.md`); the socket is served by [`crate::unix::socket`]
//! (mode 0660, group the configured admin group). Only root, the daemon's own user and
//! members of the admin group (primary or supplementary) are served.
//!
//! Owns the meaning of each request; never parses a socket's credentials or binds by
//! itself, and never prints.

pub mod protocol;

use crate::collect::identity::IdentityState;
use crate::config::Config;
use crate::consent::{self, ConsentView, Decision};
use crate::local::buffer;
use crate::unix::socket::{self, Peer, PeerPolicy, Server, SocketError};
use assent_platform::Category;
use assent_store::Store;
use protocol::{Answer, CategoryConsent, ConsentState, Erased, Request, MAX_REQUEST_BYTES};
use smol::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use smol::net::unix::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

/// What the control socket serves: the running daemon (`daemon::Daemon`), seen only
/// through this trait so that this module does not depend on the daemon's insides.
pub trait Target: Send + Sync + 'static {
    /// The configuration in force now.
    fn config(&self) -> Config;
    /// The daemon's open buffer.
    fn store(&self) -> &Store;
    /// The daemon's status object (`assent status --json`).
    fn status(&self) -> Result<serde_json::Value, serde_json::Error>;
    /// Wake the uploader now (`consent_changed`: a decision was just recorded).
    fn sync_now(&self, consent_changed: bool);
}

/// The control socket's permission bits: the admin group may connect, nobody else.
const SOCKET_MODE: u32 = 0o660;

/// Where the control socket is.
pub fn socket_path(config: &Config) -> PathBuf {
    config.control.socket.clone()
}

/// Binds the control socket (0660; group set to the admin group when configured).
pub fn bind(config: &Config) -> Result<Server, SocketError> {
    let gid = admin_gid(config);
    let policy = PeerPolicy::with_gids(&[], gid.as_slice());
    Server::bind(&socket_path(config), SOCKET_MODE, gid, policy)
}

fn admin_gid(config: &Config) -> Option<u32> {
    let name = config.control.admin_group.as_ref()?;
    match socket::group_id(name) {
        Ok(gid) => Some(gid),
        Err(e) => {
            log::warn!("control.admin_group: {e}; only root may use the control socket");
            None
        }
    }
}

/// Serves the control socket until the daemon stops, each connection a task on `ex`.
pub async fn serve<D: Target>(server: Server, daemon: Arc<D>, ex: Arc<smol::Executor<'static>>) {
    let server = Arc::new(server);
    loop {
        let stream = server.accept().await;
        let (daemon, server) = (daemon.clone(), server.clone());
        ex.spawn(async move {
            if let Err(e) = handle(stream, &server, daemon).await {
                log::debug!("control connection: {e}");
            }
        })
        .detach();
    }
}

async fn handle<D: Target>(
    stream: UnixStream,
    server: &Server,
    daemon: Arc<D>,
) -> std::io::Result<()> {
    let mut writer = stream.clone();
    let answer = match socket::peer_of(&stream) {
        Err(e) => Answer::failed(e.to_string()),
        Ok(peer) if !server.policy().allows(&peer) => {
            log::info!(
                "control socket: refused uid {} (pid {})",
                peer.uid,
                peer.pid
            );
            Answer::failed(format!("uid {} may not use the control socket", peer.uid))
        }
        Ok(peer) => {
            let mut reader =
                BufReader::new(smol::io::AsyncReadExt::take(stream, MAX_REQUEST_BYTES));
            let mut line = String::new();
            reader.read_line(&mut line).await?;
            match Request::from_json(&line) {
                Ok(request) => execute(&daemon, request, peer).await,
                Err(e) => Answer::failed(format!("bad request: {e}")),
            }
        }
    };
    let mut line = serde_json::to_string(&answer).map_err(std::io::Error::other)?;
    line.push('\n');
    writer.write_all(line.as_bytes()).await?;
    Ok(())
}

async fn execute<D: Target>(daemon: &Arc<D>, request: Request, peer: Peer) -> Answer {
    match request {
        Request::Status => match daemon.status() {
            Ok(status) => Answer {
                status: Some(status),
                ..Answer::done()
            },
            Err(e) => Answer::failed(e.to_string()),
        },
        Request::Sync => {
            daemon.sync_now(false);
            Answer::done()
        }
        Request::Erase { remote } => {
            let worker = daemon.clone();
            let result = crate::worker::run(move || {
                crate::local::owner::erase(&worker.config(), worker.store(), remote)
            })
            .await;
            match result {
                Ok(erased) => {
                    if erased.remote_requested {
                        // Erasure requests go out before any further batch.
                        daemon.sync_now(false);
                    }
                    Answer {
                        erased: Some(Erased {
                            events_deleted: erased.events_deleted,
                            remote_requested: erased.remote_requested,
                        }),
                        ..Answer::done()
                    }
                }
                Err(e) => Answer::failed(e.to_string()),
            }
        }
        Request::ResetId => match IdentityState::rotate(&daemon.config().state_dir) {
            Ok(_) => Answer::done(),
            Err(e) => Answer::failed(e.to_string()),
        },
        Request::ConsentShow => {
            let (_, view) = consent::load(&daemon.config());
            Answer {
                consent: Some(consent_state(&view, Vec::new())),
                ..Answer::done()
            }
        }
        Request::ConsentGrant { categories } => {
            decide(daemon, categories, Decision::Grant, peer).await
        }
        Request::ConsentWithdraw { categories } => {
            decide(daemon, categories, Decision::Revoke, peer).await
        }
    }
}

/// A grant or withdrawal with the same effects as `assent consent`, recorded as made by
/// the peer's user (kernel-checked, not what the client says).
async fn decide<D: Target>(
    daemon: &Arc<D>,
    categories: Vec<Category>,
    decision: Decision,
    peer: Peer,
) -> Answer {
    if categories.is_empty() {
        return Answer::failed("name at least one category");
    }
    let by = decided_by(&peer);
    let worker = daemon.clone();
    let result = crate::worker::run(move || {
        let config = worker.config();
        let _lock = consent::DecisionLock::acquire(&config.state_dir)
            .map_err(|e| buffer::BufferError::Io(config.state_dir.join("decision.lock"), e))?;
        buffer::decide_consent(&config, worker.store(), categories, decision, &by)
    })
    .await;
    match result {
        Ok((view, applied)) => {
            // The consent watcher sees the file change too; waking the uploader sends
            // a queued erasure without waiting for it.
            daemon.sync_now(true);
            Answer {
                consent: Some(consent_state(&view, applied.purged)),
                ..Answer::done()
            }
        }
        Err(e) => Answer::failed(e.to_string()),
    }
}

/// Who a decision over the control socket is recorded as made by.
fn decided_by(peer: &Peer) -> String {
    let uid = nix::unistd::Uid::from_raw(peer.uid);
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => format!("{} (uid {}) via the control socket", user.name, peer.uid),
        _ => format!("uid {} via the control socket", peer.uid),
    }
}

fn consent_state(view: &ConsentView, purged: Vec<(Category, u64)>) -> ConsentState {
    ConsentState {
        policy_version: view.policy_version,
        problem: view.problem.clone(),
        categories: view
            .categories
            .iter()
            .map(|s| CategoryConsent {
                category: s.category,
                required: s.required,
                purpose: s.purpose.clone(),
                active: s.state == consent::CategoryState::Active,
                state: s.state.name().to_string(),
                reason: s.state.reason(),
                by: s.by.clone(),
                at: s.at.clone(),
            })
            .collect(),
        purged,
    }
}

/// Why a request to the daemon did not get a positive answer.
#[derive(Debug)]
pub enum ControlError {
    /// No daemon listens at the socket (or it may not be reached).
    Unreachable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writing the request or reading the answer failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The answer is not a control-protocol answer.
    BadAnswer {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// The daemon refused or failed, with its reason.
    Refused(String),
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::Unreachable { path, source }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                write!(
                    f,
                    "{}: {source}: the control socket is for root and members of the admin \
                     group (control.admin_group)",
                    path.display()
                )
            }
            ControlError::Unreachable { path, source } => write!(
                f,
                "cannot reach the daemon at {}: {source} (is `assent run` running with this --config?)",
                path.display()
            ),
            ControlError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ControlError::BadAnswer { path, source } => {
                write!(f, "{}: bad answer: {source}", path.display())
            }
            ControlError::Refused(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for ControlError {}

/// The CLI side: sends one request to the running daemon and returns its answer (an
/// [`Answer`] as JSON) when `ok` is true.
pub fn request(config: &Config, request: &Request) -> Result<serde_json::Value, ControlError> {
    use std::io::{BufRead, Write};
    let path = socket_path(config);
    let io = |source| ControlError::Io {
        path: path.clone(),
        source,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|source| {
        ControlError::Unreachable {
            path: path.clone(),
            source,
        }
    })?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(io)?;
    let mut line = request.to_json();
    line.push('\n');
    // A daemon that refuses the peer answers and closes at once, maybe before the
    // request is written: its answer is still readable after a broken pipe.
    let written = stream.write_all(line.as_bytes());
    let mut line = String::new();
    let read = std::io::BufReader::new(stream).read_line(&mut line);
    match (written, read) {
        (Ok(()), Err(e)) => return Err(io(e)),
        (Err(e), Err(_)) | (Err(e), Ok(0)) => return Err(io(e)),
        _ => {}
    }
    let answer: serde_json::Value =
        serde_json::from_str(&line).map_err(|source| ControlError::BadAnswer {
            path: path.clone(),
            source,
        })?;
    if answer["ok"] == true {
        Ok(answer)
    } else {
        Err(ControlError::Refused(
            answer["error"]
                .as_str()
                .unwrap_or("the daemon refused")
                .to_string(),
        ))
    }
}
