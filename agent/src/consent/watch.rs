//! Watches the consent file and reports every change of the consent view.
//!
//! inotify on the file's directory sees replace-by-rename (how editors and `assent
//! consent` write), creation, closes after writing and deletion; a second watch on the
//! file itself sees in-place writes. The directory is watched without `IN_MODIFY`: it
//! is usually the state directory, where every commit writes the buffer's WAL, and would
//! wake the watcher thousands of times a second while local programs emit. The watcher
//! thread sleeps in `poll` until the kernel reports an event or it is stopped: no
//! periodic wakeups.

use super::{load, ConsentView};
use crate::config::Config;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Events on the directory that may change the consent file.
fn watch_flags() -> AddWatchFlags {
    AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
}

/// Watches the consent file itself for in-place writes (a truncate, a writer that keeps
/// it open). Whatever replaces it is seen on the directory, and the watch is set again
/// on the new file then; a missing file has no watch until it appears.
fn watch_file(inotify: &Inotify, config: &Config) {
    let _ = inotify.add_watch(&config.consent_file, AddWatchFlags::IN_MODIFY);
}

/// How long to let a burst of events settle before re-reading the file.
const SETTLE: Duration = Duration::from_millis(20);
/// How often to retry when the directory itself is missing.
const RETRY: Duration = Duration::from_millis(250);

/// A running watcher; dropping it stops the thread.
#[derive(Debug)]
pub struct ConsentWatcher {
    stop: UnixStream,
    thread: Option<JoinHandle<()>>,
    /// Reads of inotify events so far: how often the kernel woke the watcher.
    wakeups: Arc<AtomicU64>,
}

impl ConsentWatcher {
    /// Starts watching. `on_change` runs on the watcher thread with each new view (and
    /// once at start with the initial one).
    pub fn spawn(
        config: Config,
        mut on_change: impl FnMut(ConsentView) + Send + 'static,
    ) -> io::Result<ConsentWatcher> {
        let (stop, stop_rx) = UnixStream::pair()?;
        let wakeups = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&wakeups);
        let thread = std::thread::Builder::new()
            .name("consent-watch".to_string())
            .spawn(move || {
                let mut last = load(&config).1;
                on_change(last.clone());
                run(&config, stop_rx, &counted, |view| {
                    if view != last {
                        last = view.clone();
                        on_change(view);
                    }
                });
            })?;
        Ok(ConsentWatcher {
            stop,
            thread: Some(thread),
            wakeups,
        })
    }

    /// How many times inotify events woke the watcher so far.
    pub fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }
}

impl Drop for ConsentWatcher {
    fn drop(&mut self) {
        let _ = self.stop.write_all(&[1]);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    config: &Config,
    mut stop: UnixStream,
    wakeups: &AtomicU64,
    mut changed: impl FnMut(ConsentView),
) {
    let dir = config
        .consent_file
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| ".".into());
    let file_name = config.consent_file.file_name().map(|n| n.to_os_string());
    loop {
        let inotify = match Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK) {
            Ok(i) => i,
            Err(e) => {
                log::error!("consent watcher: inotify: {e}; retrying");
                if wait_stop(&stop, RETRY) {
                    return;
                }
                continue;
            }
        };
        let dir_watch = match inotify.add_watch(&dir, watch_flags()) {
            Ok(w) => w,
            Err(e) => {
                log::debug!("consent watcher: {}: {e}; retrying", dir.display());
                // The directory may appear later; meanwhile the view is re-read on retry.
                changed(load(config).1);
                if wait_stop(&stop, RETRY) {
                    return;
                }
                continue;
            }
        };
        watch_file(&inotify, config);
        // Anything that happened before the watch was set up.
        changed(load(config).1);
        loop {
            let mut fds = [
                PollFd::new(inotify.as_fd(), PollFlags::POLLIN),
                PollFd::new(stop.as_fd(), PollFlags::POLLIN),
            ];
            if poll(&mut fds, PollTimeout::NONE).is_err() {
                continue;
            }
            if fds[1].any().unwrap_or(false) {
                let _ = stop.read(&mut [0u8; 1]);
                return;
            }
            let events = match inotify.read_events() {
                Ok(e) => {
                    wakeups.fetch_add(1, Ordering::Relaxed);
                    e
                }
                Err(nix::errno::Errno::EAGAIN) => continue,
                Err(e) => {
                    log::warn!("consent watcher: reading events: {e}");
                    break;
                }
            };
            // The file's own watch is dropped (IN_IGNORED) when it is replaced or deleted;
            // only the directory's ending means starting over.
            let dir_gone = events.iter().any(|e| {
                e.wd == dir_watch
                    && e.mask.intersects(
                        AddWatchFlags::IN_DELETE_SELF
                            | AddWatchFlags::IN_MOVE_SELF
                            | AddWatchFlags::IN_IGNORED,
                    )
            });
            let relevant = dir_gone
                || events
                    .iter()
                    .any(|e| e.name.is_none() || e.name == file_name);
            if relevant {
                std::thread::sleep(SETTLE);
                let _ = inotify.read_events();
                watch_file(&inotify, config);
                changed(load(config).1);
            }
            if dir_gone {
                break;
            }
        }
    }
}

/// Waits up to `timeout` for the stop signal; true when stopped.
fn wait_stop(stop: &UnixStream, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    matches!(poll(&mut fds, PollTimeout::from(millis)), Ok(n) if n > 0)
}
