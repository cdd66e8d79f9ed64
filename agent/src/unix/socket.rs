//! The one Unix socket server of the agent, used by the events socket and the control
//! socket: creating a listening socket with its mode and group set before anyone can
//! connect (and never taking over one somebody listens on), accepting with a pause
//! after errors instead of spinning, reading a peer's kernel-checked credentials
//! (`SO_PEERCRED`), and deciding with one [`PeerPolicy`] whether that peer is served.
//!
//! Knows nothing of what is said on the sockets. Holds no thread or task of its own.

use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a socket could not be bound, or a peer or group not be resolved.
#[derive(Debug)]
pub enum SocketError {
    /// `SO_PEERCRED` failed on a connection.
    PeerCredentials(nix::errno::Errno),
    /// A configured group does not exist.
    NoSuchGroup(String),
    /// The group database could not be read.
    GroupLookup {
        name: String,
        source: nix::errno::Errno,
    },
    /// Another process listens on the socket: it is not taken over.
    InUse(PathBuf),
    /// Something other than a socket is at the path: it is never removed.
    NotASocket(PathBuf),
    /// A step of creating the socket failed.
    Io {
        path: PathBuf,
        action: String,
        source: std::io::Error,
    },
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketError::PeerCredentials(e) => write!(f, "cannot read the peer's credentials: {e}"),
            SocketError::NoSuchGroup(name) => write!(f, "no group named `{name}`"),
            SocketError::GroupLookup { name, source } => {
                write!(f, "cannot look up group `{name}`: {source}")
            }
            SocketError::InUse(path) => write!(
                f,
                "{}: another process is listening on this socket",
                path.display()
            ),
            SocketError::NotASocket(path) => write!(
                f,
                "{}: exists and is not a socket; not replacing it",
                path.display()
            ),
            SocketError::Io {
                path,
                action,
                source,
            } => write!(f, "{}: {action}: {source}", path.display()),
        }
    }
}

impl std::error::Error for SocketError {}

/// How long to pause after `accept` fails (out of file descriptors), so the loop does
/// not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// A bound, listening socket with the policy for its peers.
#[derive(Debug)]
pub struct Server {
    listener: smol::net::unix::UnixListener,
    policy: PeerPolicy,
    path: PathBuf,
}

impl Server {
    /// Binds `path` with `mode` and group `gid` (see [`bind_unix_socket`]); `policy`
    /// decides which peers are served.
    pub fn bind(
        path: &Path,
        mode: u32,
        gid: Option<u32>,
        policy: PeerPolicy,
    ) -> Result<Server, SocketError> {
        let std_listener = bind_unix_socket(path, mode, gid)?;
        let listener =
            smol::net::unix::UnixListener::try_from(std_listener).map_err(|e| SocketError::Io {
                path: path.to_path_buf(),
                action: "cannot register with the reactor".into(),
                source: e,
            })?;
        Ok(Server {
            listener,
            policy,
            path: path.to_path_buf(),
        })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Which peers are served.
    pub fn policy(&self) -> &PeerPolicy {
        &self.policy
    }

    /// The next connection. A failed `accept` (out of file descriptors, a connection
    /// reset before it was taken) is logged and retried after [`ACCEPT_RETRY`].
    pub async fn accept(&self) -> smol::net::unix::UnixStream {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => return stream,
                Err(e) => {
                    log::warn!("{}: accept failed: {e}", self.path.display());
                    smol::Timer::after(ACCEPT_RETRY).await;
                }
            }
        }
    }
}

/// Who is on the other end of a connection, as the kernel recorded it at `connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    /// The effective uid.
    pub uid: u32,
    /// The effective (primary) gid.
    pub gid: u32,
}

