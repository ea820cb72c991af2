//! Owner-only atomic file writes for the root key and the sealed ring.
//!
//! Files are written to a temporary in the same directory with mode 0600
//! from the first byte, synced, then moved into place, so a crash or a
//! concurrent reader sees the old file or the complete new one, never a
//! half-written key.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::KmsError;

/// Replaces `path` with `contents`.
pub(crate) fn write_replace(path: &Path, contents: &[u8]) -> Result<(), KmsError> {
    let tmp = write_temporary(path, contents)?;
    let result = fs::rename(&tmp, path).map_err(|e| KmsError::io(path, e));
    finish(path, &tmp, result)
}

/// Creates `path` with `contents`, refusing to replace an existing file.
pub(crate) fn write_new(path: &Path, contents: &[u8]) -> Result<(), KmsError> {
    let tmp = write_temporary(path, contents)?;
    // A hard link, unlike rename, fails when the target exists, so an
    // existing key is never clobbered even by a concurrent creator.
    let result = fs::hard_link(&tmp, path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => KmsError::AlreadyExists {
            path: path.to_path_buf(),
        },
        _ => KmsError::io(path, e),
    });
    let _ = fs::remove_file(&tmp);
    finish(path, &tmp, result)
}

fn finish(path: &Path, tmp: &Path, result: Result<(), KmsError>) -> Result<(), KmsError> {
    if result.is_err() {
        let _ = fs::remove_file(tmp);
        return result;
    }
    // The new directory entry is only durable once the directory is synced.
    if let Ok(d) = File::open(parent(path)) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn write_temporary(path: &Path, contents: &[u8]) -> Result<PathBuf, KmsError> {
    let name = path
        .file_name()
        .ok_or_else(|| KmsError::io(path, std::io::ErrorKind::InvalidInput.into()))?
        .to_string_lossy();
    // Unique per process and call, so concurrent writers never share one.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = parent(path).join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(KmsError::io(&tmp, e))
        }
    }
}
