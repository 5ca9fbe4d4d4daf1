"""Host checks of the seek-aware disk model (tests/diskmodel.py): its
calibration stays inside a 7200 rpm drive's datasheet ranges, and the
mechanics charge what they claim to (python3 -m unittest, from
scripts/check-host.sh)."""

import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diskmodel  # noqa: E402
from diskmodel import MIB, Disk, Params  # noqa: E402


class Calibration(unittest.TestCase):
    def test_datasheet_ranges(self):
        rows = {what.split(" (")[0]: model for what, model, _ in diskmodel.calibration()}
        self.assertTrue(12.0 <= rows["4 KiB random reads over the disk, queue depth 1"] <= 13.5)
        self.assertTrue(150 <= rows["1 MiB sequential reads, outer zone"] <= 220)
        self.assertAlmostEqual(rows["full-stroke seek"], 16.7, places=2)
        self.assertAlmostEqual(rows["rotational latency, half a revolution"], 4.17, places=2)
        self.assertLess(rows["4 KiB read inside the read-ahead window"], 0.2)

    def test_seek_curve_grows_with_distance(self):
        d = Disk()
        times = [d.seek_ms(x) for x in (1, 10, 100, 1000, 10_000, 100_000, 249_999)]
        self.assertEqual(times, sorted(times))
        self.assertEqual(d.seek_ms(0), 0.0)
        # Square root below the knee: four times the distance, about twice
        # the extra time over one cylinder.
        extra = [d.seek_ms(x) - d.p.seek_track_ms for x in (1001, 4001)]
        self.assertAlmostEqual(extra[1] / extra[0], 2.0, delta=0.05)


