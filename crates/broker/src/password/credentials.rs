//! The broker's live copy of the credential file, and verification on
//! the blocking pool with a bound on how many run at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::file::{Line, PasswordFile};
use super::{PasswordError, hash_password};

/// Verifications running at once; the rest wait for a turn, so a flood of
/// bad logins cannot take every core.
const CONCURRENT_VERIFICATIONS: usize = 2;

/// The broker's live credentials, following the credential file.
pub struct Credentials {
    file: PasswordFile,
    table: RwLock<Arc<HashMap<String, String>>>,
    state: Mutex<LoadState>,
}

struct LoadState {
    /// The bytes the table was built from; `None` for a missing file.
    loaded: Option<Vec<u8>>,
    /// The last failure, so a file that stays broken is logged once.
    last_error: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("path", &self.file.path())
            .field("users", &self.table.read().len())
            .finish()
    }
}

impl Credentials {
    /// Load the file at `path`; a missing file means no credentials yet,
    /// a broken one is an error.
    pub fn open(path: impl Into<PathBuf>) -> Result<Credentials, PasswordError> {
        let file = PasswordFile::new(path);
        let bytes = file.read_bytes()?;
        let table = match &bytes {
            Some(b) => table_of(file.parse_bytes(b)?),
            None => HashMap::new(),
        };
        Ok(Credentials {
            file,
            table: RwLock::new(Arc::new(table)),
            state: Mutex::new(LoadState {
                loaded: bytes,
                last_error: None,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// How many usernames have a password.
    pub fn len(&self) -> usize {
        self.table.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-read the file; `Ok(true)` when the credentials changed. On
    /// failure the previous credentials stay in use and a warning naming
    /// the file and line is logged.
    pub fn reload(&self) -> Result<bool, PasswordError> {
        let mut state = self.state.lock();
        let attempt = self.file.read_bytes().and_then(|bytes| {
            if bytes == state.loaded {
                return Ok(None);
            }
            let table = match &bytes {
                Some(b) => table_of(self.file.parse_bytes(b)?),
                None => HashMap::new(),
            };
            Ok(Some((bytes, table)))
        });
        match attempt {
            Ok(None) => {
                state.last_error = None;
                Ok(false)
            }
            Ok(Some((bytes, table))) => {
                let users = table.len();
                *self.table.write() = Arc::new(table);
                state.loaded = bytes;
                state.last_error = None;
                tracing::info!(path = %self.file.path().display(), users, "password credentials reloaded");
                Ok(true)
            }
            Err(e) => {
                let message = e.to_string();
                if state.last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(error = %message, "password file not reloaded; keeping the previous credentials");
                    state.last_error = Some(message);
                }
                Err(e)
            }
        }
    }

    /// Call [`reload`](Self::reload) every `interval` until `shutdown`.
    pub async fn watch(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    let _ = self.reload();
                }
            }
        }
    }

    /// Does `password` belong to `username`? Blocking and CPU-heavy by
    /// design. An unknown username costs as much as a wrong password, so
    /// timing does not tell which usernames exist.
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        let phc = self.table.read().get(username).cloned();
        let argon = Argon2::default();
        match phc {
            Some(phc) => PasswordHash::new(&phc)
                .is_ok_and(|hash| argon.verify_password(password, &hash).is_ok()),
            None => {
                if let Some(dummy) = dummy_hash()
                    && let Ok(hash) = PasswordHash::new(dummy)
                {
                    let _ = argon.verify_password(password, &hash);
                }
                false
            }
        }
    }
}

fn table_of(lines: Vec<Line>) -> HashMap<String, String> {
    lines
        .into_iter()
        .filter_map(|l| match l {
            Line::Entry { username, phc } => Some((username, phc)),
            Line::Other(_) => None,
        })
        .collect()
}

/// A hash with the default cost that matches nothing anyone sends.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password("civitas: no such user").ok())
        .as_deref()
}

/// The outcome of a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    Refused,
    /// No verification slot came free before the connect deadline.
    Busy,
}

/// Runs verifications on the blocking pool, a bounded number at a time.
#[derive(Debug)]
pub(crate) struct PasswordCheck {
    credentials: Arc<Credentials>,
    permits: Arc<Semaphore>,
}

impl PasswordCheck {
    pub(crate) fn new(credentials: Arc<Credentials>) -> PasswordCheck {
        PasswordCheck {
            credentials,
            permits: Arc::new(Semaphore::new(CONCURRENT_VERIFICATIONS)),
        }
    }

    pub(crate) async fn verify(
        &self,
        username: &str,
        password: Bytes,
        deadline: Instant,
    ) -> Verdict {
        let permit =
            match tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) | Err(_) => return Verdict::Busy,
            };
        let credentials = self.credentials.clone();
        let username = username.to_string();
        // The permit moves into the blocking task: if the connection goes
        // away meanwhile, the slot stays taken until the hash is done.
        let task = tokio::task::spawn_blocking(move || {
            let ok = credentials.verify(&username, &password);
            drop(permit);
            ok
        });
        match task.await {
            Ok(true) => Verdict::Accepted,
            Ok(false) | Err(_) => Verdict::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::FILE_NAME;
    use super::*;

    #[test]
    fn set_verify_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let file = PasswordFile::new(&path);
        let pw = file.set("gw:1").unwrap();
        let other = file.set("gw-2").unwrap();
        assert_eq!(file.list().unwrap(), vec!["gw-2", "gw:1"]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with('#'));
        assert!(!text.contains(&pw), "the password itself is never stored");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let creds = Credentials::open(&path).unwrap();
        assert!(creds.verify("gw:1", pw.as_bytes()));
        assert!(!creds.verify("gw:1", other.as_bytes()));
        assert!(!creds.verify("nobody", pw.as_bytes()));

        // A new password replaces the old one.
        let new = file.set("gw:1").unwrap();
        assert!(creds.reload().unwrap());
        assert!(creds.verify("gw:1", new.as_bytes()));
        assert!(!creds.verify("gw:1", pw.as_bytes()));
        assert_eq!(creds.len(), 2);

        assert!(file.remove("gw:1").unwrap());
        assert!(!file.remove("gw:1").unwrap());
        assert!(creds.reload().unwrap());
        assert!(!creds.verify("gw:1", new.as_bytes()));
        assert!(!creds.reload().unwrap(), "unchanged file");
    }

    #[test]
    fn broken_file_keeps_previous_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let file = PasswordFile::new(&path);
        let pw = file.set("gw-1").unwrap();
        let creds = Credentials::open(&path).unwrap();
        let good = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{good}# fine\nno-hash-here\n")).unwrap();
        let err = creds.reload().unwrap_err().to_string();
        let broken_line = good.lines().count() + 2;
        assert!(
            err.contains(&format!("{}:{broken_line}:", path.display())),
            "{err}"
        );
        assert!(creds.verify("gw-1", pw.as_bytes()));
        // Editing refuses to write over a file it cannot read.
        assert!(file.set("gw-2").is_err());
        assert!(Credentials::open(&path).is_err());
    }

    #[test]
    fn missing_file_is_empty_and_deleting_it_revokes_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let creds = Credentials::open(&path).unwrap();
        assert!(creds.is_empty());
        let pw = PasswordFile::new(&path).set("gw-1").unwrap();
        assert!(creds.reload().unwrap());
        assert!(creds.verify("gw-1", pw.as_bytes()));
        std::fs::remove_file(&path).unwrap();
        assert!(creds.reload().unwrap());
        assert!(!creds.verify("gw-1", pw.as_bytes()));
    }
}
