//! The tool on real ext4 images on the host, through the stock kernel's
//! `EXT4_IOC_MOVE_EXT` (`--backend move-ext`): each test makes an image
//! with mke2fs, loop-mounts it, builds a layout, runs the binary, checks
//! data (byte for byte, after dropping caches), timestamps and extents
//! (filefrag), and ends with `e2fsck -fn`. Needs root for the loop mounts:
//! as another user each test says it is skipped and returns.

use serde_json::Value;
use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

const BLOCK: usize = 4096;

/// The backend the tests run the tool with: `move-ext` (the stock
/// kernel's `EXT4_IOC_MOVE_EXT`, on the host), or what `E4D_BACKEND` says
/// (`module`: the same binary in the test guest, tests/guest/test-30-tool.sh).
fn backend() -> &'static str {
    static B: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    B.get_or_init(|| std::env::var("E4D_BACKEND").unwrap_or_else(|_| "move-ext".into()))
}

/// Whether the tests run with the module backend.
fn module() -> bool {
    backend() == "module"
}

/// The e4defrag binary: cargo's, or the one `E4DEFRAG` names (the guest's).
fn tool() -> &'static str {
    static T: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        std::env::var("E4DEFRAG").unwrap_or_else(|_| env!("CARGO_BIN_EXE_e4defrag").into())
    })
}

/// Returns from the test, saying so, unless it runs as root: these tests
/// loop-mount images (`cargo test` as a user runs the rest of the suite).
macro_rules! require_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: the host ext4 tests loop-mount images and need root");
            return;
        }
    };
}