class Mechanics(unittest.TestCase):
    def test_sequential_reads_do_not_seek(self):
        d = Disk()
        for off in range(0, 64 * MIB, 128 << 10):
            d.read(off, 128 << 10)
        self.assertEqual(d.c.seeks, 1)  # the first only
        self.assertGreater(d.c.ra_hits, 0)

    def test_read_ahead_hit_and_drop(self):
        d = Disk()
        d.read(0, 4096)
        self.assertLess(d.read(8192, 4096), 0.2)
        d.drop_cache()
        self.assertGreater(d.read(16384, 4096), 4.0)  # half a turn at least

    def test_scattered_set_costs_more_than_packed(self):
        rng = random.Random(3)
        scattered, packed = Disk(), Disk()
        offs = [rng.randrange(0, 512 * MIB // 4096) * 4096 for _ in range(300)]
        for off in offs:
            scattered.read(off, 4096)
        for i in range(300):
            packed.read(i * 4096, 4096)
        self.assertGreater(scattered.c.read_ms, 20 * packed.c.read_ms)
        self.assertEqual(scattered.c.reads, packed.c.reads)

    def test_writes_are_cached_until_a_flush(self):
        d = Disk()
        t = d.write(100 * MIB, 4096)
        self.assertLess(t, 0.2)
        self.assertEqual(d.c.seeks, 0)
        d.write(0, 4096)
        d.flush()
        self.assertEqual(d.dirty, [])
        self.assertEqual(d.c.seeks, 2)
        # A FUA write reaches the media before it completes.
        self.assertGreater(d.write(300 * MIB, 4096, fua=True), 4.0)

    def test_read_of_just_written_data_comes_from_the_cache(self):
        d = Disk()
        d.write(50 * MIB, 8192)
        self.assertLess(d.read(50 * MIB, 4096), 0.2)

    def test_partition_offset_moves_the_zone(self):
        inner = Disk(Params(partition_offset=1_900_000_000_000))
        outer = Disk()
        self.assertGreater(inner.media_ms(inner.p.partition_offset, MIB),
                           outer.media_ms(outer.p.partition_offset, MIB))


class Regions(unittest.TestCase):
    def test_reads_are_counted_by_the_kind_where_they_start(self):
        d = Disk()
        d.set_regions([(MIB, 4096, "itable"), (0, 8192, "bitmap"), (4096, 8192, "dir")])
        self.assertEqual(d.regions, [(0, 8192, "bitmap"), (8192, 12288, "dir"),
                                     (MIB, MIB + 4096, "itable")])
        before = d.read(MIB, 4096)
        d.read(8192, 4096)
        d.read(3 * MIB, 4096)
        self.assertEqual((d.c.itable_reads, d.c.dir_reads, d.c.bitmap_reads), (1, 1, 0))
        # The data read far from both repositioned; the metadata reads'
        # seeks are not the data's.
        self.assertEqual(d.c.data_seeks, 1)
        self.assertEqual(d.c.seeks, 3)
        self.assertAlmostEqual(d.c.itable_ms, before)
        self.assertLess(d.c.itable_ms + d.c.dir_ms, d.c.read_ms)
        with self.assertRaises(ValueError):
            d.set_regions([(0, 1, "data")])

    def test_a_map_changes_no_cost(self):
        rng = random.Random(5)
        offs = [rng.randrange(0, 64 * MIB // 4096) * 4096 for _ in range(200)]
        plain, mapped = Disk(), Disk()
        mapped.set_regions([(o, 4096, "dir") for o in offs[::3]])
        for off in offs:
            plain.read(off, 4096)
            mapped.read(off, 4096)
        self.assertEqual(plain.c.read_ms, mapped.c.read_ms)
        dirs = set(offs[::3])
        self.assertEqual(mapped.c.dir_reads, sum(1 for o in offs if o in dirs))
        self.assertGreater(mapped.c.dir_reads, 0)


class Plugin(unittest.TestCase):
    """The nbdkit plugin's control commands, with a stand-in for the
    nbdkit module (it exists only inside nbdkit)."""

    def setUp(self):
        import types
        sys.modules.setdefault("nbdkit", types.SimpleNamespace(
            THREAD_MODEL_SERIALIZE_ALL_REQUESTS=0, FUA_NATIVE=2, FLAG_FUA=4))
        import nbd_disk
        self.plugin = nbd_disk
        self.h = types.SimpleNamespace(disk=Disk(), regions=[])

    def test_map_in_blocks_then_more_of_it(self):
        self.plugin.control(self.h, "map 4096\nitable 10 2\ndir 100 1\n")
        self.plugin.control(self.h, "map+ 4096\nbitmap 1 1\n\n\n")
        self.assertEqual(self.h.disk.regions, [(4096, 8192, "bitmap"),
                                               (40960, 49152, "itable"),
                                               (409600, 413696, "dir")])
        self.plugin.control(self.h, "map 1024\ndir 4 4\n")
        self.assertEqual(self.h.disk.regions, [(4096, 8192, "dir")])

    def test_drop_empty_and_unknown(self):
        self.h.disk.read(0, 4096)
        self.plugin.control(self.h, "drop")
        self.assertEqual(self.h.disk.segments, [])
        self.plugin.control(self.h, "")
        with self.assertRaises(RuntimeError):
            self.plugin.control(self.h, "frobnicate")

    def test_restore_copies_the_master_and_resets_the_drive(self):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            img, master = os.path.join(tmp, "img"), os.path.join(tmp, "master")
            want = random.Random(3).randbytes(3 * MIB + 512)
            with open(master, "wb") as f:
                f.write(want)
            with open(img, "wb") as f:
                f.write(b"x" * (4 * MIB))
            fd = os.open(img, os.O_RDWR)
            try:
                h = self.h
                h.fd, h.size = fd, 4 * MIB
                h.disk.read(0, 4096)
                h.disk.write(MIB, 4096)
                self.plugin.master = None
                with self.assertRaises(RuntimeError):
                    self.plugin.control(h, "restore")
                self.plugin.master = master
                self.plugin.control(h, "restore")
                reads = h.disk.c.reads
                with open(img, "rb") as f:
                    got = f.read()
                # The master's bytes, the image's tail as it was.
                self.assertEqual(got[:len(want)], want)
                self.assertEqual(got[len(want):], b"x" * (4 * MIB - len(want)))
                self.assertEqual((h.disk.segments, h.disk.dirty), ([], []))
                self.assertEqual(h.disk.head, h.disk.p.partition_offset + len(want))
                self.assertEqual(h.disk.c.reads, reads)
                h.size = MIB
                with self.assertRaises(RuntimeError):
                    self.plugin.control(h, "restore")
            finally:
                os.close(fd)
                self.plugin.master = None

    def test_sleep_on_and_off(self):
        try:
            self.plugin.control(self.h, "sleep 0")
            self.assertFalse(self.plugin.sleep)
            self.plugin.control(self.h, "sleep 1")
            self.assertTrue(self.plugin.sleep)
        finally:
            self.plugin.sleep = True


if __name__ == "__main__":
    unittest.main()
