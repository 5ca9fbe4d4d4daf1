"""nbdkit Python plugin: an image file served as a seek-aware hard disk
(the model in tests/diskmodel.py). QEMU attaches it with its own NBD
client; the guest sees a virtio disk.

    nbdkit --unix SOCK python tests/nbd_disk.py file=IMAGE [sleep=1] [master=MASTER]

Each request is served from IMAGE and charged the model's service time;
with sleep=1 (the default) the plugin also sleeps that long, so that the
guest waits as it would for the disk, and sleep=0 only counts. One
request at a time (nbdkit serializes all requests: one actuator).

The export is IMAGE's size plus one control MiB at its end, which the
model does not charge: a read there returns the counters as one text line
("reads=... read_ms=... seeks=..."), padded with newlines; writing
"drop" there empties the drive's read-ahead cache (a cold read follows);
"sleep 0" stops the waiting (the model still counts) and "sleep 1" starts
it again, so that the work between two measured phases (checksums,
e2fsck) runs at the host's speed; "restore" copies MASTER over IMAGE on
the host, uncharged, and leaves the drive as a sequential write of it
would (caches empty, the head past its end): what the benchmark's
variants start from, without a copy through the model and the guest.
Writing a map there tells the model where the filesystem keeps its
metadata, so that it can count reads by kind (it changes no cost): one
block of text, "map BLOCKSIZE" (a new map) or "map+ BLOCKSIZE" (more of
it), then lines "KIND START COUNT" in blocks, KIND one of itable, dir,
bitmap. The guest uses O_DIRECT (tests/guest/lib.sh: model_stats,
model_drop, model_map).
"""

import builtins
import os
import sys
import time

import nbdkit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diskmodel  # noqa: E402

API_VERSION = 2
CONTROL_BYTES = 1 << 20

image = None
master = None
sleep = True


def thread_model():
    return nbdkit.THREAD_MODEL_SERIALIZE_ALL_REQUESTS


def config(key, value):
    global image, master, sleep
    if key == "file":
        image = value
    elif key == "master":
        master = value
    elif key == "sleep":
        sleep = value not in ("0", "false", "no")
    else:
        raise RuntimeError(f"unknown parameter {key}")


def config_complete():
    if image is None:
        raise RuntimeError("file=IMAGE is required")


class Handle:
    def __init__(self, readonly):
        self.fd = os.open(image, os.O_RDONLY if readonly else os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        self.disk = diskmodel.Disk()
        self.regions = []         # the metadata map, as the guest gave it


def open(readonly):  # noqa: A001 (nbdkit's name)
    return Handle(readonly)


def close(h):
    os.close(h.fd)


def get_size(h):
    return h.size + CONTROL_BYTES


def is_rotational(h):
    return True


def can_flush(h):
    return True


def can_fua(h):
    return nbdkit.FUA_NATIVE


def can_multi_conn(h):
    return False


def charge(ms):
    if sleep and ms > 0:
        time.sleep(ms / 1000)


def pread(h, buf, offset, flags):
    if offset >= h.size:
        line = (h.disk.c.line() + "\n").encode()
        n = len(buf)
        buf[:] = (line + b"\n" * n)[:n]
        return
    n = min(len(buf), h.size - offset)
    data = os.pread(h.fd, n, offset)
    buf[:n] = data
    buf[n:] = b"\0" * (len(buf) - n)
    charge(h.disk.read(offset, n))


def restore(h):
    """MASTER's bytes over the image (see above)."""
    if master is None:
        raise RuntimeError("restore: no master=MASTER was given")
    with builtins.open(master, "rb") as src:
        n = os.fstat(src.fileno()).st_size
        if n > h.size:
            raise RuntimeError(f"restore: {master} is larger than the image")
        done = 0
        while done < n:
            got = os.copy_file_range(src.fileno(), h.fd, n - done, done, done)
            if got == 0:
                raise RuntimeError(f"restore: {master} ended early")
            done += got
    d = h.disk
    d.segments, d.dirty = [], []
    d.head = d.p.partition_offset + n


def control(h, text):
    """A command written to the control MiB (see above)."""
    global sleep
    if text.startswith("drop"):
        h.disk.drop_cache()
        return
    if text.startswith("restore"):
        restore(h)
        return
    if text.startswith("sleep "):
        sleep = text.split()[1] not in ("0", "false", "no")
        return
    if not text.strip():
        return
    lines = text.split("\n")
    head = lines[0].split()
    if len(head) != 2 or head[0] not in ("map", "map+"):
        raise RuntimeError(f"unknown control command {lines[0][:40]!r}")
    bs = int(head[1])
    if head[0] == "map":
        h.regions = []
    for line in lines[1:]:
        words = line.split()
        if len(words) == 3:
            h.regions.append((int(words[1]) * bs, int(words[2]) * bs, words[0]))
    h.disk.set_regions(h.regions)


def pwrite(h, buf, offset, flags):
    if offset >= h.size:
        control(h, bytes(buf).split(b"\0")[0].decode())
        return
    n = min(len(buf), h.size - offset)
    os.pwrite(h.fd, bytes(buf[:n]), offset)
    charge(h.disk.write(offset, n, fua=bool(flags & nbdkit.FLAG_FUA)))


def flush(h, flags):
    # The image's own durability on the host is of no interest here.
    charge(h.disk.flush())
