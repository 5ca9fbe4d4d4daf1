#!/usr/bin/env python3
"""make bench: what defragmentation buys and what it costs, in numbers.

Three parts:
  * the guest boot (tests/guest/bench-read.sh): one seeded fragmented image,
    every variant (none, e2fsprogs' e4defrag, e4defrag -r and per-file with
    each backend, the ideal) on the seek-aware hard disk model
    (tests/diskmodel.py, served by nbdkit: tests/nbd_disk.py) and on a
    virtio disk throttled like a SATA SSD; cold reads of the set in its read order
    and of the big files, defragmentation cost against the copy bound, the
    move-unit sweep, and the module's time against a file's extents;
  * on the host (stock kernel, EXT4_IOC_MOVE_EXT): the tool's time and peak
    RSS against the number of files, for -c, per-file and -r;
  * the report: build/bench/report.md, results.json and plots (matplotlib).
Exit status 1 when a run failed, data changed or e2fsck complained; the
numbers themselves pass or fail nothing.
"""

import argparse
import concurrent.futures
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

import agetree
import bench_report
import qemu
from bench_report import START_VARIANTS, TREE_VARIANTS, VARIANTS

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What the disks stand for. The hard disk is the seek-aware model
# (tests/diskmodel.py: seek distance, rotation, zones, read-ahead and write
# cache). The SSD is QEMU block throttling, where every request costs
# 1/IOPS of a second whatever its size or distance and no more than BPS
# bytes pass per second: an SSD has no seek, so that is its model.
PROFILES = {
    "hdd": {"model": "seek-aware", "what": "7200 rpm hard disk, 2 TB (seek-aware model)"},
    "ssd": {"iops": 20_000, "bps": 500_000_000, "what": "SATA SSD (throttled)"},
}
PLUGIN = os.path.join(TOP, "tests", "nbd_disk.py")
MIB = 1 << 20


def start_model(image, sock, sleep=True, master=None):
    """nbdkit serving IMAGE as the seek-aware disk on the Unix socket
    SOCK (charging the model's time by sleeping, unless not SLEEP; the
    guest's restores copy MASTER over IMAGE); returns the process once
    the socket is there."""
    if os.path.exists(sock):
        os.unlink(sock)
    proc = subprocess.Popen(["nbdkit", "--foreground", "--exit-with-parent", "--unix", sock,
                             "python", PLUGIN, f"file={image}", f"sleep={int(sleep)}",
                             *([f"master={master}"] if master else [])])
    for _ in range(100):
        if os.path.exists(sock):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"nbdkit did not start for {image}")
def serving_cost(tmp, count=2000):
    """What serving a request costs on top of the model's time: nbdkit's
    Python plugin with sleep=0 (the model counts, nothing waits), read by
    qemu-img bench at queue depth 1 over the same NBD socket QEMU uses.
    It enters wall time only: the model's time is computed, not timed.
    [(what, ms per request)]."""
    img = qemu.new_disk(tmp, 64, "cost.img")
    sock = os.path.join(tmp, "cost.sock")
    proc = start_model(img, sock, sleep=False)
    rows = []
    try:
        for what, size, step in (("4 KiB reads, 1 MiB apart", 4096, MIB),
                                 ("4 KiB reads, sequential", 4096, 4096),
                                 ("1 MiB reads, sequential", MIB, MIB)):
            n = count if size == 4096 else count // 20
            out = subprocess.run(["qemu-img", "bench", "-f", "raw", "-c", str(n), "-d", "1",
                                  "-s", str(size), "-S", str(step),
                                  f"nbd+unix:///?socket={sock}"], check=True,
                                 capture_output=True, text=True).stdout
            secs = float(re.search(r"Run completed in ([0-9.]+) seconds", out).group(1))
            rows.append((what, round(secs * 1000 / n, 3)))
    finally:
        proc.terminate()
        proc.wait()
    return rows


SIZES = {
    # seed, set files, big files, MiB each, fs MiB, runs,
    # growth extents (guest), growth blocks (1 KiB), growth files (host)
    "full": SimpleNamespace(seed=12, files=300, bigs=2, big_mib=32, fs_mib=512, runs=3,
                            extents=[10, 1000, 100000], blocks=100000,
                            host_files=[1000, 10000, 100000],
                            tree=SimpleNamespace(package="Django", releases=150, mib=512,
                                                 runs=1)),
    "quick": SimpleNamespace(seed=12, files=60, bigs=2, big_mib=4, fs_mib=128, runs=1,
                             extents=[10, 100, 1000], blocks=2000,
                             host_files=[100, 1000], tree=None),
}


