//! Username and password credentials for `auth = "password"` listeners.
//!
//! civitas issues the passwords itself (long random strings, never chosen
//! by a person) and keeps only Argon2id hashes, in PHC form, one
//! `username:hash` per line of the credential file `DATA_DIR/passwords`.
//! [`PasswordFile`] edits that file for the command line, atomically and
//! under a lock; [`Credentials`] is the broker's live copy, re-read when
//! the file changes. A file that does not parse never replaces working
//! credentials. Verification costs tens of milliseconds of CPU by design,
//! so the broker runs it on the blocking pool, a bounded number at a time.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::SaltString;
use argon2::{ARGON2ID_IDENT, Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use rand::TryRngCore;
use rand::rngs::OsRng;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The credential file's name inside the data directory.
pub const FILE_NAME: &str = "passwords";

/// Length of a generated password: 32 characters from 62 give about 190
/// bits, far beyond guessing even without the hash's cost.
const PASSWORD_LEN: usize = 32;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Verifications running at once; the rest wait for a turn, so a flood of
/// bad logins cannot take every core.
const CONCURRENT_VERIFICATIONS: usize = 2;

/// Cost ceiling for hashes read from the file: a hand-edited line must
/// not make each login allocate gigabytes.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;

const HEADER: &str = "# civitas password credentials: username:argon2id-hash, one per line.\n\
                      # Managed with `civitas password set|remove|list`.\n";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("invalid username {0:?}: use 1 to 64 characters from A-Z a-z 0-9 _ . : -")]
    Username(String),
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PasswordError + '_ {
    move |source| PasswordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// 1 to 64 characters from `[A-Za-z0-9_.:-]`.
pub fn validate_username(name: &str) -> Result<(), PasswordError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(PasswordError::Username(name.to_string()))
    }
}

/// A new random password from the operating system's generator.
pub fn generate_password() -> Result<String, PasswordError> {
    let mut out = String::with_capacity(PASSWORD_LEN);
    let mut buf = [0u8; 64];
    while out.len() < PASSWORD_LEN {
        OsRng
            .try_fill_bytes(&mut buf)
            .map_err(|e| PasswordError::Random(e.to_string()))?;
        // Rejection sampling keeps every character equally likely.
        let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
        for &b in buf
            .iter()
            .filter(|&&b| b < limit)
            .take(PASSWORD_LEN - out.len())
        {
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// The Argon2id PHC string for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| PasswordError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// One line of the credential file, kept so that edits preserve comments.
enum Line {
    Other(String),
    Entry { username: String, phc: String },
}

/// Parse the file's text; any bad line is an error naming the line.
fn parse(path: &Path, text: &str) -> Result<Vec<Line>, PasswordError> {
    let mut lines = Vec::new();
    let mut seen = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            lines.push(Line::Other(raw.to_string()));
            continue;
        }
        let err = |reason: String| PasswordError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        // Usernames may contain ':' but PHC strings never do.
        let Some((username, phc)) = line.rsplit_once(':') else {
            return Err(err("expected username:hash".into()));
        };
        validate_username(username).map_err(|e| err(e.to_string()))?;
        check_phc(phc).map_err(err)?;
        if let Some(first) = seen.insert(username.to_string(), i + 1) {
            return Err(err(format!(
                "{username} is already defined on line {first}"
            )));
        }
        lines.push(Line::Entry {
            username: username.to_string(),
            phc: phc.to_string(),
        });
    }
    Ok(lines)
}

fn check_phc(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC hash string: {e}"))?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("incomplete PHC hash string: no salt or no hash".into());
    }
    if hash.algorithm != ARGON2ID_IDENT {
        return Err(format!("hash algorithm {} is not argon2id", hash.algorithm));
    }
    let params = argon2::Params::try_from(&hash).map_err(|e| format!("hash parameters: {e}"))?;
    if params.m_cost() > MAX_M_COST_KIB || params.t_cost() > MAX_T_COST {
        return Err("hash cost parameters are unreasonably high".into());
    }
    Ok(())
}

fn render(lines: &[Line]) -> String {
    let mut out = String::new();
    for line in lines {
        match line {
            Line::Other(s) => out.push_str(s),
            Line::Entry { username, phc } => {
                out.push_str(username);
                out.push(':');
                out.push_str(phc);
            }
        }
        out.push('\n');
    }
    out
}

/// The credential file, for issuing and revoking passwords.
#[derive(Debug, Clone)]
pub struct PasswordFile {
    path: PathBuf,
}

