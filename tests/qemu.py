#!/usr/bin/env python3
"""Boot the patched test kernel in QEMU and turn what the guest reports into
a test result.

The guest (tests/guest/init) runs the scenario or demo script and prints
  E4D-RESULT: PASS|FAIL|SKIP name[: reason]
                                         one per scenario (SKIP: the guest
                                         lacks what it needs, and says what)
  KTAP: <line>                           the module's KUnit suite output
  E4D-START                              when init starts (demo output begins)
  E4D-DONE                               when it finished without crashing
This runner counts the scenarios and the KUnit cases, fails on a crash, a
time-out or a missing KTAP report, and ends with "N passed, N failed".

After the test boot comes the power-cut boot (tests/guest/powercut.sh;
--no-powercut skips it, --powercut-only runs only it, as make test does
beside the test boot):
the guest's test filesystem sits on dm-log-writes with the log on a second
disk, and prints
  E4D-MANIFEST: PHASE PATH SHA256...     the files a phase must not change
                                         (or the contents each may have)
  E4D-POWERCUT-LOGGED                    when the log is complete
then tests/powercut.py replays the log on the host to every flush and FUA
point of each phase and checks mount, data and e2fsck there.
"""

import argparse
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import powercut

KTAP_CASE = re.compile(r"^(\s*)(not ok|ok) (\d+) ([^\s#]+)(.*)$")
# The power-cut boot's disks: the test filesystem, and the log of every
# write to it (sparse; a few hundred MiB are used).
POWERCUT_DATA_MIB = 64
POWERCUT_LOG_MIB = 4096

# test-40's seeds (tests/guest/test-40-layouts.sh), unless e4d.seeds=
# names others: 1 KiB blocks (1), a 2 GiB filesystem (2), a file of
# 3000-5000 extents (3), sparse files (2, 4); seed 5 (1 KiB blocks again)
# was dropped to keep make test short.
LAYOUT_SEEDS = "1,2,3,4"
HERE = os.path.dirname(os.path.abspath(__file__))
TEST_BIN = os.path.join(HERE, "..", "tools", "e4defrag", "target", "test-hooks", "release")

RESULT = re.compile(r"^E4D-RESULT: (PASS|FAIL|SKIP) ([^:]+)(?:: (.*))?$")
GROUPS = os.path.join(HERE, "guest", "groups")
CRASH = re.compile(r"Kernel panic|BUG: |Oops: |general protection fault")


class Run:
    def __init__(self):
        self.results = []  # (name, ok, reason)
        self.skipped = []  # (name, reason)
        self.ktap_cases = 0
        self.ktap_suite_seen = False
        self.started = False
        self.done = False
        self.crash = None
        self.manifests = {}  # phase -> [(path, [sha256, ...])]
        self.logged = False
        # (seconds since the result or script end before it, name): what
        # each scenario cost with its set-up, for the slowest-steps line.
        self.steps = []
        self.mark = None

    def feed(self, line):
        if line.startswith("E4D-MANIFEST: "):
            phase, path, *digests = line[len("E4D-MANIFEST: "):].split(" ")
            self.manifests.setdefault(phase, []).append((path, digests))
            return
        if line == "E4D-POWERCUT-LOGGED":
            self.logged = True
            return
        if line.endswith("E4D-START"):
            self.started = True
            self.mark = time.monotonic()
            return
        if line.startswith("== ") and " took " in line:
            self.mark = time.monotonic()
        if line == "E4D-DONE":
            self.done = True
            return
        m = RESULT.match(line)
        if m:
            if m.group(1) == "SKIP":
                self.skipped.append((m.group(2).strip(), m.group(3) or ""))
            else:
                self.results.append((m.group(2).strip(), m.group(1) == "PASS",
                                     m.group(3) or ""))
            now = time.monotonic()
            if self.mark is not None:
                self.steps.append((now - self.mark, m.group(2).strip()))
            self.mark = now
            return
        if line.startswith("KTAP: "):
            self.feed_ktap(line[len("KTAP: "):])
            return
        if self.crash is None and CRASH.search(line):
            self.crash = line.strip()

    def feed_ktap(self, line):
        m = KTAP_CASE.match(line)
        if not m:
            return
        indent, status, _, name, rest = m.groups()
        ok = status == "ok"
        if indent:
            self.ktap_cases += 1
            skip = "# SKIP" in rest
            self.results.append((f"kunit.{name}", ok or skip, rest.strip()))
        else:
            self.ktap_suite_seen = True
            if not ok and all(r[1] for r in self.results if r[0].startswith("kunit.")):
                self.results.append((f"kunit.suite.{name}", False, "suite failed"))


