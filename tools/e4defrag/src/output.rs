//! Standard output that never stops a run, and paths in JSON that survive
//! any bytes a file name holds.
//!
//! A closed pipe (`e4defrag -r -v DIR | head`) or a full disk behind
//! standard output must not stop files half way through being placed:
//! the first write error is kept, later writes are skipped, and the run
//! goes on. The caller asks [`error`] at the end, says so on standard
//! error with the summary, and exits with failure.

use serde::Serializer;
use std::{
    ffi::OsStr,
    io::{self, Write},
    os::unix::ffi::OsStrExt,
    path::Path,
    sync::Mutex,
};

/// The first error writing to standard output, if any.
static FAILED: Mutex<Option<io::ErrorKind>> = Mutex::new(None);

/// Writes `text` to standard output, unless an earlier write failed;
/// a failure is kept for [`error`].
pub fn print(text: &str) {
    let mut failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    if failed.is_some() {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        *failed = Some(e.kind());
    }
}

/// [`print`] of `line` and a newline.
pub fn line(line: &str) {
    print(&format!("{line}\n"));
}

/// Writes `e4defrag: ` and `message` on standard error; an error there
/// is ignored (there is nowhere left to say it), never fatal.
pub fn warn(message: &str) {
    let _ = writeln!(io::stderr().lock(), "e4defrag: {message}");
}

/// Why standard output could not be written, if it could not.
pub fn error() -> Option<io::Error> {
    let failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    failed.map(io::Error::from)
}

/// A path in JSON: a string when it is UTF-8 (nearly always), else the
/// array of its bytes, so that every name round-trips exactly and no
/// string can be mistaken for another path.
pub fn path_json<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    let os: &OsStr = path.as_os_str();
    match os.to_str() {
        Some(text) => s.serialize_str(text),
        None => s.collect_seq(os.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{ffi::OsString, os::unix::ffi::OsStringExt, path::PathBuf};

    #[derive(serde::Serialize)]
    struct P(#[serde(serialize_with = "path_json")] PathBuf);

    #[test]
    fn paths_round_trip() {
        let utf8 = serde_json::to_value(P("/m/ä b".into())).unwrap();
        assert_eq!(utf8, "/m/ä b");
        let raw = PathBuf::from(OsString::from_vec(b"/m/f\xff".to_vec()));
        let v = serde_json::to_value(P(raw)).unwrap();
        let bytes: Vec<u8> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(bytes, b"/m/f\xff");
    }
}
