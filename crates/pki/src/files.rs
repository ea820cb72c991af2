//! File helpers shared by the CA and the TLS loaders.
//!
//! Writes are atomic (temporary file in the same directory, fsync, rename) so
//! a crash or a concurrent reader never sees half a key or half a CRL, and
//! private keys are created with mode 0600 from the first byte on. Readers
//! turn every parse failure into an error naming the file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::error::PkiError;

/// Who may read a file written by [`write_atomic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Certificates, CRLs, bundles: world-readable (0644).
    Public,
    /// Private keys and CA state: owner only (0600).
    Private,
}

/// Writes `contents` to `path` so that readers see either the old file or the
/// complete new one.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<(), PkiError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| PkiError::corrupt(path, "not a file path"))?
        .to_string_lossy();
    // Unique per process and per call, so concurrent writers of the same
    // file never share (and clobber) a temporary.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));

    let result = (|| {
        let mut file = open_new(&tmp, mode).map_err(|e| PkiError::io(&tmp, e))?;
        file.write_all(contents)
            .map_err(|e| PkiError::io(&tmp, e))?;
        file.sync_all().map_err(|e| PkiError::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| PkiError::io(path, e))?;
        // The rename is only durable once the directory entry is on disk.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn open_new(path: &Path, mode: Mode) -> std::io::Result<File> {
    // A stale temporary from a crashed writer must not keep its old mode.
    let _ = fs::remove_file(path);
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(match mode {
            Mode::Public => 0o644,
            Mode::Private => 0o600,
        });
    }
    #[cfg(not(unix))]
    let _ = mode;
    opts.open(path)
}

/// Creates `dir` (and parents) if needed; a directory created here is made
/// owner-only because it will hold private keys.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), PkiError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| PkiError::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| PkiError::io(dir, e))?;
    }
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|e| PkiError::io(path, e))
}

pub(crate) fn read_string(path: &Path) -> Result<String, PkiError> {
    let bytes = read(path)?;
    String::from_utf8(bytes).map_err(|_| PkiError::corrupt(path, "not valid UTF-8 text"))
}

/// Every certificate in a PEM file, in file order; at least one is required.
pub(crate) fn parse_certs(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::corrupt(path, format!("invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(PkiError::corrupt(path, "no PEM certificate found"));
    }
    for cert in &certs {
        x509_parser::parse_x509_certificate(cert)
            .map_err(|e| PkiError::corrupt(path, format!("invalid X.509 certificate: {e}")))?;
    }
    Ok(certs)
}

/// The single private key in a PEM file (PKCS#8, SEC1 or PKCS#1).
pub(crate) fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            PkiError::corrupt(path, "no PEM private key found")
        }
        other => PkiError::corrupt(path, format!("invalid PEM private key: {other}")),
    })
}

/// Every CRL in a PEM file; at least one is required.
pub(crate) fn parse_crls(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateRevocationListDer<'static>>, PkiError> {
    let crls = CertificateRevocationListDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::corrupt(path, format!("invalid PEM CRL: {e}")))?;
    if crls.is_empty() {
        return Err(PkiError::corrupt(path, "no PEM X509 CRL found"));
    }
    Ok(crls)
}

pub(crate) fn display_paths<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> String {
    paths
        .into_iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
