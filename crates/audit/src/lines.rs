//! Reading the log as lines: forward with line numbers (verify, query) and
//! backward from the end (opening for append, tail).
//!
//! A final fragment without its newline is a write that did not finish;
//! both readers hand it out separately instead of as a record.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::FileExt;

/// Longest line read in full; a record is far smaller (its details are
/// capped at 64 KiB), so a longer line is reported as malformed.
pub(crate) const MAX_LINE_BYTES: usize = 256 * 1024;

const CHUNK: u64 = 64 * 1024;

/// One line read forward.
#[derive(Debug)]
pub(crate) struct Line {
    /// One-based line number.
    pub(crate) number: u64,
    /// Byte offset of the line's start.
    pub(crate) offset: u64,
    /// The line without its newline, cut at [`MAX_LINE_BYTES`].
    pub(crate) bytes: Vec<u8>,
    /// False for a final fragment without a newline.
    pub(crate) terminated: bool,
    /// True when the line was longer than [`MAX_LINE_BYTES`].
    pub(crate) too_long: bool,
}

pub(crate) struct ForwardLines {
    reader: BufReader<File>,
    number: u64,
    offset: u64,
}

impl ForwardLines {
    pub(crate) fn new(file: File) -> ForwardLines {
        ForwardLines {
            reader: BufReader::with_capacity(CHUNK as usize, file),
            number: 0,
            offset: 0,
        }
    }

    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut line = Line {
            number: self.number + 1,
            offset: self.offset,
            bytes: Vec::new(),
            terminated: false,
            too_long: false,
        };
        let mut read_any = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            read_any = true;
            let (take, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            let content = &available[..if done { take - 1 } else { take }];
            let room = MAX_LINE_BYTES.saturating_sub(line.bytes.len());
            if content.len() > room {
                line.too_long = true;
            }
            line.bytes
                .extend_from_slice(&content[..content.len().min(room)]);
            self.reader.consume(take);
            self.offset += take as u64;
            if done {
                line.terminated = true;
                break;
            }
        }
        if !read_any {
            return Ok(None);
        }
        self.number += 1;
        Ok(Some(line))
    }
}

/// Complete lines from the end of a file backwards.
pub(crate) struct ReverseLines {
    file: File,
    /// File offset of `buf[0]`.
    pos: u64,
    /// Bytes not yet handed out; empty or ending with a newline.
    buf: Vec<u8>,
}

/// A final fragment without a newline.
#[derive(Debug)]
pub(crate) struct Fragment {
    pub(crate) offset: u64,
    pub(crate) bytes: Vec<u8>,
}

impl ReverseLines {
    /// Reads the end of `file` (`len` bytes long) and returns the reader
    /// together with the unterminated final fragment, if any.
    pub(crate) fn new(file: File, len: u64) -> io::Result<(ReverseLines, Option<Fragment>)> {
        let mut r = ReverseLines {
            file,
            pos: len,
            buf: Vec::new(),
        };
        while !r.buf.contains(&b'\n') && r.pos > 0 {
            r.read_back()?;
        }
        let start = r.buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let fragment = (start < r.buf.len()).then(|| Fragment {
            offset: r.pos + start as u64,
            bytes: r.buf.split_off(start),
        });
        Ok((r, fragment))
    }

    /// The previous complete line (without its newline) and its offset.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        loop {
            let Some(body_len) = self.buf.len().checked_sub(1) else {
                if self.pos == 0 {
                    return Ok(None);
                }
                self.read_back()?;
                continue;
            };
            if let Some(i) = self.buf[..body_len].iter().rposition(|&b| b == b'\n') {
                let line = self.buf[i + 1..body_len].to_vec();
                self.buf.truncate(i + 1);
                return Ok(Some((self.pos + i as u64 + 1, line)));
            }
            if self.pos == 0 {
                let line = self.buf[..body_len].to_vec();
                self.buf.clear();
                return Ok(Some((0, line)));
            }
            self.read_back()?;
        }
    }

    fn read_back(&mut self) -> io::Result<()> {
        let n = CHUNK.min(self.pos);
        self.pos -= n;
        // n <= CHUNK, which fits in usize.
        let mut chunk = vec![0u8; n as usize];
        self.file.read_exact_at(&mut chunk, self.pos)?;
        chunk.extend_from_slice(&self.buf);
        self.buf = chunk;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> (tempfile::NamedTempFile, File, u64) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let file = File::open(f.path()).unwrap();
        (f, file, bytes.len() as u64)
    }

    #[test]
    fn forward_numbers_lines_and_flags_the_fragment() {
        let (_t, file, _) = file_with(b"a\n\nbcd\nef");
        let mut r = ForwardLines::new(file);
        let mut seen = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            seen.push((l.number, l.offset, l.bytes, l.terminated));
        }
        assert_eq!(
            seen,
            vec![
                (1, 0, b"a".to_vec(), true),
                (2, 2, b"".to_vec(), true),
                (3, 3, b"bcd".to_vec(), true),
                (4, 7, b"ef".to_vec(), false),
            ]
        );
    }

    #[test]
    fn reverse_walks_back_across_chunks() {
        let long = "x".repeat(CHUNK as usize + 10);
        let text = format!("one\n{long}\nthree\npartial");
        let (_t, file, len) = file_with(text.as_bytes());
        let (mut r, frag) = ReverseLines::new(file, len).unwrap();
        let frag = frag.unwrap();
        assert_eq!(frag.bytes, b"partial");
        assert_eq!(frag.offset, len - 7);
        assert_eq!(r.next_line().unwrap().unwrap().1, b"three");
        let (off, l) = r.next_line().unwrap().unwrap();
        assert_eq!((off, l.len()), (4, long.len()));
        assert_eq!(r.next_line().unwrap().unwrap(), (0, b"one".to_vec()));
        assert!(r.next_line().unwrap().is_none());
    }

    #[test]
    fn reverse_handles_empty_and_fragment_only_files() {
        let (_t, file, len) = file_with(b"");
        let (mut r, frag) = ReverseLines::new(file, len).unwrap();
        assert!(frag.is_none() && r.next_line().unwrap().is_none());
        let (_t, file, len) = file_with(b"abc");
        let (mut r, frag) = ReverseLines::new(file, len).unwrap();
        assert_eq!(frag.unwrap().offset, 0);
        assert!(r.next_line().unwrap().is_none());
    }
}
