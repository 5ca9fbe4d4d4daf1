"""A 7200 rpm hard disk's service time, request by request: the model
behind make bench's seek-aware disk (tests/nbd_disk.py serves it to QEMU
over NBD; Documentation/ext4-defrag/benchmark.rst gives every parameter
with its source and says what the model does not see).

One request at a time (one actuator). A read that the drive's read-ahead
cache holds costs the command overhead and the transfer at the media rate
(no seek, no rotation: the head was streaming there; the media rate, not
the interface's, because a host reading at queue depth 1 leaves the drive
no idle time to have read ahead for free). Any other read costs the overhead, a seek from where the head
is (square root of the distance for short seeks, linear beyond: Ruemmler
and Wilkes, "An introduction to disk drive modeling", IEEE Computer 1994),
the rotational latency (half a revolution, its expected value, unless the
read continues exactly where the media access before it ended) and the
transfer at the media rate of its zone (outer tracks faster). After each
read the drive reads ahead up to a segment's length past its end into one
of a few segments (least recently used replaced). No wall clock enters
the model, so its figures do not depend on how fast the guest runs.

Writes go into the write cache (overhead and interface transfer); a flush,
a FUA write or a full cache writes the dirty data to the media in
ascending order from the head, each run a positioning (seek and
rotation, none for the run that continues the last) and its transfer.

The image the guest sees is a partition of a larger disk: distances are
fractions of the whole disk's stroke.
"""

import bisect
import math
from dataclasses import dataclass, field

MIB = 1 << 20


@dataclass
class Params:
    disk_bytes: int = 2_000_000_000_000       # a 2 TB disk
    partition_offset: int = MIB              # the image is its first partition
    cylinders: int = 250_000                 # tracks per surface over the stroke
    rpm: int = 7200
    seek_track_ms: float = 1.9               # one cylinder
    seek_avg_ms: float = 8.5                 # a third of the stroke
    seek_full_ms: float = 16.7               # the whole stroke
    overhead_ms: float = 0.1                 # per command (controller)
    media_outer_mbs: float = 210.0           # MB/s at the outer edge
    media_inner_mbs: float = 105.0           # MB/s at the inner edge
    interface_mbs: float = 550.0             # SATA 6 Gb/s, as the host sees it
    segments: int = 4                        # read-ahead cache segments
    segment_bytes: int = MIB                 # read ahead past each read
    write_cache_bytes: int = 16 * MIB

    @property
    def revolution_ms(self):
        return 60_000.0 / self.rpm


@dataclass
class Counters:
    """What the disk did, summed since it started; a phase's figures are
    the differences of two readings."""
    reads: int = 0
    writes: int = 0
    flushes: int = 0
    read_bytes: int = 0
    written_bytes: int = 0
    read_ms: float = 0.0         # service time of reads
    write_ms: float = 0.0        # of writes, flushes and destaging
    seeks: int = 0               # media accesses that moved the head
    seek_cylinders: int = 0      # the distance they moved it, summed
    ra_hits: int = 0             # reads served whole from the read-ahead cache
    # Reads by what the filesystem keeps where they start (see Disk.regions;
    # the rest is file data, extent-tree blocks and the journal): inode
    # tables, directory blocks, bitmaps and group descriptors.
    itable_reads: int = 0
    itable_ms: float = 0.0
    dir_reads: int = 0
    dir_ms: float = 0.0
    bitmap_reads: int = 0
    bitmap_ms: float = 0.0
    data_seeks: int = 0          # seeks of reads that start in none of those

    def line(self):
        return " ".join(f"{k}={round(v, 3) if isinstance(v, float) else v}"
                        for k, v in vars(self).items())


