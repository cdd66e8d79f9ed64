#!/usr/bin/python3
"""A FUSE filesystem that loses what was not fsynced, for power-cut tests.

Usage: lazyfs.py BACKING_DIR MOUNTPOINT

Files live in BACKING_DIR. Data written through MOUNTPOINT stays in this process's
memory until the file is fsynced (or fdatasynced); only then does it reach BACKING_DIR,
itself fsynced. Looking up MOUNTPOINT/.lazyfs-cut (a stat, which fails with ENOENT) is the
power cut: every unsynced write and truncation is forgotten, as the page cache of a
machine that lost power would be; the cut is done when the stat returns. SIGTERM
unmounts.

The model of LazyFS (https://github.com/dsrhaslab/lazyfs), which is not packaged here,
in the small: data is volatile until fsync; metadata (create, unlink, rename, mkdir) is
applied at once, which is kinder than a real disk (a file created but whose directory
was not fsynced may vanish in a real cut). Needs Debian's python3-fusepy and fuse.
"""

import errno
import os
import sys
import threading

import fusepy as fuse

# Looking this name up is the power cut (a signal would wait for the main thread, which
# sits in libfuse's loop).
CUT = "/.lazyfs-cut"


class LazyFS(fuse.Operations):
    def __init__(self, backing):
        self.backing = backing
        self.mutex = threading.Lock()
        # path -> bytearray: the whole file as written since its last fsync.
        self.unsynced = {}

    def _real(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def _image(self, path):
        image = self.unsynced.get(path)
        if image is None:
            with open(self._real(path), "rb") as f:
                image = bytearray(f.read())
            self.unsynced[path] = image
        return image

    def cut(self):
        with self.mutex:
            self.unsynced.clear()

    # Metadata: applied to the backing directory at once.

    def getattr(self, path, fh=None):
        if path == CUT:
            self.cut()
            raise fuse.FuseOSError(errno.ENOENT)
        with self.mutex:
            try:
                st = os.lstat(self._real(path))
            except OSError as e:
                raise fuse.FuseOSError(e.errno)
            attrs = {
                key: getattr(st, key)
                for key in (
                    "st_mode", "st_nlink", "st_uid", "st_gid", "st_size",
                    "st_atime", "st_mtime", "st_ctime",
                )
            }
            if path in self.unsynced:
                attrs["st_size"] = len(self.unsynced[path])
            return attrs

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._real(path))

    def statfs(self, path):
        st = os.statvfs(self._real(path))
        return {
            key: getattr(st, key)
            for key in (
                "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax",
            )
        }

    def access(self, path, mode):
        if not os.access(self._real(path), mode):
            raise fuse.FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        os.chmod(self._real(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._real(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._real(path), times)

    def mkdir(self, path, mode):
        os.mkdir(self._real(path), mode)

    def rmdir(self, path):
        os.rmdir(self._real(path))

    def unlink(self, path):
        with self.mutex:
            os.unlink(self._real(path))
            self.unsynced.pop(path, None)

    def rename(self, old, new):
        with self.mutex:
            os.rename(self._real(old), self._real(new))
            if old in self.unsynced:
                self.unsynced[new] = self.unsynced.pop(old)
            else:
                self.unsynced.pop(new, None)

    def create(self, path, mode, fi=None):
        fd = os.open(self._real(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.close(fd)
        with self.mutex:
            self.unsynced.pop(path, None)
        return 0

    def open(self, path, flags):
        if not os.path.exists(self._real(path)):
            raise fuse.FuseOSError(errno.ENOENT)
        return 0

    # Data: volatile until fsync.

    def read(self, path, size, offset, fh):
        with self.mutex:
            image = self.unsynced.get(path)
            if image is not None:
                return bytes(image[offset:offset + size])
            with open(self._real(path), "rb") as f:
                f.seek(offset)
                return f.read(size)

    def write(self, path, data, offset, fh):
        with self.mutex:
            image = self._image(path)
            if offset > len(image):
                image.extend(b"\0" * (offset - len(image)))
            image[offset:offset + len(data)] = data
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            image = self._image(path)
            if length < len(image):
                del image[length:]
            else:
                image.extend(b"\0" * (length - len(image)))

    def fsync(self, path, datasync, fh):
        with self.mutex:
            image = self.unsynced.pop(path, None)
            if image is None:
                return 0
            fd = os.open(self._real(path), os.O_WRONLY)
            try:
                os.pwrite(fd, bytes(image), 0)
                os.ftruncate(fd, len(image))
                os.fsync(fd)
            finally:
                os.close(fd)
            return 0

    def fsyncdir(self, path, datasync, fh):
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    backing, mountpoint = sys.argv[1], sys.argv[2]
    fs = LazyFS(os.path.realpath(backing))
    # No attribute or entry caching in the kernel, so sizes are right after a cut; no
    # direct_io, so SQLite can mmap its -shm file.
    fuse.FUSE(
        fs,
        mountpoint,
        foreground=True,
        nothreads=False,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
    )


if __name__ == "__main__":
    main()
