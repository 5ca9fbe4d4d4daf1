"""An ext4 image aged by real history: successive releases of a real
package installed one over the other into one tree (what upgrading it
does), the way Conway et al. age filesystems with successive git commits
("File Systems Fated for Senescence? Nonsense, Says Science!", FAST
2017). Each step makes the tree what the release holds: files whose
content changed are written anew (rsync's temporary file and rename, as
git checkout unlinks and writes), files the release dropped are deleted,
unchanged files stay.

    agetree.py IMAGE --package Django --releases 150 --mib 384

The releases are the package's final ones (no alpha, beta or rc) in
version order, the last N of them, as wheels from PyPI (pip download: a
wheel is the tree as installed, and needs no build), kept in
~/.cache/ext4-defrag/releases/ so only the first run downloads. The
image holds the tree at /tree (the last release). Prints one line:
steps, files, MiB, and how many files each step rewrote.

For a program's cold start the image also holds, written before the
ageing starts (the older data of a system), Debian's python3 with its
standard library and the shared libraries it and its extension modules
load, at their own paths (so that `chroot IMAGE /usr/bin/python3` runs),
and the package's dependencies (their latest wheels) in /deps; after the
last release the tree's modules are compiled (__pycache__), as pip does
when it installs.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

CACHE = os.path.join(os.environ.get("E4D_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ext4-defrag"),
    "releases")
FINAL = re.compile(r"^\d+(\.\d+)*$")
PIP = ["/usr/bin/python3", "-m", "pip"]


def releases(package, n):
    """The last N final releases of PACKAGE, oldest first."""
    out = subprocess.run(PIP + ["index", "versions", package], check=True,
                         capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("Available versions:"))
    versions = [v.strip() for v in line.split(":", 1)[1].split(",")]
    finals = sorted((v for v in versions if FINAL.match(v)),
                    key=lambda v: tuple(int(x) for x in v.split(".")))
    return finals[-n:]


def wheel(package, version):
    """The release's wheel, downloaded once into the cache."""
    d = os.path.join(CACHE, package)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if re.match(rf"(?i)^{re.escape(package)}-{re.escape(version)}-.*\.whl$", name):
            return os.path.join(d, name)
    subprocess.run(PIP + ["download", "--quiet", "--no-deps", "--only-binary", ":all:",
                          "-d", d, f"{package}=={version}"],
                   check=True, stdout=subprocess.DEVNULL)
    return wheel(package, version)


# What the package needs to be imported (Django: asgiref, sqlparse).
DEPENDS = {"Django": ["asgiref", "sqlparse"]}
PYTHON = "/usr/bin/python3"


def install_python(mnt):
    """Debian's python3, its standard library and every shared library it
    and its extension modules load, into MNT at the same paths."""
    exe = os.path.realpath(PYTHON)
    version = os.path.basename(exe)[len("python"):]
    stdlib = f"/usr/lib/python{version}"
    objs = [exe] + [os.path.join(d, f) for d, _, fs in os.walk(stdlib) for f in fs
                    if f.endswith(".so")]
    libs = set()
    for obj in objs:
        out = subprocess.run(["ldd", obj], capture_output=True, text=True).stdout
        libs.update(re.findall(r"(/\S+) \(0x", out))
    for path in sorted(libs) + [exe]:
        dest = mnt + (PYTHON if path == exe else path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(path, dest)
        shutil.copymode(path, dest)
    os.makedirs(os.path.dirname(mnt + stdlib), exist_ok=True)
    subprocess.run(["cp", "-a", stdlib, mnt + stdlib], check=True)
    return version


def age(image, package, n, mib, say=print):
    versions = releases(package, n)
    archives = [wheel(package, v) for v in versions]
    deps = [wheel(d, releases(d, 1)[0]) for d in DEPENDS.get(package, [])]
    with open(image, "wb") as f:
        f.truncate(mib << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "nodiscard", image],
                   check=True)
    rewritten = []
    with tempfile.TemporaryDirectory(prefix="e4d-age-") as tmp:
        mnt = os.path.join(tmp, "mnt")
        os.mkdir(mnt)
        subprocess.run(["mount", "-o", "loop", image, mnt], check=True)
        try:
            pyver = install_python(mnt)
            os.mkdir(os.path.join(mnt, "deps"))
            for archive in deps:
                with zipfile.ZipFile(archive) as z:
                    z.extractall(os.path.join(mnt, "deps"))
            subprocess.run(["sync", "-f", mnt], check=True)
            tree = os.path.join(mnt, "tree")
            os.mkdir(tree)
            for v, archive in zip(versions, archives):
                stage = os.path.join(tmp, "stage")
                with zipfile.ZipFile(archive) as z:
                    z.extractall(stage)
                r = subprocess.run(["rsync", "-a", "--delete", "--checksum", "--out-format=%n",
                                    stage + "/", tree + "/"], check=True, capture_output=True,
                                   text=True)
                rewritten.append(sum(1 for l in r.stdout.splitlines()
                                     if l and not l.endswith("/")))
                subprocess.run(["rm", "-rf", stage], check=True)
                # Each release reaches the disk before the next, as each
                # checkout would in use.
                subprocess.run(["sync", "-f", tree], check=True)
            subprocess.run([PYTHON, "-m", "compileall", "-q", "-j", "0", tree,
                            os.path.join(mnt, "deps")], check=True)
            subprocess.run(["sync", "-f", tree], check=True)
            files = sum(len(f) for _, _, f in os.walk(tree))
            used = subprocess.run(["du", "-sm", tree], check=True, capture_output=True,
                                  text=True).stdout.split()[0]
        finally:
            subprocess.run(["umount", mnt], check=True)
    say(f"aged tree: {package} {versions[0]} .. {versions[-1]}: {len(versions)} releases, "
        f"{files} files, {used} MiB; files rewritten per release: median "
        f"{sorted(rewritten)[len(rewritten) // 2]}, first {rewritten[0]}")
    return {"package": package, "releases": len(versions), "first": versions[0],
            "last": versions[-1], "files": files, "mib": int(used), "python": pyver}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image")
    ap.add_argument("--package", default="Django")
    ap.add_argument("--releases", type=int, default=150)
    ap.add_argument("--mib", type=int, default=384)
    args = ap.parse_args()
    age(args.image, args.package, args.releases, args.mib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
