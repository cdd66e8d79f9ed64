//! The control socket: the CLI talks to the running daemon through it. One JSON request
//! per line (`{"command": "status"}`, `sync`, `erase` with `"remote": bool`, `reset-id`),
//! one JSON answer per line. Only root or members of the configured admin group may
//! use it (checked with SO_PEERCRED).

use crate::collect::identity::IdentityState;
use crate::config::Config;
use crate::daemon::{Daemon, SyncReason};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use serde::Deserialize;
use serde_json::{json, Value};
use smol::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use smol::net::unix::{UnixListener, UnixStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The longest request line accepted.
const MAX_REQUEST_BYTES: u64 = 4096;

/// A request from the CLI.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub command: String,
    #[serde(default)]
    pub remote: bool,
}

/// Where the control socket is.
pub fn socket_path(config: &Config) -> PathBuf {
    config.control.socket.clone()
}

/// Binds the control socket (0660; group set to the admin group when configured).
pub fn bind(config: &Config) -> std::io::Result<UnixListener> {
    let path = socket_path(config);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    remove_stale_socket(&path)?;
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(gid) = admin_gid(config) {
        nix::unistd::chown(&path, None, Some(nix::unistd::Gid::from_raw(gid)))
            .map_err(std::io::Error::from)?;
    }
    Ok(listener)
}

/// Removes a socket file left by a previous run (never a regular file).
pub fn remove_stale_socket(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(_) => Ok(()),
    }
}

fn admin_gid(config: &Config) -> Option<u32> {
    let name = config.control.admin_group.as_ref()?;
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Some(group.gid.as_raw()),
        _ => {
            log::warn!(
                "control.admin_group `{name}` does not exist; only root may use the control socket"
            );
            None
        }
    }
}

/// Serves the control socket until the daemon stops.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let daemon = daemon.clone();
        smol::spawn(async move {
            if let Err(e) = handle(stream, daemon).await {
                log::debug!("control connection: {e}");
            }
        })
        .detach();
    }
}

async fn handle(stream: UnixStream, daemon: Arc<Daemon>) -> std::io::Result<()> {
    let creds = getsockopt(&stream, PeerCredentials).map_err(std::io::Error::from)?;
    let config = daemon.config_snapshot();
    let allowed = creds.uid() == 0 || admin_gid(&config).is_some_and(|gid| creds.gid() == gid);
    let mut writer = stream.clone();
    if !allowed {
        let answer = json!({"ok": false, "error": format!("uid {} may not use the control socket", creds.uid())});
        writer.write_all(format!("{answer}\n").as_bytes()).await?;
        return Ok(());
    }
    let mut reader = BufReader::new(smol::io::AsyncReadExt::take(stream, MAX_REQUEST_BYTES));
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let answer = match serde_json::from_str::<Request>(&line) {
        Ok(request) => execute(&daemon, &request).await,
        Err(e) => json!({"ok": false, "error": format!("bad request: {e}")}),
    };
    writer.write_all(format!("{answer}\n").as_bytes()).await?;
    Ok(())
}

async fn execute(daemon: &Arc<Daemon>, request: &Request) -> Value {
    match request.command.as_str() {
        "status" => json!({"ok": true, "status": daemon.status_now()}),
        "sync" => {
            daemon.wake_sync(SyncReason::Requested);
            json!({"ok": true})
        }
        "erase" => {
            let (worker, remote) = (daemon.clone(), request.remote);
            let result = crate::daemon::worker::run(move || {
                crate::local::owner::erase(&worker.config_snapshot(), &worker.store, remote)
            })
            .await;
            match result {
                Ok(erased) => {
                    if erased.remote_requested {
                        // Erasure requests go out before any further batch.
                        daemon.wake_sync(SyncReason::Requested);
                    }
                    json!({"ok": true, "erased": erased})
                }
                Err(e) => json!({"ok": false, "error": e}),
            }
        }
        "reset-id" => match IdentityState::rotate(&daemon.config_snapshot().state_dir) {
            Ok(_) => json!({"ok": true}),
            Err(e) => json!({"ok": false, "error": e.to_string()}),
        },
        other => json!({"ok": false, "error": format!("unknown command `{other}`")}),
    }
}

/// The CLI side: sends one request to the running daemon and returns its answer.
pub fn request(config: &Config, request: &Value) -> Result<Value, String> {
    use std::io::{BufRead, Write};
    let path = socket_path(config);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        format!(
            "cannot reach the daemon at {}: {e} (is `assent run` running with this --config?)",
            path.display()
        )
    })?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let answer: Value =
        serde_json::from_str(&line).map_err(|e| format!("{}: bad answer: {e}", path.display()))?;
    if answer["ok"] == true {
        Ok(answer)
    } else {
        Err(answer["error"]
            .as_str()
            .unwrap_or("the daemon refused")
            .to_string())
    }
}
