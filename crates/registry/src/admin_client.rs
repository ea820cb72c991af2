//! The CLI's side of the admin socket: blocking, one request and one
//! response line at a time. [`AdminClient::connect`] tells "no server
//! running" apart from real failures, so the CLI can fall back to opening
//! the store itself.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::protocol::{AdminRequest, AdminResponse};

/// Failures of the admin channel itself (not of the requests it carries).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: another civitas server is already serving this data directory", path.display())]
    InUse { path: PathBuf },
    #[error("admin protocol: {0}")]
    Protocol(String),
}

/// A connection to a running server's admin endpoint.
#[derive(Debug)]
pub struct AdminClient {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl AdminClient {
    /// Connects to the socket at `path`. `Ok(None)` when no server is
    /// running: the socket file is absent, or left behind by a server that
    /// is gone (connection refused).
    pub fn connect(path: &Path) -> Result<Option<AdminClient>, AdminError> {
        let io = |source| AdminError::Io {
            path: path.to_path_buf(),
            source,
        };
        let stream = match UnixStream::connect(path) {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(io(e)),
        };
        let writer = stream.try_clone().map_err(io)?;
        Ok(Some(AdminClient {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
        }))
    }

    /// Sends one request and waits for its response.
    pub fn call(&mut self, request: &AdminRequest) -> Result<AdminResponse, AdminError> {
        let io = |source| AdminError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line =
            serde_json::to_vec(request).map_err(|e| AdminError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.writer.write_all(&line).map_err(io)?;
        self.writer.flush().map_err(io)?;
        let mut answer = String::new();
        let n = self.reader.read_line(&mut answer).map_err(io)?;
        if n == 0 {
            return Err(AdminError::Protocol(
                "the server closed the connection without answering".into(),
            ));
        }
        serde_json::from_str(&answer)
            .map_err(|e| AdminError::Protocol(format!("unreadable response: {e}")))
    }
}