@dataclass
class Disk:
    p: Params = field(default_factory=Params)
    head: int = 0                # byte on the whole disk where the last media access ended
    segments: list = field(default_factory=list)   # [start, end), most recent last
    dirty: list = field(default_factory=list)      # sorted, disjoint [start, end)
    c: Counters = field(default_factory=Counters)
    # What the filesystem keeps where, as the guest last said (set_regions):
    # sorted, disjoint (start, end, kind) in partition bytes.
    regions: list = field(default_factory=list)

    # -- the mechanics -------------------------------------------------

    def cylinder(self, pos):
        return min(self.p.cylinders - 1, pos * self.p.cylinders // self.p.disk_bytes)

    def seek_ms(self, distance):
        """Seek time over DISTANCE cylinders: a square-root curve from one
        cylinder to the knee at a third of the stroke (the datasheet's
        average seek), linear from there to the full stroke."""
        if distance <= 0:
            return 0.0
        p = self.p
        knee = p.cylinders / 3
        if distance <= knee:
            return p.seek_track_ms + (p.seek_avg_ms - p.seek_track_ms) * math.sqrt(
                (distance - 1) / (knee - 1))
        return p.seek_avg_ms + (p.seek_full_ms - p.seek_avg_ms) * (
            (distance - knee) / (p.cylinders - knee))

    def media_ms(self, pos, length):
        """Transfer at the media rate of the zone at POS (linear from the
        outer to the inner edge)."""
        x = pos / self.p.disk_bytes
        mbs = self.p.media_outer_mbs - (self.p.media_outer_mbs - self.p.media_inner_mbs) * x
        return length / (mbs * 1e3)

    def interface_ms(self, length):
        return length / (self.p.interface_mbs * 1e3)

    def position_ms(self, pos):
        """Seek and rotation from the head to POS, counted as a seek."""
        if pos == self.head:
            return 0.0
        d = abs(self.cylinder(pos) - self.cylinder(self.head))
        self.c.seeks += 1
        self.c.seek_cylinders += d
        return self.seek_ms(d) + self.p.revolution_ms / 2

    # -- the caches ----------------------------------------------------

    def cached(self, start, end):
        """The segment holding all of [start, end), else None."""
        for i in range(len(self.segments) - 1, -1, -1):
            s, e = self.segments[i]
            if s <= start and end <= e:
                return i
        return None

    def remember(self, start, end):
        self.segments = [(s, e) for s, e in self.segments if e <= start or s >= end]
        self.segments.append((start, end))
        del self.segments[:-self.p.segments]

    def forget_reads(self, start, end):
        self.segments = [(s, e) for s, e in self.segments if e <= start or s >= end]

    def add_dirty(self, start, end):
        runs = self.dirty
        i = bisect.bisect_left(runs, (start, start))
        if i > 0 and runs[i - 1][1] >= start:
            i -= 1
        j = i
        while j < len(runs) and runs[j][0] <= end:
            start, end = min(start, runs[j][0]), max(end, runs[j][1])
            j += 1
        runs[i:j] = [(start, end)]

    def destage(self):
        """Writes the dirty runs to the media, ascending from the head
        (then wrapping around), and returns the time it took."""
        if not self.dirty:
            return 0.0
        i = bisect.bisect_left(self.dirty, (self.head, self.head))
        order = self.dirty[i:] + self.dirty[:i]
        t = 0.0
        for s, e in order:
            t += self.position_ms(s) + self.media_ms(s, e - s)
            self.head = e
        self.dirty = []
        return t

    def dirty_bytes(self):
        return sum(e - s for s, e in self.dirty)

    # -- requests (offsets in the partition) ---------------------------

    def read(self, offset, length):
        start = self.p.partition_offset + offset
        end = start + length
        t = self.p.overhead_ms
        seeks = self.c.seeks
        i = self.cached(start, end)
        if i is not None or self.covered_by_dirty(start, end):
            t += max(self.interface_ms(length), self.media_ms(start, length))
            self.c.ra_hits += 1
            if i is not None:
                self.segments.append(self.segments.pop(i))
        else:
            t += self.position_ms(start) + self.media_ms(start, length)
            self.head = min(end + self.p.segment_bytes, self.p.disk_bytes)
            self.remember(start, self.head)
        self.c.reads += 1
        self.c.read_bytes += length
        self.c.read_ms += t
        kind = self.kind(offset)
        if kind:
            setattr(self.c, f"{kind}_reads", getattr(self.c, f"{kind}_reads") + 1)
            setattr(self.c, f"{kind}_ms", getattr(self.c, f"{kind}_ms") + t)
        else:
            self.c.data_seeks += self.c.seeks - seeks
        return t

    # -- what lies where (for the counters only; it changes no cost) ----

    KINDS = ("itable", "dir", "bitmap")

    def set_regions(self, regions):
        """Replaces the map of the filesystem's metadata: (start, length,
        kind) in partition bytes, kind one of KINDS. Where regions overlap
        the one that starts first keeps the bytes."""
        out = []
        for start, length, kind in sorted(regions):
            if kind not in self.KINDS:
                raise ValueError(f"unknown region kind {kind}")
            end = start + length
            if out:
                start = max(start, out[-1][1])
            if start < end:
                out.append((start, end, kind))
        self.regions = out

    def kind(self, offset):
        """The kind of region OFFSET (partition bytes) lies in, else None."""
        i = bisect.bisect_right(self.regions, (offset, float("inf"), "")) - 1
        if i >= 0 and self.regions[i][0] <= offset < self.regions[i][1]:
            return self.regions[i][2]
        return None

    def covered_by_dirty(self, start, end):
        return any(s <= start and end <= e for s, e in self.dirty)

    def write(self, offset, length, fua=False):
        start = self.p.partition_offset + offset
        end = start + length
        t = self.p.overhead_ms + self.interface_ms(length)
        self.forget_reads(start, end)
        self.add_dirty(start, end)
        if fua or self.dirty_bytes() > self.p.write_cache_bytes:
            t += self.destage()
        self.c.writes += 1
        self.c.written_bytes += length
        self.c.write_ms += t
        return t

    def flush(self):
        t = self.p.overhead_ms + self.destage()
        self.c.flushes += 1
        self.c.write_ms += t
        return t

    def drop_cache(self):
        """Forgets what the read-ahead cache holds (a cold read follows);
        dirty data stays until it is written."""
        self.segments = []


def calibration(p=None):
    """The model's figures next to a 7200 rpm drive's datasheet values:
    [(what, model, datasheet)], each measured on a fresh disk by feeding
    it requests."""
    import random
    p = p or Params()
    rows = []

    def fresh():
        return Disk(p)

    rng = random.Random(1)
    d = fresh()
    n = 4000
    span = p.disk_bytes - p.partition_offset
    for _ in range(n):
        d.read(rng.randrange(0, span // 4096) * 4096, 4096)
    rows.append(("4 KiB random reads over the disk, queue depth 1 (ms each)",
                 round(d.c.read_ms / n, 2), "12-13"))
    d = fresh()
    total = 256 * MIB
    for off in range(0, total, MIB):
        d.read(off, MIB)
    rows.append(("1 MiB sequential reads, outer zone (MB/s)",
                 round(total / (d.c.read_ms * 1e3), 0), "150-220"))
    d = fresh()
    rows.append(("one-cylinder seek (ms)", round(d.seek_ms(1), 2), "1-2"))
    rows.append(("average seek, a third of the stroke (ms)",
                 round(d.seek_ms(p.cylinders / 3), 2), "8.5"))
    rows.append(("full-stroke seek (ms)", round(d.seek_ms(p.cylinders - 1), 2), "16-17"))
    rows.append(("rotational latency, half a revolution (ms)",
                 round(p.revolution_ms / 2, 2), "4.17"))
    d = fresh()
    d.read(0, 4096)
    hit = d.read(4096, 4096)
    rows.append(("4 KiB read inside the read-ahead window (ms)", round(hit, 3), "< 0.2"))
    d = fresh()
    d.read(0, 4096)
    rows.append(("4 KiB read 50 MiB further on (ms)", round(d.read(50 * MIB, 4096), 2),
                 "6-7 (a short seek, half a turn)"))
    return rows
