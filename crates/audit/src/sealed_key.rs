//! The checkpoint signing key at rest: its PKCS#8 bytes sealed by the KMS
//! (envelope encryption under a caller-chosen master key, encryption
//! context `{purpose: audit-checkpoint}`) in `audit/checkpoint-key.sealed`,
//! owner-only. The plaintext key never touches the disk.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use civitas_kms::{EncryptionContext, KeyId, KeyProvider};

use crate::checkpoint::Ed25519Signer;
use crate::error::AuditError;
use crate::log::AUDIT_DIR;

/// File name of the sealed checkpoint key inside the audit directory.
pub const SEALED_KEY_FILE_NAME: &str = "checkpoint-key.sealed";

/// `DATA_DIR/audit/checkpoint-key.sealed`.
pub fn sealed_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(AUDIT_DIR).join(SEALED_KEY_FILE_NAME)
}

/// The encryption context the key is sealed with.
pub fn kms_context() -> EncryptionContext {
    EncryptionContext::new().with("purpose", "audit-checkpoint")
}

/// Unseals the signing key at `path`, or, when there is none yet,
/// generates one, seals it under `kms_key` (which must exist in `kms`) and
/// writes it there with mode 0600. An existing file is never replaced:
/// losing the key would leave the log's old checkpoints without a matching
/// key to continue with.
pub fn load_or_create_signer(
    path: &Path,
    kms: &dyn KeyProvider,
    kms_key: &KeyId,
) -> Result<Ed25519Signer, AuditError> {
    match fs::read(path) {
        Ok(sealed) => return unseal(kms, &sealed),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(AuditError::io(path, e)),
    }
    let (signer, pkcs8) = Ed25519Signer::generate()?;
    let sealed = kms.encrypt(kms_key, &pkcs8, &kms_context())?;
    match write_new(path, &sealed) {
        Ok(()) => Ok(signer),
        // Another process created it first: use that one, so both agree.
        Err(AuditError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            let sealed = fs::read(path).map_err(|e| AuditError::io(path, e))?;
            unseal(kms, &sealed)
        }
        Err(e) => Err(e),
    }
}

fn unseal(kms: &dyn KeyProvider, sealed: &[u8]) -> Result<Ed25519Signer, AuditError> {
    let pkcs8 = kms.decrypt(sealed, &kms_context())?;
    Ed25519Signer::from_pkcs8(&pkcs8)
}

/// Writes a temporary file (0600 from the start), syncs it, and links it
/// into place, which fails rather than replacing an existing key.
fn write_new(path: &Path, contents: &[u8]) -> Result<(), AuditError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    crate::log::create_private_dir(dir)?;
    // Unique per process and call, so concurrent creators never share one.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{SEALED_KEY_FILE_NAME}.tmp-{}-{}",
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
        file.sync_all()?;
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    written.map_err(|e| AuditError::io(path, e))?;
    // The new directory entry is only durable once the directory is synced.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