def boot(args, mode, disks, run, extra="", drives=()):
    """One boot of the guest with e4d.mode=MODE on DISKS (vda, vdb, ...),
    fed into RUN. Returns (finished, seconds)."""
    cmd = [
        "qemu-system-x86_64", "-accel", args.accel, "-m", "1536", "-smp", "2",
        "-nographic", "-no-reboot", "-kernel", args.kernel, "-initrd", args.initrd,
        "-append", f"console=ttyS0 quiet panic=-1 e4d.mode={mode} {extra}".strip(),
    ]
    # Every disk a -device of its own, in this order: the guest's scripts
    # name DISKS vda, vdb, ... (the PCI slots follow the command line; an
    # if=virtio drive would be placed after the -device ones); DRIVES have
    # serial numbers the guest finds them by.
    for i, disk in enumerate(disks):
        cmd += ["-drive", f"file={disk},if=none,format=raw,id=disk{i}",
                "-device", f"virtio-blk-pci,drive=disk{i}"]
    for i, (drive, serial) in enumerate(drives):
        cmd += ["-drive", f"{drive},if=none,id=extra{i}",
                "-device", f"virtio-blk-pci,drive=extra{i},serial={serial}"]
    if args.accel == "tcg":
        cmd += ["-cpu", "max"]
    run.started = run.done = False
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    timer = threading.Timer(args.timeout, proc.kill)
    timer.start()
    try:
        for raw in proc.stdout:
            line = raw.rstrip("\r\n")
            if args.log_file:
                args.log_file.write(line + "\n")
            run.feed(line)
            if mode in ("demo", "bench"):
                if run.started and not line.startswith("E4D-"):
                    print(line, flush=True)
            elif line.startswith(("E4D-RESULT", "== ")):
                print(line, flush=True)
        proc.wait()
    finally:
        timer.cancel()
    return run.done, time.monotonic() - start


def new_disk(tmp, mib, name="disk.img"):
    disk = os.path.join(tmp, name)
    with open(disk, "wb") as f:
        f.truncate(0)
        f.truncate(mib << 20)
    return disk


def powercut_boot(args, tmp, run):
    """The power-cut boot, then the replay of its log on the host."""
    data = new_disk(tmp, POWERCUT_DATA_MIB, "powercut-data.img")
    log = new_disk(tmp, POWERCUT_LOG_MIB, "powercut-log.img")
    run.manifests, run.logged = {}, False
    done, secs = boot(args, "powercut", [data, log], run)
    print(f"qemu: power-cut boot ran {secs:.1f} s")
    if not done or not run.logged:
        run.results.append(("powercut_logged", False,
                            run.crash or "the power-cut boot did not finish its log"))
        return
    try:
        run.results += powercut.replay(log, POWERCUT_DATA_MIB << 20, run.manifests,
                                       say=lambda m: print(m, flush=True), final=data)
    except (OSError, ValueError, subprocess.CalledProcessError) as e:
        run.results.append(("powercut_replayed", False, str(e)))


def group_scripts(name):
    """The script numbers of group NAME (tests/guest/groups)."""
    with open(GROUPS) as f:
        return [w[0] for w in (line.split() for line in f)
                if w and not w[0].startswith("#") and name in w[1:]]