class BenchRun(qemu.Run):
    """The guest's console, with its E4D-BENCH records kept and echoed."""

    def __init__(self):
        super().__init__()
        self.records = []  # (kind, {key: value}, text)
        self.errors = []
        self.ended = False

    def feed(self, line):
        if not line.startswith("E4D-BENCH: "):
            super().feed(line)
            return
        kind, _, rest = line[len("E4D-BENCH: "):].partition(" ")
        if kind == "error":
            self.errors.append(rest)
            print(f"bench: ERROR {rest}", flush=True)
            return
        if kind == "end":
            self.ended = True
            return
        fields = {}
        for tok in rest.split():
            k, eq, v = tok.partition("=")
            if eq:
                fields[k] = v
        self.records.append((kind, fields, rest))
        if kind not in ("map",):
            print(f"bench: {kind} {rest}", flush=True)


def guest(args, size, tmp):
    """The guest boot; returns its BenchRun."""
    p = PROFILES["ssd"]
    master = qemu.new_disk(tmp, size.fs_mib, "master.img")
    disks = [f"{qemu.new_disk(tmp, size.fs_mib, 'ssd.img')},throttling.iops-total={p['iops']},"
             f"throttling.bps-total={p['bps']}", master]
    disks += growth_images(args, size, tmp)
    params = ",".join(str(x) for x in (size.seed, size.files, size.bigs, size.big_mib,
                                      size.fs_mib, size.runs,
                                      ":".join(map(str, size.extents)), size.blocks))
    return boot_on_model(args, "guest", qemu.new_disk(tmp, size.fs_mib, "hdd.img"), disks,
                         f"e4d.bench=read e4d.params={params}", master)


# The guest writes the model's control MiB (tests/nbd_disk.py) while the
# filesystem on the disk is mounted: the test kernel refuses writes to a
# mounted block device (CONFIG_BLK_DEV_WRITE_MOUNTED is off) unless told.
MODEL_CMDLINE = "bdev_allow_write_mounted=1"


def boot_on_model(args, what, model_image, disks, cmdline, master):
    """A bench boot whose first disk (vda) is MODEL_IMAGE served by the
    disk model (restored from MASTER), DISKS after it; returns (BenchRun,
    seconds). Its console goes to console-WHAT.log in the output
    directory."""
    sock = model_image + ".sock"
    model = start_model(model_image, sock, master=master)
    run = BenchRun()
    log = open(os.path.join(args.out, f"console-{what}.log"), "w")
    qargs = SimpleNamespace(accel=args.accel, kernel=args.kernel, initrd=args.initrd,
                            timeout=args.timeout, log_file=log)
    try:
        done, secs = qemu.boot(qargs, "bench", [f"nbd+unix:///?socket={sock}", *disks], run,
                               f"{MODEL_CMDLINE} {cmdline}")
    finally:
        model.terminate()
        model.wait()
        log.close()
    print(f"bench: {what} boot ran {secs:.0f} s", flush=True)
    if not done or not run.ended:
        run.errors.append(run.crash or f"the {what} boot did not finish (see the console log)")
    return run, secs


def aged_image(tree, tmp):
    """A copy in TMP of the image aged by TREE's releases (tests/agetree.py),
    made once and cached, keyed by what makes it; (path, what it holds)."""
    import hashlib
    import shutil
    with open(agetree.__file__, "rb") as f:
        key = hashlib.sha256(f.read() + repr(vars(tree)).encode()).hexdigest()[:12]
    cached = os.path.join(os.path.dirname(agetree.CACHE), f"aged-{key}.img")
    about = cached + ".json"
    if not os.path.exists(about):
        info = agetree.age(cached + ".new", tree.package, tree.releases, tree.mib,
                           say=lambda m: print(f"bench: {m}", flush=True))
        os.rename(cached + ".new", cached)
        with open(about, "w") as f:
            json.dump(info, f)
    with open(about) as f:
        info = json.load(f)
    img = os.path.join(tmp, "aged.img")
    shutil.copyfile(cached, img)
    return img, info


