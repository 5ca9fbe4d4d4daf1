"""Replay a dm-log-writes log to every flush and FUA point of the marked
phases and check the filesystem there: the way fstests proves crash
consistency (generic/455, generic/482), since killing QEMU with a
write-back cache is not a power cut (every write the guest issued
survives).

dm-log-writes logs each write once it is on the (emulated) disk, in that
order, and each flush and FUA. The state of the disk after any logged
FLUSH or FUA entry is one a power cut can leave (everything before a flush
is durable, a FUA write is durable when it completes), and so is the state
just before a write that carries a preflush (a journal commit block). At each such point
inside a phase (between the marks PHASE-start and PHASE-end the guest sets)
a copy of the replayed disk is mounted (the journal replays, the orphan
donor is freed), every file of the phase's manifest must have the checksum
it had before the phase (or one of the checksums the manifest allows), and
`e2fsck -fn` must find nothing after the unmount. The state at a phase's
start mark is checked too: a phase can start right after an fsync
returned, without a sync, and that state is the one that matters then.

Log format (drivers/md/dm-log-writes.c): sector 0 holds the super (magic,
version, number of entries, sector size); then per entry one sector with
its header (sector, number of sectors, flags, data length; a mark's name
follows the header) and the written sectors, none for a flush, a discard
or a mark.
"""

import hashlib
import os
import struct
import subprocess
import tempfile
import time

# Besides every flush and FUA point, the state after every this many
# writes of a phase: the log is in completion order, so every prefix is a
# state a power cut can leave (the writes after the last flush may land
# in any subset, the prefix is one of them).
WRITES_PER_POINT = 4

MAGIC = 0x6A736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
SUPER = struct.Struct("<QQQI")
ENTRY = struct.Struct("<QQQQ")