def scripts_of(append):
    """The scenario scripts (numbers) a test boot with this command line
    runs (tests/guest/init): e4d.tests=, else e4d.group=, else all."""
    m = re.search(r"(?:^| )e4d\.tests=(\S*)", append)
    if m:
        return m.group(1).split(",")
    m = re.search(r"(?:^| )e4d\.group=(\S*)", append)
    if m:
        return group_scripts(m.group(1))
    with open(GROUPS) as f:
        return [w[0] for w in (line.split() for line in f) if w and not w[0].startswith("#")]


def layout_drives(args, tmp, run):
    """test-40's seeded images, made on the host at native speed
    (tests/layouts.sh --prepare), where the guest under TCG took about a
    minute for them. Each image becomes two virtio disks, one per
    backend, whose writes go to overlays of their own (snapshot=on), and
    the records (the checksums, the extents before, the seeds) one tar
    disk. Returns their (-drive options, serial number)."""
    m = re.search(r"(?:^| )e4d\.seeds=(\S*)", args.append)
    seeds = (m.group(1) if m else LAYOUT_SEEDS).split(",")
    if args.layouts:
        # Images kept from a failed run, used where they are (the disks'
        # overlays keep them unchanged).
        work = os.path.abspath(args.layouts)
    else:
        # On tmpfs (removed at exit), where the generator's fsyncs do not
        # reach the host's disk: twice as fast.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else tmp
        work = tempfile.mkdtemp(prefix="e4d-layouts-", dir=shm)
        atexit.register(shutil.rmtree, work, True)
        run.layout_work = work
    env = dict(os.environ, WORK=work, FRAGGEN=os.path.join(TEST_BIN, "fraggen"),
               E4DEFRAG=os.path.join(TEST_BIN, "e4defrag"))
    start = time.monotonic()
    drives, made, records = [], [], []
    for seed in seeds:
        rc = 0
        if not args.layouts:
            r = subprocess.run(["sh", os.path.join(HERE, "layouts.sh"), "--prepare", seed],
                               env=env, capture_output=True, text=True)
            for line in (r.stdout + r.stderr).splitlines():
                print(line, flush=True)
                run.feed(line)
            rc = r.returncode
        img = os.path.join(work, f"layout-{seed}.img")
        if rc != 0 or not os.path.exists(img):
            run.results.append((f"layout-{seed}-prepared", False,
                                f"no {img} (tests/layouts.sh --prepare {seed}: exit {rc})"))
            continue
        made.append(seed)
        records += [f"layout-{seed}.sums", f"layout-{seed}.before"]
        for backend in ("module", "move-ext"):
            drives.append((f"file={img},format=raw,snapshot=on",
                           f"layout-{seed}-{backend}"))
    with open(os.path.join(tmp, "seeds"), "w") as f:
        f.write(" ".join(made) + "\n")
    tar = os.path.join(tmp, "layout-records.tar")
    subprocess.run(["tar", "-cf", tar, "-C", tmp, "seeds", "-C", work] + records, check=True)
    drives.append((f"file={tar},format=raw,readonly=on", "layout-records"))
    print(f"qemu: test-40's layouts {','.join(made)} "
          + (f"from {args.layouts}" if args.layouts else
             f"made on the host in {time.monotonic() - start:.1f} s"), flush=True)
    return drives


def keep_failed_layouts(run):
    """The host makes test-40's images anew each run, and its allocator
    does not make the same layout twice: keep the images of a failed run
    (build/layout-failures/) so that it can be replayed."""
    work = getattr(run, "layout_work", None)
    failed = sorted({name.split("-")[1] for name, ok, _ in run.results
                     if not ok and name.startswith("layout-")})
    if not work or not failed:
        return
    keep = os.path.join(HERE, "..", "build", "layout-failures")
    shutil.rmtree(keep, ignore_errors=True)
    os.makedirs(keep)
    for seed in failed:
        for kind in ("img", "sums", "before"):
            src = os.path.join(work, f"layout-{seed}.{kind}")
            if os.path.exists(src):
                subprocess.run(["cp", "--sparse=always", src, keep], check=False)
    print(f"qemu: the images of the failed layouts {','.join(failed)} are in "
          f"{os.path.normpath(keep)}", flush=True)


