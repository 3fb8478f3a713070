//! The files a configuration names — the config file itself, `password_file`, `url_file`,
//! `sslrootcert`, `alerting.state_file` — read without ever blocking and never without bound.
//!
//! Every such read goes through [`read_limited`]: the path must be a regular file (a FIFO would
//! block the reader until a writer shows up, `/dev/zero` would be read until memory runs out, a
//! directory cannot be read at all), and no more than a cap is read. The file is opened with
//! `O_NONBLOCK`, so that a path swapped for a FIFO between the check and the open cannot block
//! either, and checked again on the open descriptor (`fstat`).

use std::fmt;
use std::fs::{File, FileType, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Largest configuration file read: 4 MiB. A file with a hundred targets and rules is under
/// 100 KiB, so anything near the cap is a mistake (a wrong path), not a configuration.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Largest secret file (`password_file`, `url_file`) read: 64 KiB. A password or a webhook URL
/// is well under 1 KiB.
pub const MAX_SECRET_BYTES: u64 = 64 << 10;

/// Largest `sslrootcert` read: 4 MiB. The whole Mozilla CA bundle is about 220 KiB.
pub const MAX_CERT_BYTES: u64 = 4 << 20;

/// Largest alert state file read at start-up: 64 MiB. It holds one entry per alert and per
/// capacity change, typically a few KiB.
pub const MAX_STATE_BYTES: u64 = 64 << 20;

/// Why a file named by the configuration cannot be read.
#[derive(Debug)]
pub enum ReadError {
    /// The path is something else than a regular file: a directory, a FIFO, a device, a socket.
    NotRegular(&'static str),
    /// The file is larger than the cap of its kind.
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The file cannot be opened or read (missing, no permission, I/O error).
    Io(std::io::Error),
}

impl ReadError {
    /// True when the path does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotRegular(kind) => write!(f, "it is {kind}, not a regular file"),
            ReadError::TooLarge { limit } => {
                write!(f, "it is larger than {}", human_size(*limit))
            }
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads the regular file at `path`, refusing anything else and anything larger than `limit`
/// bytes at once: never blocks on a FIFO, never reads more than `limit + 1` bytes.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    // A first look before opening, so that no device is ever opened (opening one can have
    // effects of its own); the check is repeated on the descriptor for a path swapped meanwhile.
    require_regular(&std::fs::metadata(path)?.file_type())?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    require_regular(&meta.file_type())?;
    if meta.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    read_at_most(file, limit)
}

/// Reads `file` to its end, but no more than `limit` bytes: a file that grows past the
/// `fstat` size while being read is cut off and refused.
fn read_at_most(file: File, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

fn require_regular(t: &FileType) -> Result<(), ReadError> {
    match kind_of(t) {
        None => Ok(()),
        Some(kind) => Err(ReadError::NotRegular(kind)),
    }
}

/// What a path that is not a regular file is, in words; `None` for a regular file.
fn kind_of(t: &FileType) -> Option<&'static str> {
    Some(if t.is_file() {
        return None;
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    })
}

/// `64 KiB`, `4 MiB`: caps as people write them.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Checks that alert state can be kept at `path`: an existing path must be a regular file, and
/// its directory must exist and take a new file. Writability is probed by creating (and
/// removing) a file there, because permission bits alone do not answer it: root ignores them,
/// and a read-only file system or an ACL refuses what the mode allows.
pub fn check_state_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            if let Some(kind) = kind_of(&meta.file_type()) {
                return Err(format!(
                    "{} is {kind}, not a regular file: alert state could never be saved",
                    path.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // ENOTDIR and the like: reported below, for the directory.
        Err(_) => {}
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => probe_writable(dir),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("directory {} does not exist", dir.display()))
        }
        Err(e) => Err(format!("cannot use directory {}: {e}", dir.display())),
    }
}

/// Creates and removes a uniquely named file in `dir`.
fn probe_writable(dir: &Path) -> Result<(), String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let probe = dir.join(format!(
        ".poolwatch-write-probe-{}-{nanos}",
        std::process::id()
    ));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "poolwatch cannot write in directory {}: {e}",
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    }

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "12345").unwrap();
        let pipe = dir.path().join("pipe");
        fifo(&pipe);
        let cases: [(&Path, u64, Result<&str, &str>); 6] = [
            (&file, 5, Ok("12345")),
            (&file, 4, Err("it is larger than 4 bytes")),
            (
                &pipe,
                5,
                Err("it is a FIFO (named pipe), not a regular file"),
            ),
            (dir.path(), 5, Err("it is a directory, not a regular file")),
            (
                Path::new("/dev/zero"),
                5,
                Err("it is a character device, not a regular file"),
            ),
            (
                &dir.path().join("missing"),
                5,
                Err("No such file or directory (os error 2)"),
            ),
        ];
        for (path, limit, want) in cases {
            let got = read_limited(path, limit)
                .map(|b| String::from_utf8(b).unwrap())
                .map_err(|e| e.to_string());
            assert_eq!(
                got.as_deref().map_err(String::as_str),
                want,
                "{}",
                path.display()
            );
        }
        assert!(read_limited(&dir.path().join("missing"), 5)
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(MAX_CONFIG_BYTES), "4 MiB");
        assert_eq!(human_size(MAX_SECRET_BYTES), "64 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }

    #[test]
    fn state_files_must_be_writable_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let regular = dir.path().join("regular");
        std::fs::write(&regular, "").unwrap();
        let pipe = dir.path().join("pipe");
        fifo(&pipe);
        let ok = [dir.path().join("state.json"), regular.clone()];
        for path in ok {
            assert_eq!(check_state_file(&path), Ok(()), "{}", path.display());
        }
        let d = dir.path().display();
        let bad = [
            (
                dir.path().to_path_buf(),
                format!("{d} is a directory, not a regular file"),
            ),
            (
                pipe.clone(),
                format!("{d}/pipe is a FIFO (named pipe), not a regular file"),
            ),
            (
                regular.join("state.json"),
                format!("{d}/regular is not a directory"),
            ),
            (
                dir.path().join("missing/state.json"),
                format!("directory {d}/missing does not exist"),
            ),
            (
                "/sys/state.json".into(),
                "poolwatch cannot write in directory /sys: Permission denied".into(),
            ),
        ];
        for (path, want) in bad {
            let got = check_state_file(&path).unwrap_err();
            assert!(got.starts_with(&want), "{}: {got}", path.display());
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "the probe file is removed");
    }
}