def tree_guest(args, tree, tmp):
    """The aged tree's boot (tests/guest/bench-tree.sh) on the seek-aware
    disk; returns (BenchRun, seconds, what the tree holds)."""
    master, info = aged_image(tree, tmp)
    run, secs = boot_on_model(args, "tree", qemu.new_disk(tmp, tree.mib, "tree-hdd.img"),
                              [f"{master},readonly=on"],
                              f"e4d.bench=tree e4d.params={tree.mib},{tree.runs}", master)
    want = [("tread", v, w) for v in TREE_VARIANTS if v != "ideal" for w in ("grep", "tar", "du")]
    want.append(("tread", "ideal", "ideal"))
    want += [("sread", v, None) for v in START_VARIANTS]
    have = {(k, f.get("variant"), f.get("what")) for k, f, _ in run.records}
    run.errors += [f"no {k} record of {v} {w or ''}" for k, v, w in want
                   if (k, v, w) not in have]
    return run, secs, info


def missing(records, size):
    """What a complete guest run reports but this one did not: so that a
    benchmark that silently lost a part fails."""
    have = {(k, f.get("profile"), f.get("variant"), f.get("what")) for k, f, _ in records}
    want = []
    for p in PROFILES:
        for v in VARIANTS:
            want += [("read", p, v, w) for w in ("set", "big")]
            want.append(("layout", p, v, None))
            if v != "ideal":
                want.append(("defrag", p, v, None))
        want += [("copy", p, None, w) for w in ("set", "big")]
    want += [("defrag", "hdd", f"unit-{u}", None) for u in (0, 4, 8)]
    out = [f"no {' '.join(x for x in w if x)} record" for w in want if w not in have]
    if not any(k == "device" for k, _, _ in records):
        out.append("no record of the time-limited device runs")
    records_of = {f.get("profile") for k, f, _ in records if k == "record"}
    out += [f"no record of the {p} boot" for p in PROFILES if p not in records_of]
    maps = {f["variant"] for k, f, _ in records if k == "map"}
    out += [f"no block map of {v}" for v in ("none", "e2fsprogs", "r-module", "r-move-ext")
            if v not in maps]
    growth = sum(1 for k, _, _ in records if k == "growth")
    if growth != len(size.extents):
        out.append(f"{growth} growth records, not {len(size.extents)}")
    return out


def growth_images(args, size, tmp):
    """The module growth runs' images, one per extent count, made here
    (natively; under TCG the 100,000-extent file alone takes minutes):
    1 KiB blocks, one file of size.blocks blocks in about that many
    extents (fraggen fragfile), and a free run that holds it. The
    filesystem has two fillers of half the space each, one with the
    file's holes one hole apart (twice the file, and spare holes)."""
    fraggen = args.fraggen
    out = []
    for e in size.extents:
        img = qemu.new_disk(tmp, max(64, size.blocks * 6 // 1024), f"growth-{e}.img")
        mnt = os.path.join(tmp, f"growth-{e}")
        os.mkdir(mnt)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-b", "1024", "-E", "nodiscard",
                        img], check=True)
        subprocess.run(["mount", "-o", "loop,nodelalloc", img, mnt], check=True)
        try:
            os.mkdir(os.path.join(mnt, "g"))
            got = subprocess.run([fraggen, "fragfile", os.path.join(mnt, "g", "frag"), str(e),
                                  str(size.blocks)], check=True, capture_output=True,
                                 text=True).stdout.strip()
            print(f"bench: growth image: {got} extents asked {e}", flush=True)
        finally:
            subprocess.run(["umount", mnt], check=True)
        out.append(img)
    return out


def timed(cmd):
    """Runs CMD under GNU time; returns (seconds, peak RSS in KiB, exit
    status). GNU time, not wait4 here: a child forked from this Python
    counts Python's pages in its peak RSS until it execs."""
    t0 = time.monotonic()
    with tempfile.NamedTemporaryFile("r") as rss:
        proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name, *cmd],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        secs = time.monotonic() - t0
        peak = int(rss.read().split()[-1])
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[-300:]
        print(f"bench: {' '.join(cmd)}: exit {proc.returncode}: {err}")
    return secs, peak, proc.returncode


