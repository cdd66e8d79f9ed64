//! Bounded, non-blocking reads under a root path.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Size bound for one sysfs or procfs attribute.
pub const ATTRIBUTE_LIMIT: usize = 4096;
/// Size bound for a text file such as `/proc/cpuinfo` or `/etc/os-release`.
pub const TEXT_LIMIT: usize = 1 << 20;
/// Size bound for a package database.
pub const PACKAGE_DB_LIMIT: usize = 32 << 20;
/// The most entries read from one directory.
pub const DIR_ENTRY_LIMIT: usize = 4096;

/// Where the readers look: `/` on a device, or a captured root filesystem in tests.
///
/// Some sources are not files (uname, getifaddrs, nl80211, gpsd). They are used only
/// when the root is live (`/`); under any other root those fields come from files or
/// are reported absent, so fixture output never depends on the machine running it.
#[derive(Debug, Clone)]
pub struct Root {
    path: PathBuf,
    live: bool,
}

impl Root {
    /// The running system.
    pub fn live() -> Root {
        Root {
            path: PathBuf::from("/"),
            live: true,
        }
    }

    /// A root filesystem tree; it is live only if it is `/` itself.
    pub fn at(path: impl Into<PathBuf>) -> Root {
        let path = path.into();
        let live = path.canonicalize().is_ok_and(|p| p == Path::new("/"));
        Root { path, live }
    }

    /// Whether live sources (syscalls, sockets) describe this root.
    pub fn is_live(&self) -> bool {
        self.live
    }

    pub fn base(&self) -> &Path {
        &self.path
    }

    /// The host path of an absolute path inside the root.
    pub fn join(&self, absolute: &str) -> PathBuf {
        self.path.join(absolute.trim_start_matches('/'))
    }

    /// Reads a whole regular file, at most `limit` bytes, never blocking on a FIFO.
    pub fn read(&self, absolute: &str, limit: usize) -> Result<Vec<u8>, ReadError> {
        read_bounded(&self.join(absolute), limit)
    }

    /// The target of a symbolic link, without following it.
    pub fn read_link(&self, absolute: &str) -> Result<PathBuf, ReadError> {
        std::fs::read_link(self.join(absolute)).map_err(ReadError::from)
    }

    /// Entry names of a directory, sorted, at most [`DIR_ENTRY_LIMIT`]; names that are
    /// not UTF-8 are skipped.
    pub fn list_dir(&self, absolute: &str) -> Result<Vec<String>, ReadError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.join(absolute))?.take(DIR_ENTRY_LIMIT) {
            let Ok(entry) = entry else { continue };
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        sort_by(&mut names, |a, b| a < b);
        Ok(names)
    }

    /// Whether a path exists inside the root (following links).
    pub fn exists(&self, absolute: &str) -> bool {
        self.join(absolute).exists()
    }
}

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    NotFound,
    Denied,
    /// The file holds more than the bound for its kind.
    TooLarge {
        limit: usize,
    },
    /// A FIFO, device, socket or directory where a regular file was expected.
    NotRegular,
    /// EINVAL from the kernel, as sysfs gives for `carrier` on a down link.
    Invalid,
    /// Too many levels of symbolic links.
    Loop,
    Other(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotFound => f.write_str("not found"),
            ReadError::Denied => f.write_str("permission denied"),
            ReadError::TooLarge { limit } => write!(f, "larger than {limit} bytes"),
            ReadError::NotRegular => f.write_str("not a regular file"),
            ReadError::Invalid => f.write_str("invalid argument"),
            ReadError::Loop => f.write_str("symbolic link loop"),
            ReadError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        use nix::errno::Errno;
        match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOENT | Errno::ENOTDIR) => ReadError::NotFound,
            Some(Errno::EACCES | Errno::EPERM) => ReadError::Denied,
            Some(Errno::EINVAL) => ReadError::Invalid,
            Some(Errno::ELOOP) => ReadError::Loop,
            Some(Errno::EISDIR) => ReadError::NotRegular,
            _ => ReadError::Other(e.to_string()),
        }
    }
}

/// Reads at most `limit` bytes from a regular file. The file is opened non-blocking so a
/// FIFO cannot hang the reader, and anything but a regular file is refused before a read.
pub fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits() | nix::fcntl::OFlag::O_NOCTTY.bits())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(ReadError::NotRegular);
    }
    read_to_limit(file, limit)
}

fn read_to_limit(file: File, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    file.take(bound).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// Sorts `v` in place by `less`: a heapsort (unstable, O(n log n), no allocation). The
/// readers use it instead of the slice sorts, each of whose instantiations costs 2 to
/// 6 KB of flash; every list sorted here has a total order, so stability is moot.
pub fn sort_by<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let sift = |v: &mut [T], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && less(&v[child], &v[child + 1]) {
            child += 1;
        }
        if !less(&v[root], &v[child]) {
            break;
        }
        v.swap(root, child);
        root = child;
    };
    let n = v.len();
    for i in (0..n / 2).rev() {
        sift(v, i, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"hello").unwrap();
        let root = Root::at(dir.path());
        assert!(!root.is_live());
        assert_eq!(root.read("/a", 5), Ok(b"hello".to_vec()));
        assert_eq!(root.read("/a", 4), Err(ReadError::TooLarge { limit: 4 }));
        assert_eq!(root.read("/missing", 4), Err(ReadError::NotFound));
        assert_eq!(root.read("/a/b", 4), Err(ReadError::NotFound));
    }

    #[test]
    fn refuses_fifos_directories_and_link_loops_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let root = Root::at(dir.path());
        assert_eq!(root.read("/fifo", 10), Err(ReadError::NotRegular));
        assert_eq!(root.read("/loop", 10), Err(ReadError::Loop));
        assert_eq!(root.read("/d", 10), Err(ReadError::NotRegular));
    }

    #[test]
    fn a_huge_sparse_file_is_cut_at_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join("huge")).unwrap();
        f.set_len(1 << 30).unwrap();
        let root = Root::at(dir.path());
        assert_eq!(
            root.read("/huge", TEXT_LIMIT),
            Err(ReadError::TooLarge { limit: TEXT_LIMIT })
        );
    }

    #[test]
    fn the_real_root_is_live() {
        assert!(Root::at("/").is_live());
        assert!(Root::live().is_live());
    }

    #[test]
    fn heapsort_sorts_like_the_slice_sort() {
        let mut seed = 12345u32;
        for len in [0usize, 1, 2, 3, 7, 64, 1000] {
            let mut v: Vec<u32> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    seed % 97
                })
                .collect();
            let mut want = v.clone();
            want.sort();
            sort_by(&mut v, |a, b| a < b);
            assert_eq!(v, want);
        }
    }
}