def ran_kunit(append):
    """Whether a test boot with this command line runs test-10, which loads
    the module and reports its KUnit suite (tests/guest/init)."""
    return "10" in scripts_of(append)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--mode", choices=["test", "demo", "bench"], default="test")
    ap.add_argument("--log", help="write the whole console output here")
    ap.add_argument("--accel", default=os.environ.get("E4D_ACCEL", "tcg"),
                    help="QEMU accelerator (tcg; kvm hangs on these machines)")
    ap.add_argument("--timeout", type=int, default=2400,
                    help="seconds per boot (the test boot took 346 s on one of "
                         "these machines and 1068 s on a slower one)")
    ap.add_argument("--disk-mib", type=int, default=256)
    ap.add_argument("--layouts", metavar="DIR",
                    help="test-40's images from DIR (layout-SEED.img, .sums, .before: "
                         "what a failed run keeps in build/layout-failures/) instead of "
                         "making them")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--no-powercut", action="store_true",
                       help="skip the power-cut boot and its replay")
    which.add_argument("--powercut-only", action="store_true",
                       help="only the power-cut boot and its replay (make test runs "
                            "it beside the test boot)")
    ap.add_argument("--strict", action="store_true",
                    help="a skipped check fails the run (make test: scripts/deps.sh "
                         "installs all that any scenario needs)")
    ap.add_argument("--append", default="",
                    help="more kernel command line for the main boot, e.g. "
                         "'e4d.tests=40 e4d.seeds=7,8' (see tests/guest/init)")
    args = ap.parse_args()
    m = re.search(r"(?:^| )e4d\.group=(\S*)", args.append)
    if m and not group_scripts(m.group(1)):
        ap.error(f"no scenario script is in group {m.group(1)} ({GROUPS})")
    args.log_file = open(args.log, "w") if args.log else None

    run = Run()
    with tempfile.TemporaryDirectory(prefix="e4d-qemu-") as tmp:
        if not args.powercut_only:
            disk = new_disk(tmp, args.disk_mib)
            drives = []
            if args.mode == "test" and "40" in scripts_of(args.append):
                drives = layout_drives(args, tmp, run)
            done, secs = boot(args, args.mode, [disk], run, args.append, drives)
            print(f"qemu: {args.mode} boot ran {secs:.1f} s ({args.accel})")
            slow = sorted(run.steps, reverse=True)[:12]
            if slow:
                print("qemu: slowest steps (s since the result before): "
                      + ", ".join(f"{n} {t:.0f}" for t, n in slow))
            if args.mode in ("demo", "bench"):
                return 0 if done and run.crash is None else 1
            if not done:
                why = run.crash or f"no E4D-DONE (crash or time-out after {args.timeout} s)"
                run.results.append(("guest_finished", False, why))
            keep_failed_layouts(run)
            # The suite runs when test-10 loads the module.
            if ran_kunit(args.append) and (run.ktap_cases == 0 or not run.ktap_suite_seen):
                run.results.append(("kunit_reported", False,
                                    "no KTAP result from the ext4_defrag suite"))

        if not args.no_powercut:
            powercut_boot(args, tmp, run)

    if run.crash:
        run.results.append(("guest_no_oops", False, run.crash))
    if args.strict:
        run.results += [(name, False, f"skipped under --strict: {why}")
                        for name, why in run.skipped]
        run.skipped = []
    if args.log_file:
        args.log_file.close()
    failed = [r for r in run.results if not r[1]]
    for name, reason in run.skipped:
        print(f"SKIP {name}: {reason}")
    for name, _, reason in failed:
        print(f"FAIL {name}: {reason}")
    if args.log:
        print(f"qemu: console log in {args.log}")
    print(f"{len(run.results) - len(failed)} passed, {len(failed)} failed"
          + (f", {len(run.skipped)} skipped" if run.skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