def host_growth(size, tool):
    """The tool's time and peak RSS against the number of files, on a
    loop-mounted ext4 in /dev/shm, with the stock backend. Each count gets
    a fresh filesystem of files of 1-4 blocks written in a shuffled order
    (so that path order is not disk order and -r has work); -c, then
    per-file, then -r run on it in turn."""
    out = []
    rng = random.Random(size.seed)
    for n in size.host_files:
        with tempfile.TemporaryDirectory(prefix="e4d-bench-", dir="/dev/shm") as tmp:
            img, mnt = os.path.join(tmp, "fs.img"), os.path.join(tmp, "mnt")
            os.mkdir(mnt)
            mib = max(128, n * 40 // 1024)
            with open(img, "wb") as f:  # mkfs would say it creates it
                f.truncate(mib << 20)
            subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-b", "4096",
                            "-N", str(n + 4096), img, f"{mib}M"], check=True)
            subprocess.run(["mount", "-o", "loop", img, mnt], check=True)
            try:
                names = [f"d{i // 1000:03}/f{i:06}" for i in range(n)]
                for d in sorted({x.split("/")[0] for x in names}):
                    os.mkdir(os.path.join(mnt, d))
                rng.shuffle(names)
                for name in names:
                    with open(os.path.join(mnt, name), "wb") as f:
                        f.write(rng.randbytes(4096 * rng.randint(1, 4) - rng.randint(0, 4095)))
                subprocess.run(["sync", "-f", mnt], check=True)
                row = {"files": n}
                for key, flags in (("check", ["-c"]), ("per-file", []), ("colocate", ["-r"])):
                    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=True)
                    secs, rss, rc = timed([tool, "--backend", "move-ext", *flags, mnt])
                    row[key] = {"secs": round(secs, 3), "rss_kib": rss, "rc": rc}
                print(f"bench: host growth {json.dumps(row)}", flush=True)
                out.append(row)
            finally:
                for _ in range(10):
                    if subprocess.run(["umount", mnt]).returncode == 0:
                        break
                    time.sleep(1)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--tool", required=True, help="the e4defrag binary (host growth runs)")
    ap.add_argument("--fraggen", required=True,
                    help="the test drivers' fraggen (the growth images)")
    ap.add_argument("--out", default=os.path.join(TOP, "build", "bench"))
    ap.add_argument("--quick", action="store_true",
                    help="one run each on a smaller image (make bench-quick)")
    ap.add_argument("--only", choices=["guest", "host", "tree"], help="run one part only")
    ap.add_argument("--accel", default=os.environ.get("E4D_ACCEL", "tcg"))
    ap.add_argument("--timeout", type=int, default=2400, help="seconds for the guest boot")
    args = ap.parse_args()
    size = SIZES["quick" if args.quick else "full"]
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    params = {k: vars(v) if isinstance(v, SimpleNamespace) else v for k, v in vars(size).items()}
    results = {"size": "quick" if args.quick else "full", "params": params,
               "profiles": PROFILES, "records": [], "host_growth": [], "errors": [],
               "tree": None}
    with tempfile.TemporaryDirectory(prefix="e4d-bench-") as tmp:
        results["serving_cost"] = serving_cost(tmp)
    # The tree's boot runs beside the rest: both guests spend most of their
    # time waiting for the model's modelled service time, which no wall
    # clock enters (tests/diskmodel.py), so their model figures are the
    # same side by side; their wall times share the 2 cores.
    def tree_part():
        with tempfile.TemporaryDirectory(prefix="e4d-bench-") as tmp:
            return tree_guest(args, size.tree, tmp)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    tree_job = (pool.submit(tree_part)
                if args.only in (None, "tree") and size.tree else None)
    if args.only in (None, "host"):
        results["host_growth"] = host_growth(size, args.tool)
        results["errors"] += [f"host growth {r['files']} files: {k} exit {v['rc']}"
                              for r in results["host_growth"] for k, v in r.items()
                              if isinstance(v, dict) and v["rc"] != 0]
    if args.only in (None, "guest"):
        with tempfile.TemporaryDirectory(prefix="e4d-bench-") as tmp:
            run, secs = guest(args, size, tmp)
        results["guest_secs"] = round(secs, 1)
        results["records"] = run.records
        results["errors"] += run.errors + missing(run.records, size)
    if tree_job:
        run, secs, info = tree_job.result()
        results["tree"] = {"secs": round(secs, 1), "image": info, "records": run.records}
        results["errors"] += run.errors
    pool.shutdown()
    results["total_secs"] = round(time.monotonic() - started, 1)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    table = bench_report.write(results, args.out)
    print(table)
    for e in results["errors"]:
        print(f"bench: FAILED: {e}")
    print(f"bench: report in {os.path.join(args.out, 'report.md')}, "
          f"{results['total_secs']:.0f} s in all")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