fn sh(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh ext4 image, loop-mounted; unmounted (and checked) at the end.
struct Image {
    _dir: tempfile::TempDir,
    img: PathBuf,
    mnt: PathBuf,
    /// The loop device it is mounted from, while it is.
    loop_dev: Option<String>,
}

impl Image {
    fn new(mib: u64) -> Image {
        Image::with(mib, &[])
    }

    /// An image made with `mke2fs` options `extra` (features, say).
    fn with(mib: u64, extra: &[&str]) -> Image {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        File::create(&img).unwrap().set_len(mib << 20).unwrap();
        fs::create_dir(&mnt).unwrap();
        let mut args = vec!["-q", "-F", "-t", "ext4", "-b", "4096"];
        args.extend_from_slice(extra);
        args.push(img.to_str().unwrap());
        sh("mke2fs", &args);
        let mut image = Image {
            _dir: dir,
            img,
            mnt,
            loop_dev: None,
        };
        image.remount();
        // Every file counts as small, so its writes share the per-CPU
        // locality-group preallocation with a filler's: what lets writes
        // interleave.
        let dev = image.device();
        let name = Path::new(&dev).file_name().unwrap().to_str().unwrap();
        fs::write(format!("/sys/fs/ext4/{name}/mb_stream_req"), "1000000").unwrap();
        image
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// Commits the image's filesystem (see [`sync_fs_of`]).
    fn sync(&self) {
        sync_fs_of(&self.mnt);
    }

    /// The loop device the image is mounted from.
    fn device(&self) -> String {
        self.loop_dev.clone().expect("the image is not mounted")
    }

    /// Unmounts the image, for tools that read it directly.
    ///
    /// The tests run in parallel threads, and a child that another thread
    /// spawns holds a copy of this process's descriptors (files this
    /// thread had open on the image among them) until it execs: umount
    /// can find the mount busy for that moment. It is tried again then.
    fn unmount(&mut self) {
        let Some(dev) = self.loop_dev.take() else {
            return;
        };
        let mnt = self.mnt.to_str().unwrap();
        let mut done = false;
        for _ in 0..20 {
            let out = Command::new("umount").arg(mnt).output().unwrap();
            if out.status.success() {
                done = true;
                break;
            }
            if !String::from_utf8_lossy(&out.stderr).contains("busy") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !done {
            sh("umount", &[mnt]);
        }
        sh("losetup", &["-d", &dev]);
    }

    /// Mounts the image (again, after [`Image::unmount`]). The loop device
    /// is set up first and then mounted, not with `mount -o loop`: mount
    /// keeps the device open for writing while it mounts it, which a
    /// kernel without `CONFIG_BLK_DEV_WRITE_MOUNTED` (the test guest's)
    /// refuses with EBUSY. nodelalloc: blocks are allocated in write(),
    /// on this thread's CPU, not later by a flusher thread on another one.
    /// A loop device another test thread has just let go of can still be
    /// busy for a moment (EBUSY): then it is let go and another one tried.
    fn remount(&mut self) {
        for _ in 0..20 {
            let out = sh("losetup", &["-f", "--show", self.img.to_str().unwrap()]);
            let dev = String::from_utf8(out.stdout).unwrap().trim().to_string();
            let mounted = Command::new("mount")
                .args(["-o", "nodelalloc", &dev, self.mnt.to_str().unwrap()])
                .output()
                .unwrap();
            if mounted.status.success() {
                self.loop_dev = Some(dev);
                return;
            }
            let _ = Command::new("losetup").args(["-d", &dev]).status();
            let err = String::from_utf8_lossy(&mounted.stderr);
            assert!(err.contains("busy"), "mount {dev}: {err}");
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("mount of {}: every loop device busy", self.img.display());
    }

    /// Unmounts and runs `e2fsck -fn`, which must find nothing.
    fn fsck(mut self) {
        self.unmount();
        let out = Command::new("e2fsck")
            .args(["-fn", self.img.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "e2fsck -fn: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if let Some(dev) = self.loop_dev.take() {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
            let _ = Command::new("losetup").args(["-d", &dev]).status();
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift), different per `seed`.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn open_sync(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(nix::fcntl::OFlag::O_SYNC.bits())
        .open(path)
        .unwrap()
}

/// Keeps this test thread on CPU 0, so that its writes share one
/// locality group.
fn pin_to_cpu0() {
    let mut set = nix::sched::CpuSet::new();
    set.set(0).unwrap();
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).unwrap();
}

/// The test drivers' layout generator for interleaved writes (`fraggen
/// interleave`, `fraggen scatter`), compiled in: the one generator the
/// guest's scripts use too, without a process per layout.
#[allow(dead_code)]
#[path = "../../../tests/drivers/src/bin/fraggen/interleave.rs"]
mod interleave;

/// Writes `content` to `path` one block at a time, each followed by a
/// block of a filler file, so that the file gets about one extent per
/// block; the filler is deleted afterwards.
fn write_fragmented(path: &Path, content: &[u8]) {
    interleave::interleave(path, content).unwrap();
}

/// Commits the filesystem `path` is on: syncfs, never a global sync(),
/// which waits on every filesystem of the host (one wedged loop device
/// elsewhere hung every test that called it) and flushes the other
/// tests' images for nothing.
fn sync_fs_of(path: &Path) {
    let dir = if path.is_dir() {
        path
    } else {
        path.parent().unwrap()
    };
    let f = File::open(dir).unwrap();
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)).unwrap();
}

/// Commits the filesystem of `path` and drops the page cache, so that
/// what is read next comes from the disk.
fn sync_and_drop_caches(path: &Path) {
    sync_fs_of(path);
    fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
}

/// Extents as e2fsprogs' filefrag counts them.
fn extents(path: &Path) -> u64 {
    let out = Command::new("filefrag").arg(path).output().unwrap();
    assert!(out.status.success(), "filefrag {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let n = text.rsplit(": ").next().unwrap().split(' ').next().unwrap();
    n.parse().unwrap_or_else(|_| panic!("filefrag: {text}"))
}

/// (atime, mtime, ctime) in nanoseconds.
fn times(path: &Path) -> (i64, i64, i64) {
    let m = fs::symlink_metadata(path).unwrap();
    let ns = |s: i64, n: i64| s * 1_000_000_000 + n;
    (
        ns(m.atime(), m.atime_nsec()),
        ns(m.mtime(), m.mtime_nsec()),
        ns(m.ctime(), m.ctime_nsec()),
    )
}

fn e4defrag(args: &[&str]) -> Output {
    Command::new(tool())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn e4defrag_ok(args: &[&str]) -> String {
    let out = e4defrag(args);
    assert!(
        out.status.success(),
        "e4defrag {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&e4defrag_ok(&all)).expect("--json prints one JSON document")
}

/// Read-order discontinuities of a directory as `-c` reports them.
fn discontinuities(args: &[&str]) -> u64 {
    let mut all = vec!["-c"];
    all.extend_from_slice(args);
    json(&all)["check"]["sets"][0]["discontinuities"]
        .as_u64()
        .unwrap()
}

/// A directory of `n` small files `f0`, `f1`, ... (1-3 blocks less 100
/// bytes, by index), each followed on disk by a filler file; every other
/// filler is deleted, so the files are scattered between fillers and
/// holes. Returns the files' contents, in the order they were written.
fn scattered_dir(img: &Image, name: &str, n: usize) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = img.path(name);
    interleave::scatter(&dir, n as u64).unwrap();
    (0..n)
        .map(|i| {
            let p = dir.join(format!("f{i}"));
            let content = fs::read(&p).unwrap();
            assert_eq!(content.len(), BLOCK * (1 + i % 3) - 100);
            (p, content)
        })
        .collect()
}

fn assert_contents(files: &[(PathBuf, Vec<u8>)]) {
    if let Some((p, _)) = files.first() {
        sync_and_drop_caches(p);
    }
    for (p, content) in files {
        assert!(fs::read(p).unwrap() == *content, "{} changed", p.display());
    }
}

#[test]
fn fragmented_files_end_with_fewer_extents() {
    require_root!();
    let img = Image::new(64);
    let mut files = Vec::new();
    for i in 0..3 {
        let p = img.path(&format!("frag{i}"));
        let content = bytes(i, 64 * BLOCK - 10);
        write_fragmented(&p, &content);
        files.push((p, content));
    }
    let before: Vec<_> = files.iter().map(|(p, _)| (extents(p), times(p))).collect();
    let args: Vec<&str> = ["--backend", backend()]
        .into_iter()
        .chain(files.iter().map(|(p, _)| p.to_str().unwrap()))
        .collect();
    let out = e4defrag_ok(&args);
    for ((p, _), (n_before, t_before)) in files.iter().zip(&before) {
        assert!(
            *n_before >= 32,
            "{}: only {n_before} extents to start",
            p.display()
        );
        assert_eq!(extents(p), 1, "{}: {out}", p.display());
        assert_eq!(times(p), *t_before, "{}: timestamps changed", p.display());
        assert!(
            out.contains(&format!("{}: extents {n_before} -> 1", p.display())),
            "{out}"
        );
    }
    assert_contents(&files);
    // A second run has nothing to gain.
    assert!(e4defrag_ok(&args).contains("extents 1 -> 1, moved 0 blocks"));
    img.fsck();
}

#[test]
fn files_below_min_extents_are_left_alone() {
    require_root!();
    let img = Image::new(64);
    let (small, big) = (img.path("small"), img.path("big"));
    let files = vec![
        (small.clone(), bytes(7, 4 * BLOCK)),
        (big.clone(), bytes(8, 64 * BLOCK)),
    ];
    for (p, content) in &files {
        write_fragmented(p, content);
    }
    let (n_small, n_big) = (extents(&small), extents(&big));
    assert!((2..10).contains(&n_small), "small: {n_small} extents");
    assert!(n_big >= 32, "big: only {n_big} extents");
    let doc = json(&[
        "--backend",
        backend(),
        "--min-extents",
        "10",
        small.to_str().unwrap(),
        big.to_str().unwrap(),
    ]);
    let by_path = |p: &Path| {
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p.to_str().unwrap())
            .unwrap_or_else(|| panic!("{} not in {doc}", p.display()))
            .clone()
    };
    let (s, b) = (by_path(&small), by_path(&big));
    assert_eq!(s["status"], "skipped", "{s}");
    assert_eq!(
        s["reason"],
        format!("{n_small} extents, fewer than --min-extents 10")
    );
    assert_eq!(extents(&small), n_small, "the small file was moved");
    assert_eq!(b["status"], "done", "{b}");
    assert_eq!(extents(&big), 1);
    assert_contents(&files);
    // -r places a set whole: the option does not go with it.
    let out = e4defrag(&["-r", "--min-extents", "10", img.path("").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "-r with --min-extents");
    img.fsck();
}

#[test]
fn colocating_a_scattered_directory() {
    require_root!();
    let img = Image::new(64);
    let files = scattered_dir(&img, "boot", 300);
    let dir = img.path("boot");
    let d = dir.to_str().unwrap();
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // An empty file has no blocks to place: it must not keep a packed set
    // from being recognised as packed.
    File::create(dir.join("empty")).unwrap();
    let names: Vec<_> = names.into_iter().chain([dir.join("empty")]).collect();
    let before = discontinuities(&[d]);
    assert!(before >= 100, "only {before} discontinuities to start");
    let t_before: Vec<_> = files.iter().map(|(p, _)| times(p)).collect();

    let doc = json(&["-r", "--backend", backend(), d]);
    let after = discontinuities(&[d]);
    println!("-r {d}: read-order discontinuities {before} -> {after}");
    assert!(after <= 3, "{after} discontinuities for 300 files");
    assert_eq!(doc["sets"][0]["after"]["discontinuities"], after);
    assert_eq!(doc["sets"][0]["before"]["discontinuities"], before);
    assert_eq!(doc["totals"]["failed"], 0);
    assert_eq!(doc["totals"]["done"], 300);
    // A second run never makes the set worse, and on a packed set (the
    // usual outcome here) moves nothing.
    let again = json(&["-r", "--backend", backend(), d]);
    let again_after = again["sets"][0]["after"]["discontinuities"].as_u64();
    assert!(again_after <= Some(after), "second run: {again_after:?}");
    if after == 0 {
        assert_eq!(
            again["totals"]["moved_blocks"], 0,
            "second run moved blocks"
        );
        assert_eq!(again["totals"]["done"], 0, "second run moved files");
    }
    for ((p, _), t) in files.iter().zip(&t_before) {
        assert_eq!(times(p), *t, "{}: timestamps changed", p.display());
    }
    assert_contents(&files);
    // No donor left behind: the directory holds what it held.
    let mut now: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut was = names;
    now.sort();
    was.sort();
    assert_eq!(now, was);
    // Without --order, -r places a tree as find (and grep -r, tar, cp -a)
    // reads it: readdir order, not sorted paths. --order-by path places it
    // in path order.
    let listed = sh("find", &[d, "-type", "f"]).stdout;
    let list = img.path("find.list");
    fs::write(&list, listed).unwrap();
    let in_find = discontinuities(&["-r", "--order", list.to_str().unwrap(), d]);
    let in_path = discontinuities(&["-r", "--order-by", "path", d]);
    println!("find's order {in_find}, path order {in_path} discontinuities");
    assert!(
        in_find <= 3 && in_path >= 100,
        "find's order {in_find}, path {in_path}"
    );
    json(&["-r", "--order-by", "path", "--backend", backend(), d]);
    let in_path = discontinuities(&["-r", "--order-by", "path", d]);
    assert!(
        in_path <= 3,
        "path order {in_path} after -r --order-by path"
    );
    assert_contents(&files);
    img.fsck();
}

#[test]
fn colocating_in_the_order_of_a_list() {
    require_root!();
    let img = Image::new(64);
    let files = scattered_dir(&img, "boot", 120);
    let d = img.path("boot");
    let d = d.to_str().unwrap();
    // The list: the files in reverse, as relative and absolute paths.
    let list: String = files
        .iter()
        .rev()
        .enumerate()
        .map(|(i, (p, _))| {
            let name = p.file_name().unwrap().to_str().unwrap();
            if i % 2 == 0 {
                format!("{name}\n")
            } else {
                format!("{}\n", p.display())
            }
        })
        .collect();
    // Entries that place nothing, each counted: one missing, one outside
    // the set, one named twice (through "..").
    let list = format!(
        "{list}{0}/nope\n{1}\n{0}/../boot/{2}\n",
        d,
        img.path("outside").display(),
        files[0].0.file_name().unwrap().to_str().unwrap()
    );
    fs::write(img.path("outside"), b"x").unwrap();
    let list_path = img.path("order.txt");
    fs::write(&list_path, list).unwrap();
    let l = list_path.to_str().unwrap();
    let before = discontinuities(&["-r", "--order", l, d]);
    // The set's directory named through a link: absolute entries still
    // match (they used to be compared as strings and all ignored).
    let link = img.path("boot-link");
    std::os::unix::fs::symlink(d, &link).unwrap();
    let via_link = format!("{}/.", link.display());
    let doc = json(&["-r", "--backend", backend(), "--order", l, &via_link]);
    let order = &doc["sets"][0]["order"];
    assert_eq!(order["entries"], 123, "{order}");
    assert_eq!(order["in_order"], 120, "{order}");
    assert_eq!(order["missing"], 1, "{order}");
    assert_eq!(order["outside"], 1, "{order}");
    assert_eq!(order["duplicated"], 1, "{order}");
    let text = e4defrag(&["-r", "-n", "--backend", backend(), "--order", l, d]);
    let err = String::from_utf8_lossy(&text.stderr);
    assert!(
        err.contains("123 entries: 120 files of") && err.contains("1 missing, 1 named twice"),
        "{err}"
    );
    let in_list_order = discontinuities(&["-r", "--order", l, d]);
    let in_path_order = discontinuities(&[d]);
    println!("--order: {before} -> {in_list_order} (path order now {in_path_order})");
    assert!(
        in_list_order <= 1,
        "{in_list_order} discontinuities in list order"
    );
    assert!(
        in_path_order >= 100,
        "path order should be reversed: {in_path_order}"
    );
    assert_contents(&files);
    img.fsck();
}

/// Physical `(block, length)` of each extent of `path`.
fn physical(path: &Path) -> Vec<(u64, u64)> {
    let f = File::open(path).unwrap();
    let l = e4defrag::layout::Layout::of(&f, BLOCK as u64).unwrap();
    l.runs.iter().map(|r| (r.pblk, r.len)).collect()
}

#[test]
fn colocating_only_the_listed_files() {
    require_root!();
    let img = Image::new(64);
    let a = scattered_dir(&img, "usr", 60);
    let b = scattered_dir(&img, "etc", 60);
    // A boot list: every other file of each directory, interleaved, plus
    // an entry outside the mount's files and one missing.
    let listed: Vec<&(PathBuf, Vec<u8>)> = a
        .iter()
        .zip(&b)
        .step_by(2)
        .flat_map(|(x, y)| [x, y])
        .collect();
    let mut list: String = listed
        .iter()
        .map(|(p, _)| format!("{}\n", p.display()))
        .collect();
    list += "/proc/version\nusr/missing\n";
    let list_path = img.path("boot.list");
    fs::write(&list_path, list).unwrap();
    let l = list_path.to_str().unwrap();
    let root = img.path("");
    let root = root.to_str().unwrap();
    let others: Vec<&(PathBuf, Vec<u8>)> =
        a.iter().chain(&b).filter(|f| !listed.contains(f)).collect();
    let where_before: Vec<_> = others.iter().map(|(p, _)| physical(p)).collect();
    let listed_args = ["-r", "--order", l, "--only-listed", root];
    let before = discontinuities(&listed_args);
    assert!(before >= 40, "only {before} discontinuities to start");

    let mut args = vec!["-r", "--backend", backend()];
    args.extend_from_slice(&listed_args[1..]);
    let doc = json(&args);
    let set = &doc["sets"][0];
    assert_eq!(set["order"]["in_order"], 60, "{set}");
    assert_eq!(set["order"]["outside"], 1, "{set}");
    assert_eq!(set["order"]["missing"], 1, "{set}");
    let after = discontinuities(&listed_args);
    println!("--only-listed: {before} -> {after} discontinuities");
    assert!(after <= 1, "{after} discontinuities in list order");
    // Nothing else under the mount point moved.
    let where_after: Vec<_> = others.iter().map(|(p, _)| physical(p)).collect();
    assert_eq!(where_before, where_after);
    assert_contents(&a);
    assert_contents(&b);
    img.fsck();
}

/// `-r FILE` is refused with a reason, the file untouched (it was
/// defragmented on its own without a word).
#[test]
fn colocating_a_single_file_is_refused() {
    require_root!();
    let img = Image::new(16);
    let f = img.path("lone");
    let data = bytes(7, 16 * BLOCK);
    write_fragmented(&f, &data);
    let before = physical(&f);
    assert!(before.len() > 1, "{before:?}");
    let out = e4defrag(&["-r", f.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("-r colocates the files under a directory"),
        "{err}"
    );
    assert_eq!(physical(&f), before);
    assert_eq!(fs::read(&f).unwrap(), data);
    img.fsck();
}

/// An order list is bytes: a file name that is not UTF-8 (as `--record`
/// writes it) is one entry like any other (it refused the whole list:
/// "stream did not contain valid UTF-8").
#[test]
fn an_order_list_with_a_name_that_is_not_utf8() {
    require_root!();
    use std::os::unix::ffi::OsStrExt;
    let img = Image::new(32);
    let a = scattered_dir(&img, "usr", 6);
    let odd = img
        .path("usr")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    fs::write(&odd, vec![0x5a; 3 * BLOCK]).unwrap();
    let mut list = odd.as_os_str().as_bytes().to_vec();
    list.push(b'\n');
    for (p, _) in &a {
        list.extend_from_slice(p.as_os_str().as_bytes());
        list.push(b'\n');
    }
    let list_path = img.path("boot.list");
    fs::write(&list_path, list).unwrap();
    let root = img.path("");
    let doc = json(&[
        "-r",
        "--backend",
        backend(),
        "--order",
        list_path.to_str().unwrap(),
        "--only-listed",
        root.to_str().unwrap(),
    ]);
    let set = &doc["sets"][0];
    assert_eq!(set["order"]["in_order"], 7, "{set}");
    assert_eq!(fs::read(&odd).unwrap(), vec![0x5a; 3 * BLOCK]);
    assert_contents(&a);
    img.fsck();
}

#[test]
fn time_limited_runs_cover_every_file_once() {
    require_root!();
    let img = Image::new(64);
    let dir = img.path("data");
    fs::create_dir(&dir).unwrap();
    let mut files = Vec::new();
    for i in 0..8 {
        let p = dir.join(format!("f{i}"));
        let content = bytes(100 + i, 16 * BLOCK);
        write_fragmented(&p, &content);
        files.push((p, content));
    }
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("resume");
    let (d, st) = (dir.to_str().unwrap(), state.to_str().unwrap());
    // A limit shorter than any move (a millisecond was not: this host moved
    // all eight files within one): each run handles one file, notes it, and
    // the next goes on after it.
    let mut seen: Vec<String> = Vec::new();
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 20, "no end after {runs} runs: {seen:?}");
        let doc = json(&[
            "--backend",
            backend(),
            "--time-limit",
            "1ns",
            "--state",
            st,
            d,
        ]);
        for f in doc["files"].as_array().unwrap() {
            assert_eq!(f["status"], "done", "{f}");
            seen.push(f["path"].as_str().unwrap().to_string());
        }
        if doc["time_limit_reached"] == false {
            break;
        }
        let kept = fs::read_to_string(&state).unwrap();
        assert!(kept.starts_with(&format!("{d}\t")), "{kept}");
    }
    let mut want: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    want.sort();
    assert_eq!(seen, want, "every file exactly once, in path order");
    assert!(runs >= 2, "one run did it all: the limit did not stop it");
    // The walk was finished: nothing kept for it, the next run starts over.
    assert!(!fs::read_to_string(&state).unwrap().contains(d));
    let again = json(&[
        "--backend",
        backend(),
        "--time-limit",
        "1h",
        "--state",
        st,
        d,
    ]);
    assert_eq!(again["files"].as_array().unwrap().len(), files.len());
    assert_contents(&files);
    img.fsck();
}

#[test]
fn max_rate_paces_the_moves() {
    require_root!();
    let img = Image::new(64);
    let dir = img.path("data");
    fs::create_dir(&dir).unwrap();
    let mut files = Vec::new();
    for i in 0..4 {
        let p = dir.join(format!("f{i}"));
        let content = bytes(200 + i, 16 * BLOCK);
        write_fragmented(&p, &content);
        files.push((p, content));
    }
    // 256 KiB at 0.1 MB/s: 2.6 s at the least, however fast the disk.
    let t0 = Instant::now();
    let doc = json(&[
        "--backend",
        backend(),
        "--max-rate",
        "0.1",
        dir.to_str().unwrap(),
    ]);
    let secs = t0.elapsed().as_secs_f64();
    let moved = doc["totals"]["moved_blocks"].as_u64().unwrap();
    assert_eq!(moved, 64, "{doc}");
    let least = (moved * BLOCK as u64) as f64 / 0.1e6;
    println!("--max-rate 0.1: {moved} blocks in {secs:.2} s (at least {least:.2} s)");
    assert!(
        secs >= 0.95 * least,
        "{secs:.2} s for {moved} blocks at 0.1 MB/s"
    );
    assert_contents(&files);
    img.fsck();
}

/// A count the disk map's grid gives (`data-NAME="N"`).
fn map_count(svg: &str, name: &str) -> usize {
    let key = format!(" data-{name}=\"");
    let at = svg
        .find(&key)
        .unwrap_or_else(|| panic!("no data-{name} in {svg}"))
        + key.len();
    svg[at..].split('"').next().unwrap().parse().unwrap()
}

/// Cells of the disk map's grid, and how many show the target.
fn map_cells(svg: &str) -> (usize, usize) {
    (
        map_count(svg, "cells"),
        map_count(svg, "contiguous") + map_count(svg, "fragmented"),
    )
}

#[test]
fn the_disk_map_shows_the_set_and_follows_the_layout() {
    require_root!();
    let img = Image::new(64);
    let files = scattered_dir(&img, "boot", 300);
    let d = img.path("boot");
    let d = d.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (before, after) = (out.path().join("before.svg"), out.path().join("after.svg"));
    e4defrag_ok(&["-c", "--disk-map", before.to_str().unwrap(), d]);
    let svg = fs::read_to_string(&before).unwrap();
    assert!(
        svg.starts_with("<svg ") && svg.ends_with("</svg>\n"),
        "{svg}"
    );
    // 64 MiB of 4 KiB blocks: the fixed grid of 64 x 32 cells, 8 blocks
    // each; the title names the target (it named the walk's first file).
    let (cells, target) = map_cells(&svg);
    assert_eq!(cells, 2048, "{svg}");
    assert!(
        svg.contains(&format!("<title>e4defrag disk map: {d};")),
        "{svg}"
    );
    // Free space shows (most of the image is free), past-the-end is dark.
    assert!(map_count(&svg, "free") > 1024, "{svg}");
    assert!(target >= 3, "the scattered set in only {target} cells");
    json(&["-r", "--backend", backend(), d]);
    e4defrag_ok(&["-c", "--disk-map", after.to_str().unwrap(), d]);
    let svg2 = fs::read_to_string(&after).unwrap();
    let (cells2, target2) = map_cells(&svg2);
    println!("disk map: the set in {target} cells -> {target2}");
    assert_eq!(cells2, cells);
    assert_ne!(svg, svg2, "the map did not change with the layout");
    assert!(
        target2 < target,
        "the packed set in {target2} cells, {target} before"
    );
    assert_contents(&files);
    img.fsck();
}

#[test]
fn the_disk_map_counts_every_block_of_a_full_filesystem() {
    require_root!();
    let img = Image::with(1024, &["-m", "0"]);
    let files = scattered_dir(&img, "d", 20);
    // Full (fallocated: nothing written): groups wholly in use came back
    // from GETFSMAP as no record at all.
    let st = nix::sys::statvfs::statvfs(&img.mnt).unwrap();
    let free = st.blocks_available() as u64 * BLOCK as u64 - (2 << 20);
    sh(
        "fallocate",
        &["-l", &free.to_string(), img.path("fill").to_str().unwrap()],
    );
    img.sync();
    let out = tempfile::tempdir().unwrap();
    let svg = out.path().join("full.svg");
    e4defrag_ok(&[
        "-c",
        "--disk-map",
        svg.to_str().unwrap(),
        img.path("d").to_str().unwrap(),
    ]);
    let svg = fs::read_to_string(&svg).unwrap();
    let (total, counted) = (
        map_count(&svg, "total-blocks"),
        map_count(&svg, "counted-blocks"),
    );
    // The groups with no record were left out (cells counted as nothing).
    assert_eq!(counted, total, "{svg}");
    assert!(map_count(&svg, "free") < 64, "a full disk is in use: {svg}");
    fs::remove_file(img.path("fill")).unwrap();
    assert_contents(&files);
    img.fsck();
}

/// Records (`--record LIST TARGET`) while `opens` runs, started once
/// the recorder says it watches, then stops it with SIGINT; returns what
/// it printed and the list's lines.
fn record_while(list: &Path, target: &Path, opens: impl FnOnce()) -> (String, Vec<String>) {
    use std::io::{BufRead, Read};
    let mut child = Command::new(tool())
        .args(["--record", list.to_str().unwrap(), "--time-limit", "60s"])
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(
        first.contains("recording the files opened under"),
        "{first}"
    );
    opens();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{first}{rest}{stdout}");
    let got = fs::read_to_string(list)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (stdout, got)
}

#[test]
fn recording_lists_files_in_first_open_order() {
    require_root!();
    let img = Image::new(32);
    let dirs = ["usr/bin", "usr/lib", "etc", "var/lib", "srv"];
    for (i, d) in dirs.iter().enumerate() {
        fs::create_dir_all(img.path(d)).unwrap();
        for j in 0..4 {
            fs::write(
                img.path(&format!("{d}/f{j}")),
                bytes((i * 10 + j) as u64, 5000),
            )
            .unwrap();
        }
    }
    img.sync();
    let elsewhere = tempfile::tempdir().unwrap();
    let list = elsewhere.path().join("boot.list");
    let other_fs = elsewhere.path().join("not-on-the-image");
    fs::write(&other_fs, b"x").unwrap();
    // A boot: the directories' files interleaved, each read; then opens
    // that add nothing: one again, a file of another filesystem, a
    // directory, a FIFO.
    let mut order = Vec::new();
    let (_, got) = record_while(&list, &img.path(""), || {
        use std::io::Read;
        for j in 0..4 {
            for d in dirs {
                let p = img.path(&format!("{d}/f{j}"));
                let mut buf = Vec::new();
                File::open(&p).unwrap().read_to_end(&mut buf).unwrap();
                order.push(p.display().to_string());
            }
        }
        File::open(&order[3]).unwrap();
        File::open(&other_fs).unwrap();
        File::open(img.path("etc")).unwrap();
        let fifo = img.path("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
    });
    assert_eq!(got, order);
}

#[test]
fn recording_says_what_it_needs() {
    require_root!();
    let img = Image::new(32);
    let out = Command::new(tool())
        .args(["--record", "/dev/null", "--time-limit", "1s"])
        .arg(img.path(""))
        .arg("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--record watches one filesystem"), "{err}");
    // Without CAP_SYS_ADMIN: said so (the image's directory made
    // reachable for the unprivileged user first).
    use std::os::unix::fs::PermissionsExt;
    let top = img.path("");
    let top = top.parent().unwrap();
    fs::set_permissions(top, fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(tool())
        .args(["--record", "/dev/null", "--time-limit", "1s"])
        .arg(img.path(""))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs CAP_SYS_ADMIN"), "{err}");
}

#[test]
fn check_reports_known_layouts() {
    require_root!();
    let img = Image::new(32);
    let frag = img.path("frag");
    let flat = img.path("flat");
    write_fragmented(&frag, &bytes(1, 10 * BLOCK));
    fs::write(&flat, bytes(2, 10 * BLOCK)).unwrap();
    img.sync();
    assert_eq!(extents(&frag), 10);
    assert_eq!(extents(&flat), 1);
    let doc = json(&["-c", frag.to_str().unwrap(), flat.to_str().unwrap()]);
    let c = &doc["check"];
    assert_eq!(c["files"][0]["extents"], 10);
    assert_eq!(c["files"][0]["best"], 1);
    assert_eq!(c["files"][0]["ratio"], 90.0);
    assert_eq!(c["files"][1]["extents"], 1);
    assert_eq!(c["files"][1]["ratio"], 0.0);
    // (11 - 2) * 100 / 20 blocks = 45 %: score 80 + 45 / 5 = 89.
    assert_eq!(c["totals"]["extents"], 11);
    assert_eq!(c["totals"]["ratio"], 45.0);
    assert_eq!(c["totals"]["score"], 89.0);
    assert_eq!(c["totals"]["verdict"], "needs defragmentation");
    // Root reads the superblock: the real geometry.
    assert_eq!(c["totals"]["geometry_from_superblock"], true);
    let text = e4defrag_ok(&["-c", frag.to_str().unwrap(), flat.to_str().unwrap()]);
    assert!(text.contains("Fragmentation score       89.00"), "{text}");
    assert!(text.contains(&format!("1. {}", frag.display())), "{text}");
    // -c moves nothing.
    assert_eq!(extents(&frag), 10);
    img.fsck();
}

/// `-c` on a directory reports the filesystem's free space as e2fsprogs'
/// `e2freefrag` sees it: the same free blocks, number of free runs and
/// largest run.
#[test]
fn check_reports_free_space_like_e2freefrag() {
    require_root!();
    let img = Image::new(32);
    for i in 0..20u64 {
        fs::write(
            img.path(&format!("f{i}")),
            bytes(i, ((i + 1) * 3) as usize * BLOCK),
        )
        .unwrap();
    }
    for i in (0..20).step_by(2) {
        fs::remove_file(img.path(&format!("f{i}"))).unwrap();
    }
    // e2freefrag reads the image's bitmaps. Unmounted, the blocks held by
    // the allocator's preallocations are free again; mounted again, the
    // allocator (and GETFSMAP) sees what the bitmaps say.
    let mut img = img;
    img.unmount();
    let out = sh("e2freefrag", &[img.img.to_str().unwrap()]);
    img.remount();
    let doc = json(&["-c", img.mnt.to_str().unwrap()]);
    let free = &doc["check"]["free_space"][0];
    let text = e4defrag_ok(&["-c", img.mnt.to_str().unwrap()]);
    assert!(text.contains("Free space of"), "{text}");
    let ff = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |name: &str| -> u64 {
        let line = ff
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{ff}"));
        line[name.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(free["free_blocks"], field("Free blocks:"), "{ff}");
    assert_eq!(free["free_runs"], field("Num. free extent:"), "{ff}");
    // e2freefrag gives the largest run in KB.
    let largest_kb = free["largest_run"].as_u64().unwrap() * BLOCK as u64 / 1024;
    assert_eq!(largest_kb, field("Max. free extent:"), "{ff}");
    assert!(free["histogram"].as_array().is_some_and(|h| !h.is_empty()));
    img.fsck();
}

#[test]
fn dry_run_moves_nothing() {
    require_root!();
    let img = Image::new(32);
    let p = img.path("frag");
    let content = bytes(3, 40 * BLOCK);
    write_fragmented(&p, &content);
    let n = extents(&p);
    let out = e4defrag_ok(&["-n", "--backend", backend(), p.to_str().unwrap()]);
    assert!(
        out.contains(&format!("extents {n} -> 1, would move 40 blocks")),
        "{out}"
    );
    assert_eq!(extents(&p), n);
    assert_contents(&[(p, content)]);
    img.fsck();
}

#[test]
fn a_device_and_a_directory_without_r() {
    require_root!();
    let img = Image::new(64);
    fs::create_dir(img.path("d")).unwrap();
    let mut files = Vec::new();
    for (i, rel) in ["top", "d/a", "d/b"].iter().enumerate() {
        let p = img.path(rel);
        let content = bytes(10 + i as u64, 24 * BLOCK);
        write_fragmented(&p, &content);
        files.push((p, content));
    }
    std::os::unix::fs::symlink(img.path("top"), img.path("d/link")).unwrap();
    // The directory: only the files under it.
    let doc = json(&["--backend", backend(), img.path("d").to_str().unwrap()]);
    assert_eq!(doc["totals"]["files"], 2, "{doc}");
    assert_eq!(doc["totals"]["done"], 2);
    assert!(extents(&files[0].0) > 1, "top is outside d");
    // The device: everything on it (lost+found is skipped).
    let dev = img.device();
    let doc = json(&["--backend", backend(), &dev]);
    assert_eq!(doc["totals"]["done"], 1, "{doc}");
    assert_eq!(doc["totals"]["nothing_to_gain"], 2);
    assert!(doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| !f["path"].as_str().unwrap().contains("lost+found")));
    for (p, _) in &files {
        assert_eq!(extents(p), 1, "{}", p.display());
    }
    // The device through a link (as /dev/disk/by-uuid/... names it).
    let link = img._dir.path().join("by-uuid-link");
    std::os::unix::fs::symlink(&dev, &link).unwrap();
    let doc = json(&["--backend", backend(), link.to_str().unwrap()]);
    assert_eq!(doc["totals"]["failed"], 0, "{doc}");
    assert_eq!(doc["totals"]["nothing_to_gain"], 3, "{doc}");
    assert_contents(&files);
    img.fsck();
}

/// Runs e4defrag expecting failure; returns stderr.
fn e4defrag_fails(args: &[&str]) -> String {
    let out = e4defrag(args);
    assert_eq!(out.status.code(), Some(1), "e4defrag {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn bad_input_is_refused_clearly() {
    require_root!();
    let img = Image::new(32);
    let p = img.path("frag");
    let content = bytes(4, 16 * BLOCK);
    write_fragmented(&p, &content);
    let n = extents(&p);
    let ps = p.to_str().unwrap();

    let missing = img.path("missing");
    let err = e4defrag_fails(&[missing.to_str().unwrap()]);
    assert!(err.contains("missing") && err.contains("ENOENT"), "{err}");

    let err = e4defrag_fails(&["/proc/version"]);
    assert!(
        err.contains("/proc/version: not on an ext4 filesystem"),
        "{err}"
    );

    let link = img.path("link");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    let err = e4defrag_fails(&[link.to_str().unwrap()]);
    assert!(err.contains("symbolic link"), "{err}");

    // Consolidating free space chooses where files go: module only (the
    // host kernel has none); a file is no target for it.
    let mnt = img.mnt.to_str().unwrap();
    if !module() {
        let err = e4defrag_fails(&["--free-space", "--target-run", "1M", mnt]);
        assert!(err.contains("needs the ext4_defrag module"), "{err}");
    }
    let err = e4defrag_fails(&["--free-space", "--target-run", "1M", ps]);
    assert!(err.contains("takes a directory"), "{err}");

    // Immutable: no run can move it, a failure only with --strict.
    sh("chattr", &["+i", ps]);
    let err = e4defrag_fails(&["--strict", "--backend", backend(), ps]);
    let out = e4defrag_ok(&["--backend", backend(), ps]);
    sh("chattr", &["-i", ps]);
    assert!(err.contains(ps) && err.contains("immutable"), "{err}");
    assert!(out.contains("skipped (immutable"), "{out}");

    sh("mount", &["-o", "remount,ro", img.mnt.to_str().unwrap()]);
    let err = e4defrag_fails(&["--backend", backend(), ps]);
    assert!(err.contains("read-only"), "{err}");
    // -c still works on a read-only mount.
    e4defrag_ok(&["-c", ps]);
    sh("mount", &["-o", "remount,rw", img.mnt.to_str().unwrap()]);

    // -c of nothing that can be checked gives no verdict, and fails.
    let out = e4defrag(&["-c", "--json", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["check"]["totals"]["verdict"],
        "none: nothing could be checked"
    );
    assert_eq!(doc["check"]["totals"]["failed"], 1);
    let out = e4defrag(&["-c", missing.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Verdict: no problem"), "{text}");

    // One bad target does not stop the others, but the exit says it.
    let out = e4defrag(&["--backend", backend(), missing.to_str().unwrap(), ps]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(extents(&p), 1);
    assert!(n > 1);
    assert_contents(&[(p, content)]);
    img.fsck();
}

/// Waits until process `pid` is stopped (state T in /proc/PID/stat).
fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let state = stat.rsplit(") ").next().unwrap().chars().next().unwrap();
        if state == 'T' {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "e4defrag never reached the stop point"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_file_that_shrinks_during_the_run() {
    require_root!();
    // The module moves the file in one call, so there is no point between
    // planning and moving to stop at: test-30 skips this test by name (the
    // kernel's side of it is test-25's truncate between two steps of a
    // move). Run here with the module, it fails saying so, not passes.
    assert!(
        !module(),
        "needs the MOVE_EXT backend's stop point between planning and moving"
    );
    let img = Image::new(32);
    let p = img.path("frag");
    let content = bytes(5, 200 * BLOCK);
    write_fragmented(&p, &content);
    // Stop after planning the move, shrink the file, go on.
    let child = Command::new(tool())
        .args(["--backend", backend(), p.to_str().unwrap()])
        .env("E4DEFRAG_TEST_STOP_BEFORE", &p)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_stopped(child.id());
    OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(50 * BLOCK as u64)
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(p.to_str().unwrap()), "{err}");
    assert!(err.contains("shrank") || err.contains("changed"), "{err}");
    assert_contents(&[(p, content[..50 * BLOCK].to_vec())]);
    img.fsck();
}

/// e4defrag with standard output going to `stdout`; returns its stderr.
fn e4defrag_to(stdout: Stdio, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(tool())
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn output_errors_never_stop_a_run() {
    require_root!();
    let img = Image::new(64);
    fs::create_dir(img.path("d")).unwrap();
    let mut files = Vec::new();
    for i in 0..6 {
        let p = img.path(&format!("d/f{i}"));
        let content = bytes(40 + i, 12 * BLOCK);
        write_fragmented(&p, &content);
        files.push((p, content));
    }
    let d = img.path("d");
    let d = d.to_str().unwrap();
    let half: Vec<&str> = files[..3]
        .iter()
        .map(|(p, _)| p.to_str().unwrap())
        .collect();
    // A pipe nobody reads (`| head` after it quit): every write fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut args = vec!["-v", "--backend", backend()];
    args.extend(&half);
    let (code, err) = e4defrag_to(Stdio::from(writer), &args);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot write to standard output"), "{err}");
    assert!(err.contains("3 files: 3 done"), "summary lost: {err}");
    // A full disk behind standard output.
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let (code, err) = e4defrag_to(Stdio::from(full), &["-v", "--backend", backend(), d]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no storage space"), "{err}");
    assert!(err.contains("6 files: 3 done, 3 nothing to gain"), "{err}");
    for (p, _) in &files {
        assert_eq!(extents(p), 1, "{} left behind", p.display());
    }
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let (code, err) = e4defrag_to(Stdio::from(full), &["-c", "-v", d]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("6 files checked, 0 not"), "{err}");
    assert_contents(&files);
    img.fsck();
}

#[test]
fn names_that_are_not_utf8_round_trip_in_json() {
    require_root!();
    use std::os::unix::ffi::OsStrExt;
    let img = Image::new(32);
    fs::create_dir(img.path("d")).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"f\xff\xfe.bin");
    let p = img.path("d").join(name);
    let content = bytes(50, 10 * BLOCK);
    write_fragmented(&p, &content);
    let d = img.path("d");
    let d = d.to_str().unwrap();
    let as_bytes = |v: &Value| -> Vec<u8> {
        v.as_array()
            .unwrap_or_else(|| panic!("not an array of bytes: {v}"))
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect()
    };
    let doc = json(&["-c", d]);
    assert_eq!(
        as_bytes(&doc["check"]["files"][0]["path"]),
        p.as_os_str().as_bytes()
    );
    let doc = json(&["--backend", backend(), d]);
    assert_eq!(doc["totals"]["done"], 1, "{doc}");
    assert_eq!(as_bytes(&doc["files"][0]["path"]), p.as_os_str().as_bytes());
    // UTF-8 names stay plain strings.
    assert_eq!(doc["files"].as_array().unwrap().len(), 1);
    let doc = json(&["-c", img.path("d").parent().unwrap().to_str().unwrap()]);
    assert!(doc["check"]["sets"][0]["target"].is_string(), "{doc}");
    assert_eq!(extents(&p), 1);
    assert_contents(&[(p, content)]);
    img.fsck();
}

#[test]
fn inline_data_files_are_skipped_and_not_counted() {
    require_root!();
    let img = Image::with(64, &["-O", "inline_data"]);
    let mut files = scattered_dir(&img, "boot", 40);
    // Tiny files whose data ext4 keeps in the inode.
    for i in 0..5 {
        let p = img.path(&format!("boot/tiny{i}"));
        let content = bytes(60 + i, 40);
        fs::write(&p, &content).unwrap();
        files.push((p, content));
    }
    img.sync();
    let tiny = img.path("boot/tiny0");
    let lsattr = sh("lsattr", &[tiny.to_str().unwrap()]);
    let flags = String::from_utf8_lossy(&lsattr.stdout);
    assert!(
        flags.split(' ').next().unwrap().contains('N'),
        "not inline: {flags}"
    );
    let d = img.path("boot");
    let d = d.to_str().unwrap();
    // Only the 40 files with blocks are in the read-order figures.
    let doc = json(&["-c", "-r", d]);
    assert_eq!(doc["check"]["sets"][0]["files"], 40, "{doc}");
    let before = doc["check"]["sets"][0]["discontinuities"].as_u64().unwrap();
    for args in [
        vec!["-r", "--backend", backend(), d],
        vec!["--backend", backend(), d],
        vec!["--backend", backend(), tiny.to_str().unwrap()],
    ] {
        let doc = json(&args);
        assert_eq!(doc["totals"]["failed"], 0, "{args:?}: {doc}");
        let inline: Vec<_> = doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["path"].as_str().unwrap().contains("tiny"))
            .collect();
        assert!(!inline.is_empty());
        for f in inline {
            assert_eq!(f["status"], "skipped", "{f}");
            assert!(f["reason"].as_str().unwrap().contains("inline data"), "{f}");
        }
    }
    let after = discontinuities(&["-r", d]);
    println!("inline_data -r: {before} -> {after}");
    assert!(after < before, "{before} -> {after}");
    let text = e4defrag_ok(&["-v", "--backend", backend(), tiny.to_str().unwrap()]);
    assert!(text.contains("skipped (inline data"), "{text}");
    assert_contents(&files);
    img.fsck();
}

/// The data stretches of `path` as `(offset, end)` bytes (SEEK_DATA and
/// SEEK_HOLE), so holes can be compared before and after.
fn data_map(path: &Path) -> Vec<(i64, i64)> {
    use nix::unistd::{lseek, Whence};
    use std::os::fd::AsRawFd;
    let f = File::open(path).unwrap();
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok(data) = lseek(fd, at, Whence::SeekData) {
        let hole = lseek(fd, data, Whence::SeekHole).unwrap();
        out.push((data, hole));
        at = hole;
    }
    out
}

#[test]
fn sparse_files_in_a_set_take_only_their_blocks() {
    require_root!();
    let img = Image::new(64);
    let mut files = scattered_dir(&img, "boot", 30);
    // 200 MiB of logical size on a 64 MiB filesystem, 3 stretches of 3
    // blocks: its slot must be its 9 blocks, not its size.
    let p = img.path("boot/sparse");
    let f = File::create(&p).unwrap();
    let mut stretches = Vec::new();
    for (i, off) in [0u64, 80 << 20, 200 << 20].iter().enumerate() {
        let data = bytes(70 + i as u64, 3 * BLOCK);
        std::os::unix::fs::FileExt::write_all_at(&f, &data, *off).unwrap();
        stretches.push((*off, data));
    }
    drop(f);
    img.sync();
    let map = data_map(&p);
    let blocks = fs::metadata(&p).unwrap().blocks();
    assert_eq!(map.len(), 3, "{map:?}");
    let d = img.path("boot");
    let d = d.to_str().unwrap();
    let before = discontinuities(&["-r", d]);
    let doc = json(&["-r", "--backend", backend(), d]);
    assert_eq!(doc["totals"]["failed"], 0, "{doc}");
    assert_eq!(doc["totals"]["skipped"], 0, "{doc}");
    let after = discontinuities(&["-r", d]);
    println!("sparse -r: {before} -> {after}");
    assert!(after <= 3, "{before} -> {after}");
    // Holes stay holes, the data is where it was in the file.
    assert_eq!(data_map(&p), map);
    assert_eq!(fs::metadata(&p).unwrap().blocks(), blocks);
    sync_and_drop_caches(&p);
    let f = File::open(&p).unwrap();
    for (off, data) in &stretches {
        let mut now = vec![0u8; data.len()];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut now, *off).unwrap();
        assert!(now == *data, "stretch at {off} changed");
    }
    drop(f);
    files.retain(|(q, _)| q != &p);
    assert_contents(&files);
    img.fsck();
}

#[test]
fn a_set_is_not_moved_where_it_would_read_worse() {
    require_root!();
    pin_to_cpu0();
    let img = Image::new(32);
    fs::create_dir(img.path("set")).unwrap();
    fs::create_dir(img.path("fill")).unwrap();
    // 20 files of 3 blocks, one after the other on disk but for the last,
    // which lies after 1 MiB of other data: one jump.
    let mut files = Vec::new();
    for i in 0..20 {
        if i == 19 {
            open_sync(&img.path("fill/between"))
                .write_all(&bytes(1, 256 * BLOCK))
                .unwrap();
        }
        let p = img.path(&format!("set/f{i:02}"));
        let content = bytes(80 + i, 3 * BLOCK);
        open_sync(&p).write_all(&content).unwrap();
        files.push((p, content));
    }
    // The rest of the filesystem in 8-block files, every other one
    // deleted: free space only in 8-block holes. (Without ext4's own
    // reserve, which would stay one free run at the end.)
    let name = img.device();
    let name = Path::new(&name)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    fs::write(format!("/sys/fs/ext4/{name}/reserved_clusters"), "0").unwrap();
    let mut n = 0;
    while open_sync(&img.path(&format!("fill/g{n:05}")))
        .write_all(&bytes(n, 8 * BLOCK))
        .is_ok()
    {
        n += 1;
    }
    // What preallocations gave back at ENOSPC, in single blocks.
    let mut m = 0;
    while open_sync(&img.path(&format!("fill/h{m:05}")))
        .write_all(&bytes(m, BLOCK))
        .is_ok()
    {
        m += 1;
        if m % 64 == 0 {
            img.sync();
        }
    }
    img.sync();
    for i in (0..n).step_by(2) {
        fs::remove_file(img.path(&format!("fill/g{i:05}"))).unwrap();
    }
    img.sync();
    let d = img.path("set");
    let d = d.to_str().unwrap();
    // Written in path order, so in that order it has one jump (its hash
    // order, the default, would have many).
    let path_order = ["-r", "--order-by", "path", d];
    let before = discontinuities(&path_order);
    assert_eq!(before, 1, "the set should have one jump");
    // Its 60 blocks would land in about eight holes: worse. Nothing moves
    // (with the module, only when it may not make room: --max-evacuate 0).
    let mut args = vec!["-r", "--order-by", "path", "--backend", backend()];
    if module() {
        args.extend(["--max-evacuate", "0"]);
    }
    args.push(d);
    let doc = json(&args);
    println!("{}", doc["sets"][0]);
    assert_eq!(doc["totals"]["moved_blocks"], 0, "{}", doc["totals"]);
    assert_eq!(doc["totals"]["nothing_to_gain"], 20, "{}", doc["totals"]);
    assert_eq!(doc["totals"]["failed"], 0);
    assert_eq!(discontinuities(&path_order), before);
    assert_contents(&files);
    if module() {
        // Making room (the default): fillers moved out of a region, the
        // set packed there.
        let text = e4defrag_ok(&["-r", "--backend", backend(), d]);
        assert!(text.contains("room made at block"), "{text}");
        assert_eq!(discontinuities(&["-r", d]), 0, "{text}");
        assert_contents(&files);
    }
    img.fsck();
}

// --- What a first real use turned up, round two (issue 24) ---

/// Sectors written to the loop device `dev` so far (/sys/block/*/stat).
fn sectors_written(dev: &str) -> u64 {
    let name = Path::new(dev).file_name().unwrap().to_str().unwrap();
    let stat = fs::read_to_string(format!("/sys/block/{name}/stat")).unwrap();
    stat.split_whitespace().nth(6).unwrap().parse().unwrap()
}

#[test]
fn dry_runs_write_nothing_and_work_read_only() {
    require_root!();
    let img = Image::new(64);
    let p = img.path("frag");
    let content = bytes(300, 40 * BLOCK);
    write_fragmented(&p, &content);
    let files = scattered_dir(&img, "set", 60);
    let d = img.path("set");
    let (ps, ds) = (p.to_str().unwrap(), d.to_str().unwrap());
    let n = extents(&p);
    let before_jumps = discontinuities(&[ds]);
    img.sync();
    let dev = img.device();
    let w0 = sectors_written(&dev);
    let out = e4defrag_ok(&["-n", "--backend", backend(), ps]);
    assert!(
        out.contains(&format!("extents {n} -> 1, would move 40 blocks")),
        "{out}"
    );
    let doc = json(&["-r", "-n", "--backend", backend(), ds]);
    img.sync();
    let written = sectors_written(&dev) - w0;
    // A trial donor (O_TMPFILE + fallocate of the file's size) cost 96-112
    // sectors of journal per run.
    assert_eq!(written, 0, "a dry run wrote {written} sectors");
    // The set's plan, and the totals say the same.
    let set = &doc["sets"][0];
    let after = set["after"]["discontinuities"].as_u64().unwrap();
    assert_eq!(set["before"]["discontinuities"], before_jumps, "{doc}");
    assert!(
        after < before_jumps,
        "the dry run's plan: {before_jumps} -> {after}: {doc}"
    );
    assert_eq!(doc["totals"]["dry_run"], 60, "{doc}");
    let text = e4defrag_ok(&["-r", "-n", "--backend", backend(), ds]);
    assert!(
        text.contains(&format!(
            "dry run: 60 files, read-order discontinuities {before_jumps} -> {after}"
        )),
        "{text}"
    );
    assert!(text.contains("60 dry run"), "{text}");
    // -r DEVICE: its filesystem's files as one set (it was a per-file run,
    // without a word).
    let doc = json(&["-r", "-n", "--backend", backend(), &dev]);
    assert_eq!(doc["sets"].as_array().map(Vec::len), Some(1), "{doc}");
    // On a read-only mount (it was refused: "mounted read-only").
    sh("mount", &["-o", "remount,ro", img.mnt.to_str().unwrap()]);
    let out = e4defrag_ok(&["-n", "--backend", backend(), ps]);
    sh("mount", &["-o", "remount,rw", img.mnt.to_str().unwrap()]);
    assert!(out.contains("would move 40 blocks"), "{out}");
    assert_eq!(extents(&p), n);
    assert_eq!(discontinuities(&[ds]), before_jumps);
    let mut all = files;
    all.push((p, content));
    assert_contents(&all);
    img.fsck();
}

#[test]
fn goal_without_the_module_is_refused() {
    require_root!();
    if module() {
        return; // With the module --goal is honoured (test-20).
    }
    let img = Image::new(32);
    let p = img.path("frag");
    let content = bytes(301, 16 * BLOCK);
    write_fragmented(&p, &content);
    let n = extents(&p);
    // It placed the file elsewhere and exited 0.
    let out = e4defrag(&[
        "--backend",
        "move-ext",
        "--goal",
        "5000",
        p.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--goal 5000 needs the ext4_defrag module"),
        "{err}"
    );
    assert_eq!(extents(&p), n, "moved although refused");
    // No "[default: 0]" for an option that has no default.
    let help = e4defrag_ok(&["--help"]);
    let goal = help
        .lines()
        .skip_while(|l| !l.contains("--goal <BLOCK>"))
        .take(4)
        .collect::<String>();
    assert!(!goal.contains("[default: 0]"), "{goal}");
    assert_contents(&[(p, content)]);
    img.fsck();
}

#[test]
fn files_no_run_can_move_are_skipped_not_failed() {
    require_root!();
    let img = Image::new(64);
    let d = img.path("d");
    fs::create_dir(&d).unwrap();
    let mut files = Vec::new();
    for name in ["plain", "locked", "appended"] {
        let p = d.join(name);
        let content = bytes(302 + files.len() as u64, 16 * BLOCK);
        write_fragmented(&p, &content);
        files.push((p, content));
    }
    sh("chattr", &["+i", files[1].0.to_str().unwrap()]);
    sh("chattr", &["+a", files[2].0.to_str().unwrap()]);
    // A running program's file: ETXTBSY when opened for writing (named
    // sleep: busybox, the guest's, runs the applet its name says).
    let prog = d.join("sleep");
    fs::copy("/bin/sleep", &prog).unwrap();
    img.sync();
    let mut running = Command::new(&prog).arg("60").spawn().unwrap();
    // An active swap file is not tried here: a swap file on a loop
    // device over the tests' tmpfs deadlocked the host once (its pages
    // swapped out into the image they are part of, and every sync() after
    // that waited for the loop device); engine's unit tests read
    // /proc/swaps' text.
    let ds = d.to_str().unwrap();
    let out = e4defrag(&["--backend", backend(), ds]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let strict = e4defrag(&["--strict", "--json", "--backend", backend(), ds]);
    let doc: Value = serde_json::from_slice(&strict.stdout).unwrap();
    running.kill().unwrap();
    running.wait().unwrap();
    sh("chattr", &["-i", files[1].0.to_str().unwrap()]);
    sh("chattr", &["-a", files[2].0.to_str().unwrap()]);
    // Before: each was a failure, and the run exited 1 (every week, with
    // a /swapfile).
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("locked: skipped (immutable (chattr +i))"),
        "{stdout}"
    );
    assert!(
        stdout.contains("appended: skipped (append-only (chattr +a))"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sleep: skipped (busy: a running program's file"),
        "{stdout}"
    );
    let skipped = 3;
    assert!(
        stdout.contains(&format!("{skipped} skipped, 0 failed")),
        "{stdout}"
    );
    assert_eq!(extents(&files[0].0), 1, "the movable file was not moved");
    // --strict: the same files are failures.
    assert_eq!(strict.status.code(), Some(1), "{doc}");
    assert_eq!(doc["totals"]["failed"], skipped, "{doc}");
    let locked = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("locked"))
        .unwrap();
    assert_eq!(locked["cannot_move"], true, "{locked}");
    assert_contents(&files);
    img.fsck();
}

#[test]
fn sigint_stops_between_moves_and_says_what_was_done() {
    require_root!();
    let img = Image::new(64);
    let d = img.path("d");
    fs::create_dir(&d).unwrap();
    let mut files = Vec::new();
    for i in 0..12 {
        let p = d.join(format!("f{i:02}"));
        let content = bytes(310 + i, 32 * BLOCK);
        write_fragmented(&p, &content);
        files.push((p, content));
    }
    // 12 x 128 KiB at 0.2 MB/s: about 8 s; interrupted after 1.5 s.
    let child = Command::new(tool())
        .args([
            "--backend",
            backend(),
            "--max-rate",
            "0.2",
            d.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // Before: killed by the signal, nothing printed.
    assert_eq!(out.status.code(), Some(130), "{stdout}{stderr}");
    assert!(stderr.contains("stopped by SIGINT after"), "{stderr}");
    let summary = stdout
        .lines()
        .find(|l| l.contains(" done, "))
        .unwrap_or_else(|| panic!("no summary: {stdout}"));
    let done: usize = summary
        .split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let moved = files.iter().filter(|(p, _)| extents(p) == 1).count();
    println!("SIGINT after 1.5 s: {summary}");
    assert!(done >= 1 && done < files.len(), "{summary}");
    assert_eq!(moved, done, "{summary}");
    assert_contents(&files);
    img.fsck();
}

/// Physical blocks of every file in `files`: which have moved since.
fn first_blocks(files: &[(PathBuf, Vec<u8>)]) -> Vec<Vec<(u64, u64)>> {
    files.iter().map(|(p, _)| physical(p)).collect()
}

#[test]
fn max_rate_paces_a_set_as_it_goes() {
    require_root!();
    let img = Image::new(64);
    let files = scattered_dir(&img, "set", 120);
    let blocks: u64 = files
        .iter()
        .map(|(_, c)| c.len().div_ceil(BLOCK) as u64)
        .sum();
    let before = first_blocks(&files);
    let rate = 0.4e6;
    let t0 = Instant::now();
    let child = Command::new(tool())
        .args([
            "-r",
            "--backend",
            backend(),
            "--max-rate",
            "0.4",
            img.path("set").to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Sampled one second in: what moved by then must be what the rate
    // allows (and a file or chunk more), not the whole set followed by
    // idling until the average fits.
    std::thread::sleep(Duration::from_millis(1000));
    let now = first_blocks(&files);
    let elapsed = t0.elapsed().as_secs_f64();
    let moved_bytes: u64 = files
        .iter()
        .zip(before.iter().zip(&now))
        .filter(|(_, (b, n))| b != n)
        .map(|((_, c), _)| c.len().div_ceil(BLOCK) as u64 * BLOCK as u64)
        .sum();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total = t0.elapsed().as_secs_f64();
    let allowed = rate * elapsed + 3.0 * BLOCK as f64;
    println!(
        "-r --max-rate 0.4: {moved_bytes} bytes moved after {elapsed:.2} s (allowed {allowed:.0}); \
         {blocks} blocks in {total:.2} s"
    );
    assert!(
        (moved_bytes as f64) <= allowed,
        "{moved_bytes} bytes in {elapsed:.2} s at 0.4 MB/s"
    );
    assert!(
        total >= 0.9 * (blocks * BLOCK as u64) as f64 / rate,
        "{total:.2} s"
    );
    assert_contents(&files);
    img.fsck();
}

#[test]
fn recording_a_directory_lists_only_its_files() {
    require_root!();
    let img = Image::new(32);
    for d in ["app", "other"] {
        fs::create_dir(img.path(d)).unwrap();
        for j in 0..3 {
            fs::write(img.path(&format!("{d}/f{j}")), bytes(j, 5000)).unwrap();
        }
    }
    img.sync();
    let elsewhere = tempfile::tempdir().unwrap();
    let list = elsewhere.path().join("app.list");
    let mut want = Vec::new();
    let (stdout, got) = record_while(&list, &img.path("app"), || {
        use std::io::Read;
        for j in 0..3 {
            for d in ["other", "app"] {
                let p = img.path(&format!("{d}/f{j}"));
                let mut buf = Vec::new();
                File::open(&p).unwrap().read_to_end(&mut buf).unwrap();
                if d == "app" {
                    want.push(p.display().to_string());
                }
            }
        }
    });
    // Before: the whole filesystem, other/ included, while it said it
    // recorded app/.
    assert_eq!(got, want);
    assert!(
        stdout.contains("3 files recorded under") && stdout.contains("3 elsewhere"),
        "{stdout}"
    );
}

#[test]
fn messages_say_what_happened() {
    require_root!();
    let img = Image::new(32);
    let p = img.path("frag");
    let content = bytes(320, 16 * BLOCK);
    write_fragmented(&p, &content);
    let missing = img.path("missing");
    // JSON for a file that could not be opened claims no counts.
    let out = e4defrag(&["--json", "--backend", backend(), missing.to_str().unwrap()]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &doc["files"][0];
    assert_eq!(f["errno"], "ENOENT", "{doc}");
    assert!(
        f.get("blocks").is_none() && f.get("extents_before").is_none(),
        "{f}"
    );
    // -c of nothing that exists: the error, no report of zero files.
    let out = e4defrag(&["-c", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("ENOENT"));
    // tmpfs by name (the host's /dev/shm, the guest's /tmp).
    let tmpfs = ["/dev/shm", "/tmp", "/run"].into_iter().find(|d| {
        nix::sys::statfs::statfs(*d)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
    });
    if let Some(dir) = tmpfs {
        let out = e4defrag(&["-c", dir]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not on an ext4 filesystem (tmpfs"), "{err}");
    }
    // Usage names the program (it named argv[0]'s path).
    let err = String::from_utf8_lossy(&e4defrag(&["--bogus"]).stderr).into_owned();
    assert!(err.contains("Usage: e4defrag "), "{err}");
    assert_contents(&[(p, content)]);
    img.fsck();
}

/// Bytes in a size as indicatif prints it: `1.50 MiB`, `512 B`.
fn size_bytes(number: &str, unit: &str) -> Option<f64> {
    let n: f64 = number.parse().ok()?;
    let shift = ["B", "KiB", "MiB", "GiB", "TiB"]
        .iter()
        .position(|u| *u == unit)?;
    Some(n * (1u64 << (10 * shift)) as f64)
}

#[test]
fn the_progress_bar_is_right_on_1k_blocks() {
    require_root!();
    let img = Image::with(32, &["-b", "1024"]);
    let d = img.path("d");
    fs::create_dir(&d).unwrap();
    let mut files = Vec::new();
    for i in 0..6 {
        let p = d.join(format!("f{i}"));
        let content = bytes(330 + i, 24 * BLOCK);
        write_fragmented(&p, &content);
        files.push((p, content));
    }
    // On a terminal (script's pty), paced so that the bar is drawn often.
    let cmd = format!(
        "{} --backend {} --max-rate 0.2 {}",
        tool(),
        backend(),
        d.display()
    );
    let pty = Command::new("script")
        .args(["-qec", "true", "/dev/null"])
        .output();
    if !pty.is_ok_and(|o| o.status.success()) {
        println!("skipped: no script(1) or pseudo-terminal here to give the tool a terminal");
        return;
    }
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // Every "done/total" the bar drew: done never past the total (it
    // counted 4 KiB blocks against 1 KiB ones: 9600/2402).
    let tokens: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|t| !t.is_empty())
        .collect();
    let mut draws = 0;
    for w in tokens.windows(3) {
        let Some((u1, n2)) = w[1].split_once('/') else {
            continue;
        };
        let (Some(done), Some(total)) = (size_bytes(w[0], u1), size_bytes(n2, w[2])) else {
            continue;
        };
        draws += 1;
        assert!(
            done <= total * 1.01,
            "the bar drew {} {} past its total",
            w[0],
            w[1]
        );
        assert!(
            total >= (6 * 24 * BLOCK) as f64 * 0.99,
            "total {total}: {text}"
        );
    }
    println!("progress bar on 1 KiB blocks: {draws} draws, none past the total");
    assert!(draws > 0, "no progress drawn on a terminal: {text}");
    assert_contents(&files);
    img.fsck();
}

/// The peak resident memory (KiB) of `tool args`, as GNU time reports it
/// (its own small process forks the tool: a fork of this test process
/// would count this process's memory as the tool's); `None` without
/// /usr/bin/time.
fn peak_rss_kib(args: &[&str]) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(tool())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines().last()?.trim().parse().ok()
}

#[test]
fn checking_takes_memory_flat_in_the_number_of_files() {
    require_root!();
    let img = Image::with(64, &["-N", "8192"]);
    for (dir, n) in [("few", 500), ("many", 5000)] {
        let d = img.path(dir);
        fs::create_dir(&d).unwrap();
        for i in 0..n {
            fs::write(
                d.join(format!("file-with-a-name-of-some-length-{i:05}")),
                b"x",
            )
            .unwrap();
        }
    }
    img.sync();
    let (Some(few), Some(many)) = (
        peak_rss_kib(&["-c", img.path("few").to_str().unwrap()]),
        peak_rss_kib(&["-c", img.path("many").to_str().unwrap()]),
    ) else {
        println!("skipped: no GNU time (/usr/bin/time) to measure the peak memory");
        return;
    };
    // It grew by ~420 bytes a file (every path, layout and row kept): 1.8
    // MiB more for 4,500 more files.
    println!("-c peak RSS: 500 files {few} KiB, 5,000 files {many} KiB");
    assert!(
        many.saturating_sub(few) < 512,
        "{few} KiB -> {many} KiB for 4,500 more files"
    );
    img.fsck();
}

#[test]
fn a_set_is_not_split_where_the_free_space_is_in_pieces() {
    require_root!();
    let img = Image::new(64);
    // 200 scattered files of 1-3 blocks (2-block holes between them), and
    // the rest of the free space in 160-block holes: 160-block fillers,
    // every other one deleted. No free run holds the set: a donor for it
    // comes back in pieces, and a file laid across a piece's end is cut.
    let files = scattered_dir(&img, "set", 200);
    pin_to_cpu0();
    let fill = img.path("fill");
    fs::create_dir(&fill).unwrap();
    // Allocated, not written (fallocate): the same holes, without
    // writing 60 MB under TCG in the guest.
    let filler = |path: PathBuf| {
        let f = File::create(path).ok()?;
        let len = (160 * BLOCK) as i64;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
        nix::fcntl::fallocate(fd, nix::fcntl::FallocateFlags::empty(), 0, len).ok()
    };
    let mut n = 0;
    while filler(fill.join(format!("h{n}"))).is_some() {
        n += 1;
    }
    for i in (0..n).step_by(2) {
        fs::remove_file(fill.join(format!("h{i}"))).unwrap();
    }
    img.sync();
    let ds = img.path("set");
    let ds = ds.to_str().unwrap();
    let before: u64 = files.iter().map(|(p, _)| extents(p)).sum();
    let jumps = discontinuities(&[ds]);
    let doc = json(&["-r", "--backend", backend(), ds]);
    let after: u64 = files.iter().map(|(p, _)| extents(p)).sum();
    let jumps_after = discontinuities(&[ds]);
    println!(
        "set over 160-block holes: jumps {jumps} -> {jumps_after}, extents {before} -> {after}, \
         {} blocks moved",
        doc["totals"]["moved_blocks"]
    );
    // Files were cut where the donor's pieces ended (400 -> 407 extents
    // in the report; a judgment by jumps alone let it happen).
    assert!(after <= before, "files split: extents {before} -> {after}");
    assert!(jumps_after <= jumps, "{jumps} -> {jumps_after}");
    assert_contents(&files);
    img.fsck();
}

#[test]
fn a_full_filesystem_is_said_once() {
    require_root!();
    // No blocks reserved for root, which GETFSMAP counts as free.
    let img = Image::with(32, &["-m", "0"]);
    let files = scattered_dir(&img, "set", 60);
    let set_blocks: u64 = files
        .iter()
        .map(|(_, c)| c.len().div_ceil(BLOCK) as u64)
        .sum();
    // Fill all but a tenth of the set's size.
    let st = nix::sys::statvfs::statvfs(&img.mnt).unwrap();
    let free = st.blocks_available() as u64;
    let fill = (free - set_blocks / 10) * BLOCK as u64;
    sh(
        "fallocate",
        &["-l", &fill.to_string(), img.path("fill").to_str().unwrap()],
    );
    let out = e4defrag(&[
        "-r",
        "--backend",
        backend(),
        img.path("set").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    println!("-r on a full filesystem: {err}");
    // It said "the set goes into the free runs there are", then failed
    // for want of free space.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("free blocks for the new copy"), "{err}");
    assert!(!err.contains("free runs there are"), "{err}");
    fs::remove_file(img.path("fill")).unwrap();
    assert_contents(&files);
    img.fsck();
}

#[test]
fn failures_name_what_failed() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let img = Image::with(32, &["-N", "64"]);
    let d = img.path("d");
    fs::create_dir_all(d.join("closed")).unwrap();
    fs::write(d.join("closed/f"), b"x").unwrap();
    fs::write(d.join("open"), b"x").unwrap();
    fs::set_permissions(d.join("closed"), fs::Permissions::from_mode(0o700)).unwrap();
    for p in [img.mnt.as_path(), img.mnt.parent().unwrap(), d.as_path()] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    // An unreadable subdirectory is blamed, not the directory walked.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(tool())
        .args(["-c", "--json"])
        .arg(&d)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed = &doc["failures"][0];
    assert_eq!(failed["path"], d.join("closed").to_str().unwrap(), "{doc}");
    assert_eq!(failed["errno"], "EACCES", "{doc}");
    // An order list that cannot be read: path, call, errno.
    let out = e4defrag(&["-r", "--order", "/nonexistent.list", d.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent.list: read (the order list): ENOENT: No such file or directory"),
        "{err}"
    );
    // No inode left for the stock backend's donor: said so (it was a bare
    // "open(O_TMPFILE) donor: ENOSPC").
    if !module() {
        let frag = d.join("frag");
        let content = bytes(340, 16 * BLOCK);
        write_fragmented(&frag, &content);
        let mut n = 0;
        while fs::write(d.join(format!("i{n}")), b"").is_ok() {
            n += 1;
        }
        let out = e4defrag(&["--backend", "move-ext", frag.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no free inode"), "{err}");
        for i in 0..n {
            fs::remove_file(d.join(format!("i{i}"))).unwrap();
        }
        assert_contents(&[(frag, content)]);
    }
    img.fsck();
}