/// The credentials of a connected Unix stream's peer.
pub fn peer_of(stream: &impl AsFd) -> Result<Peer, SocketError> {
    let cred = socket::getsockopt(stream, sockopt::PeerCredentials)
        .map_err(SocketError::PeerCredentials)?;
    Ok(Peer {
        pid: cred.pid(),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

/// Which peers a socket serves: root and the agent's own uid always, then listed uids,
/// then members (primary or supplementary) of listed groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPolicy {
    uids: Vec<u32>,
    gids: Vec<u32>,
}

impl PeerPolicy {
    /// A policy for `uids` and the groups named `groups`; fails on a group name that
    /// does not exist (a typo should not silently lock everyone out).
    pub fn new(uids: &[u32], groups: &[&str]) -> Result<PeerPolicy, SocketError> {
        let gids = groups
            .iter()
            .map(|g| group_id(g))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PeerPolicy::with_gids(uids, &gids))
    }

    /// A policy for `uids` and the groups `gids` (root and the agent's uid included).
    pub fn with_gids(uids: &[u32], gids: &[u32]) -> PeerPolicy {
        let mut all_uids = vec![0, nix::unistd::geteuid().as_raw()];
        all_uids.extend_from_slice(uids);
        PeerPolicy {
            uids: all_uids,
            gids: gids.to_vec(),
        }
    }

    /// Whether `peer` is served. Supplementary groups are read from
    /// `/proc/<pid>/status` only when the uid and primary group did not already decide.
    pub fn allows(&self, peer: &Peer) -> bool {
        if self.allows_ids(peer.uid, &[peer.gid]) {
            return true;
        }
        if self.gids.is_empty() {
            return false;
        }
        // The pid is the connecting process's, translated into our pid namespace; if it
        // is gone or unreadable, only the primary group counts.
        let status = std::fs::read(format!("/proc/{}/status", peer.pid)).unwrap_or_default();
        self.allows_ids(peer.uid, &status_groups(&status))
    }

    /// The decision for a uid and a list of its groups.
    pub fn allows_ids(&self, uid: u32, groups: &[u32]) -> bool {
        self.uids.contains(&uid) || groups.iter().any(|g| self.gids.contains(g))
    }
}

/// The supplementary groups on the `Groups:` line of a `/proc/<pid>/status` file; empty
/// when the line is missing or unreadable. Malformed numbers are skipped.
pub fn status_groups(status: &[u8]) -> Vec<u32> {
    status
        .split(|b| *b == b'\n')
        .find_map(|line| line.strip_prefix(b"Groups:"))
        .map(|rest| {
            rest.split(|b| b.is_ascii_whitespace())
                .filter_map(|w| std::str::from_utf8(w).ok()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The gid of the group named `name`.
pub fn group_id(name: &str) -> Result<u32, SocketError> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(SocketError::NoSuchGroup(name.to_string())),
        Err(source) => Err(SocketError::GroupLookup {
            name: name.to_string(),
            source,
        }),
    }
}

/// Creates a listening Unix stream socket at `path` with permission bits `mode` and,
/// if given, group `gid`, set before `listen` so nobody can connect while it is more
/// open than asked. Creates the parent directory (0755) if missing. An existing socket
/// file is replaced if nobody listens on it; anything else at `path` is an error.
pub fn bind_unix_socket(
    path: &Path,
    mode: u32,
    gid: Option<u32>,
) -> Result<std::os::unix::net::UnixListener, SocketError> {
    let io = |path: &Path, action: String| {
        let path = path.to_path_buf();
        move |source: std::io::Error| SocketError::Io {
            path,
            action,
            source,
        }
    };
    let errno = |action: &str| {
        let path = path.to_path_buf();
        let action = action.to_string();
        move |e: nix::errno::Errno| SocketError::Io {
            path,
            action,
            source: e.into(),
        }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(io(parent, "cannot create".into()))?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(SocketError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io(path, "cannot remove stale socket".into()))?;
        }
        Ok(_) => return Err(SocketError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path, "cannot inspect".into())(e)),
    }
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(errno("cannot create socket"))?;
    let addr = UnixAddr::new(path).map_err(errno("not a socket path"))?;
    socket::bind(fd.as_raw_fd(), &addr).map_err(errno("cannot bind"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io(path, format!("cannot set mode {mode:04o}")))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(io(path, format!("cannot set group {gid}")))?;
    }
    let backlog = Backlog::new(128).map_err(errno("bad backlog"))?;
    socket::listen(&fd, backlog).map_err(errno("cannot listen"))?;
    Ok(std::os::unix::net::UnixListener::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn status_groups_table() {
        let cases: &[(&[u8], &[u32])] = &[
            (
                b"Name:\tx\nUid:\t0\t0\t0\t0\nGroups:\t4 24 100 \nNgid:\t0\n",
                &[4, 24, 100],
            ),
            (b"Groups:\n", &[]),
            (b"Groups:\t\n", &[]),
            (b"Name:\tx\n", &[]),
            (b"", &[]),
            (b"Groups:\t4 x 99999999999 -1 7\xff 8\n", &[4, 8]),
            (b"Groups:\t4\0 5\n", &[5]),
            (b"XGroups:\t4\n", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(
                status_groups(text),
                *want,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn policy_decisions() {
        let policy = PeerPolicy::new(&[1000], &["users"]).unwrap();
        let users = group_id("users").unwrap();
        assert!(policy.allows_ids(0, &[]), "root is always allowed");
        assert!(policy.allows_ids(nix::unistd::geteuid().as_raw(), &[]));
        assert!(policy.allows_ids(1000, &[]));
        assert!(policy.allows_ids(1001, &[5, users]));
        assert!(!policy.allows_ids(1001, &[5, 6]));
        assert!(!policy.allows_ids(65534, &[]));
        assert_eq!(
            PeerPolicy::new(&[], &["no-such-group-assent"])
                .unwrap_err()
                .to_string(),
            "no group named `no-such-group-assent`"
        );
        // The test process itself, through the real credentials path.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let me = peer_of(&a).unwrap();
        assert_eq!(me.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(policy.allows(&me));
    }

    #[test]
    fn bind_sets_mode_and_group_and_replaces_only_stale_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/s.sock");
        let gid = group_id("users").unwrap();
        let listener = bind_unix_socket(&path, 0o640, Some(gid)).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!(meta.gid(), gid);
        // A live socket is not taken over.
        let e = bind_unix_socket(&path, 0o600, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("another process is listening on this socket"),
            "{e}"
        );
        // A stale one (nobody listening) is replaced.
        drop(listener);
        let _again = bind_unix_socket(&path, 0o600, None).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        // A regular file is never removed.
        let file = dir.path().join("file");
        std::fs::write(&file, b"keep").unwrap();
        let e = bind_unix_socket(&file, 0o600, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("exists and is not a socket; not replacing it"),
            "{e}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    }
}