def entries(log_path):
    """Yield (index, sector, nr_sectors, flags, payload) for each entry;
    payload is the written data, or a mark's name, or b""."""
    with open(log_path, "rb") as log:
        magic, version, count, sectorsize = SUPER.unpack(log.read(SUPER.size))
        if magic != MAGIC:
            raise ValueError(f"{log_path}: not a dm-log-writes log (magic {magic:#x})")
        if version != 1:
            raise ValueError(f"{log_path}: log version {version}, this replayer knows 1")
        pos = sectorsize
        for i in range(count):
            log.seek(pos)
            sector, nr, flags, data_len = ENTRY.unpack(log.read(ENTRY.size))
            pos += sectorsize
            payload = b""
            if flags & MARK:
                payload = log.read(data_len)
            elif nr and not flags & DISCARD:
                log.seek(pos)
                payload = log.read(nr * sectorsize)
                pos += nr * sectorsize
            yield i, sector * sectorsize, nr * sectorsize, flags, payload


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_point(image, snap, mnt, files):
    """Mount SNAP, made a copy of IMAGE (the replayed disk, in memory), as
    a power cut left it; "" if the files and e2fsck are right, else what
    is wrong. SNAP is overwritten in place: its pages stay allocated from
    one point to the next, which costs a third of a fresh copy."""
    with open(snap, "r+b", buffering=0) as f:
        view = memoryview(image)
        while view:
            view = view[f.write(view):]
    r = subprocess.run(["mount", "-t", "ext4", "-o", "loop", snap, mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"mount failed: {r.stderr.strip()}"
    wrong = []
    try:
        for path, want in files:
            full = os.path.join(mnt, path)
            got = sha256(full) if os.path.exists(full) else "missing"
            if got not in want:
                wrong.append(f"{path} {got[:12]} (want {' or '.join(w[:12] for w in want)})")
    finally:
        subprocess.run(["umount", mnt], check=True)
    if wrong:
        return "data: " + ", ".join(wrong[:3])
    r = subprocess.run(["e2fsck", "-fn", snap], capture_output=True, text=True)
    if r.returncode != 0:
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        return "e2fsck: " + "; ".join(lines[1:4])
    return ""


class Checker:
    """check_point for one replay, which checks a disk state once: a point
    whose state is the one checked last (no write since, the same phase)
    gets that verdict again (mount and e2fsck are deterministic on the
    same bytes). Counts the points and the states it mounted."""

    def __init__(self, image, snap, mnt):
        self.image, self.snap, self.mnt = image, snap, mnt
        self.last = None  # (phase, verdict) of the state checked last
        self.states = 0

    def written(self):
        """The replayed disk changed: the next point is a new state."""
        self.last = None

    def check(self, phase, files):
        if self.last is None or self.last[0] != phase:
            self.states += 1
            self.last = (phase, check_point(self.image, self.snap, self.mnt, files))
        return self.last[1]


def replay(log_path, disk_bytes, manifests, say=print, final=None):
    """Replay LOG_PATH onto a zeroed disk of DISK_BYTES and check each
    phase of MANIFESTS ({phase: [(path, [sha256, ...])]}) at its start
    mark and at every flush and FUA point up to its end mark. FINAL, the
    logged disk as the guest left it, must then equal the replayed one
    (else the replay, and so every point, was of some other disk).
    Returns [(name, ok, reason)]."""
    results = []
    work_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="e4d-replay-", dir=work_dir) as tmp:
        # The replayed disk lives in memory; each point's copy goes to SNAP.
        image = bytearray(disk_bytes)
        snap = os.path.join(tmp, "snap.img")
        mnt = os.path.join(tmp, "mnt")
        os.mkdir(mnt)
        with open(snap, "wb") as f:
            f.write(image)
        checker = Checker(image, snap, mnt)
        phase, points, bad, seen = None, 0, [], set()
        start = time.monotonic()
        for i, offset, length, flags, payload in entries(log_path):
            if flags & MARK:
                name = payload.rstrip(b"\0").decode(errors="replace")
                if name.endswith("-start"):
                    phase, points, bad = name[: -len("-start")], 0, []
                    flushes, writes, states = 0, 0, checker.states
                    seen.add(phase)
                    t0 = time.monotonic()
                    if phase in manifests:
                        points += 1
                        why = checker.check(phase, manifests[phase])
                        if why:
                            bad.append(f"at the start mark: {why}")
                elif phase and name == f"{phase}-end":
                    secs = time.monotonic() - t0
                    say(f"powercut: {phase}: {writes} writes, {points} replay "
                        f"points checked (the start mark, {flushes} at a flush or "
                        f"FUA, the others every {WRITES_PER_POINT} writes; "
                        f"{checker.states - states} distinct states mounted), "
                        f"{len(bad)} inconsistent ({secs:.0f} s)")
                    # Past the start mark's own point.
                    results.append((f"powercut_{phase}_replay_points", points > 1,
                                    "no flush or FUA point in the phase"))
                    results.append((f"powercut_{phase}_consistent", not bad,
                                    f"{len(bad)} of {points} points, first: "
                                    + (bad[0] if bad else "")))
                    phase = None
                continue
            checking = phase in manifests
            # A write with a preflush: the power may fail after the
            # flush, before the write (a commit block, say).
            if checking and flags & FLUSH and payload:
                points += 1
                flushes += 1
                why = checker.check(phase, manifests[phase])
                if why:
                    bad.append(f"before entry {i}: {why}")
            if offset + length > disk_bytes:
                raise ValueError(f"{log_path}: entry {i} past the end of the disk")
            if payload and not flags & DISCARD:
                image[offset:offset + length] = payload
                checker.written()
            elif flags & DISCARD:
                # What a discard leaves is undefined; zeroes are one case.
                image[offset:offset + length] = bytes(length)
                checker.written()
            if not checking:
                continue
            nth_write = False
            if payload and not flags & DISCARD:
                writes += 1
                nth_write = writes % WRITES_PER_POINT == 0
            if flags & (FLUSH | FUA) or nth_write:
                if flags & (FLUSH | FUA):
                    flushes += 1
                points += 1
                why = checker.check(phase, manifests[phase])
                if why:
                    bad.append(f"entry {i}: {why}")
        if phase:
            results.append((f"powercut_{phase}_ended", False, "no end mark in the log"))
        say(f"powercut: replay took {time.monotonic() - start:.0f} s")
        if final:
            with open(final, "rb") as f:
                disk = f.read()
            differ = next((o for o in range(0, disk_bytes, 4096)
                           if disk[o:o + 4096] != image[o:o + 4096]), None)
            results.append(("powercut_replay_is_the_disk", differ is None,
                            f"the replayed disk differs from the logged one at byte {differ}"))
    for phase in manifests:
        if phase not in seen:
            results.append((f"powercut_{phase}_logged", False, "no start mark in the log"))
    return results
