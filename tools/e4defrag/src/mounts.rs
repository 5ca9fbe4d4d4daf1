//! Mounted filesystems, from `/proc/self/mountinfo`: where a device is
//! mounted, and which device a directory's filesystem lives on.

use std::path::PathBuf;

/// One line of mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// `st_dev` of files on it, as (major, minor).
    pub dev: (u32, u32),
    /// The directory inside the filesystem that is mounted ("/" for all).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// The mount source, usually the device path.
    pub source: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    String::from_utf8_lossy(&unescape_bytes(s.as_bytes())).into_owned()
}

/// Undoes the octal escapes (`\040` for a space) that mountinfo and
/// `/proc/swaps` write for blanks in names.
pub fn unescape_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Parses the text of a mountinfo file.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let (major, minor) = f.get(2)?.split_once(':')?;
            Some(Mount {
                dev: (major.parse().ok()?, minor.parse().ok()?),
                root: unescape(f.get(3)?).into(),
                mount_point: unescape(f.get(4)?).into(),
                read_only: f.get(5)?.split(',').any(|o| o == "ro"),
                fs_type: (*r.first()?).to_string(),
                source: unescape(r.get(1)?),
            })
        })
        .collect()
}

/// The mounts of this process.
pub fn read() -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// Splits a `st_dev`/`st_rdev` into (major, minor).
pub fn split_dev(dev: u64) -> (u32, u32) {
    (
        nix::sys::stat::major(dev) as u32,
        nix::sys::stat::minor(dev) as u32,
    )
}

/// The mount that shows all of the filesystem with device number `dev`
/// (root "/"), the most recent one if there are several.
pub fn whole_fs(mounts: &[Mount], dev: (u32, u32)) -> Option<&Mount> {
    mounts
        .iter()
        .rev()
        .find(|m| m.dev == dev && m.root.as_os_str() == "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
40 22 7:0 / /mnt/my\\040disk rw,relatime shared:20 - ext4 /dev/loop0 rw
41 22 7:0 /sub /srv ro,relatime shared:20 - ext4 /dev/loop0 rw
42 22 0:5 / /dev rw,nosuid - devtmpfs udev rw
";

    #[test]
    fn parses_mountinfo() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].mount_point, PathBuf::from("/mnt/my disk"));
        assert_eq!(m[1].dev, (7, 0));
        assert_eq!(m[1].source, "/dev/loop0");
        assert_eq!(m[1].fs_type, "ext4");
        assert!(!m[1].read_only);
        assert!(m[2].read_only);
        assert_eq!(m[2].root, PathBuf::from("/sub"));
        assert_eq!(
            whole_fs(&m, (7, 0)).unwrap().mount_point,
            PathBuf::from("/mnt/my disk")
        );
        assert!(whole_fs(&m, (9, 9)).is_none());
    }
}
