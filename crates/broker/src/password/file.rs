//! The credential file: parsing with errors that name the line, and the
//! edits behind `civitas password`, written atomically under a lock so
//! that concurrent edits are not lost and readers never see half a file.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::{ARGON2ID_IDENT, PasswordHash};

use super::{
    FILE_NAME, PasswordError, generate_password, hash_password, io_error, validate_username,
};

/// Cost ceiling for hashes read from the file: a hand-edited line must
/// not make each login allocate gigabytes.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;

const HEADER: &str = "# civitas password credentials: username:argon2id-hash, one per line.\n\
                      # Managed with `civitas password set|remove|list`.\n";

/// One line of the credential file, kept so that edits preserve comments.
pub(super) enum Line {
    Other(String),
    Entry { username: String, phc: String },
}

/// Parse the file's text; any bad line is an error naming the line.
pub(super) fn parse(path: &Path, text: &str) -> Result<Vec<Line>, PasswordError> {
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
    pub(super) fn read_bytes(&self) -> Result<Option<Vec<u8>>, PasswordError> {
        match std::fs::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&self.path)(e)),
        }
    }

    pub(super) fn parse_bytes(&self, bytes: &[u8]) -> Result<Vec<Line>, PasswordError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