impl PasswordFile {
    pub fn new(path: impl Into<PathBuf>) -> PasswordFile {
        PasswordFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes, or `None` when it does not exist.
    fn read_bytes(&self) -> Result<Option<Vec<u8>>, PasswordError> {
        match std::fs::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&self.path)(e)),
        }
    }

    fn parse_bytes(&self, bytes: &[u8]) -> Result<Vec<Line>, PasswordError> {
        let text = std::str::from_utf8(bytes).map_err(|e| PasswordError::Parse {
            path: self.path.clone(),
            line: bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1,
            reason: "not UTF-8".into(),
        })?;
        parse(&self.path, text)
    }

    /// The usernames that have a password, sorted. A missing file has none.
    pub fn list(&self) -> Result<Vec<String>, PasswordError> {
        let lines = match self.read_bytes()? {
            Some(b) => self.parse_bytes(&b)?,
            None => Vec::new(),
        };
        let mut names: Vec<String> = lines
            .into_iter()
            .filter_map(|l| match l {
                Line::Entry { username, .. } => Some(username),
                Line::Other(_) => None,
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Issue a new password for `username` (replacing any old one) and
    /// return it; only its hash is stored.
    pub fn set(&self, username: &str) -> Result<String, PasswordError> {
        validate_username(username)?;
        let password = generate_password()?;
        let phc = hash_password(&password)?;
        self.edit(|lines| {
            let mut phc = Some(phc);
            for line in lines.iter_mut() {
                if let Line::Entry {
                    username: u,
                    phc: old,
                } = line
                    && u == username
                    && let Some(new) = phc.take()
                {
                    *old = new;
                }
            }
            if let Some(phc) = phc {
                lines.push(Line::Entry {
                    username: username.to_string(),
                    phc,
                });
            }
            true
        })?;
        Ok(password)
    }

    /// Revoke `username`'s password; false when it had none.
    pub fn remove(&self, username: &str) -> Result<bool, PasswordError> {
        self.edit(|lines| {
            let before = lines.len();
            lines.retain(|l| !matches!(l, Line::Entry { username: u, .. } if u == username));
            lines.len() != before
        })
    }

    /// Read, change and atomically rewrite the file under an exclusive
    /// lock, so concurrent edits are not lost. `change` says whether it
    /// changed anything. A file that does not parse is left alone.
    fn edit(&self, change: impl FnOnce(&mut Vec<Line>) -> bool) -> Result<bool, PasswordError> {
        let dir = self.dir();
        let lock_path = dir.join(format!(".{}.lock", self.file_name()));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        lock.lock().map_err(io_error(&lock_path))?;
        let mut lines = match self.read_bytes()? {
            Some(b) => self.parse_bytes(&b)?,
            None => HEADER.lines().map(|l| Line::Other(l.to_string())).collect(),
        };
        if !change(&mut lines) {
            return Ok(false);
        }
        self.write_atomic(render(&lines).as_bytes())?;
        Ok(true)
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn file_name(&self) -> String {
        self.path.file_name().map_or_else(
            || FILE_NAME.to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// Temporary file (0600 from the first byte), fsync, rename: a reader
    /// sees the old file or the whole new one.
    fn write_atomic(&self, contents: &[u8]) -> Result<(), PasswordError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = self.dir();
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{}",
            self.file_name(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io_error(&tmp))?;
            file.write_all(contents).map_err(io_error(&tmp))?;
            file.sync_all().map_err(io_error(&tmp))?;
            drop(file);
            std::fs::rename(&tmp, &self.path).map_err(io_error(&self.path))?;
            if let Ok(d) = File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

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
            .field("path", &self.file.path)
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
                tracing::info!(path = %self.file.path.display(), users, "password credentials reloaded");
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
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["gw-1", "a", "Gate_way.01:north", &"x".repeat(64)] {
            validate_username(ok).unwrap();
        }
        for bad in ["", "a b", "über", "a/b", "a$", &"x".repeat(65)] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_distinct() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), PASSWORD_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

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
    fn parse_errors_name_the_problem() {
        let p = Path::new("pw");
        let phc = hash_password("x").unwrap();
        let cases = [
            (format!("bad name:{phc}\n"), "invalid username"),
            ("gw-1:$argon2id$nonsense\n".to_string(), "PHC"),
            (
                format!("a:{phc}\n#\na:{phc}\n"),
                "already defined on line 1",
            ),
            (
                format!("a:{}\n", phc.replacen("argon2id", "argon2i", 1)),
                "not argon2id",
            ),
            (
                format!("a:{}\n", phc.replacen("m=19456", "m=4000000", 1)),
                "unreasonably high",
            ),
        ];
        for (text, want) in cases {
            let err = parse(p, &text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(want), "{text:?}: {err}");
        }
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
