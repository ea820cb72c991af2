//! Broker resource use from /proc: CPU seconds (user + system, all
//! threads) and memory (resident now and its high-water mark).

use std::path::PathBuf;

use crate::error::{BenchError, Result};
use crate::os;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// utime + stime, in seconds.
    pub cpu_secs: f64,
    /// VmRSS, bytes.
    pub rss: u64,
    /// VmHWM (peak resident), bytes.
    pub hwm: u64,
}

pub fn usage(pid: u32) -> Result<Usage> {
    let stat_path = PathBuf::from(format!("/proc/{pid}/stat"));
    let stat = std::fs::read_to_string(&stat_path)
        .map_err(|e| BenchError::io(stat_path.display().to_string(), e))?;
    let cpu_secs = cpu_from_stat(&stat, os::clock_ticks()).ok_or_else(|| BenchError::BadFile {
        path: stat_path.clone(),
        reason: "no utime/stime fields".into(),
    })?;
    let status_path = PathBuf::from(format!("/proc/{pid}/status"));
    let status = std::fs::read_to_string(&status_path)
        .map_err(|e| BenchError::io(status_path.display().to_string(), e))?;
    Ok(Usage {
        cpu_secs,
        rss: kb_field(&status, "VmRSS:").unwrap_or(0) * 1024,
        hwm: kb_field(&status, "VmHWM:").unwrap_or(0) * 1024,
    })
}

/// utime + stime in seconds. The command name (field 2) may contain
/// spaces and parentheses, so fields are counted after its last ')'.
fn cpu_from_stat(stat: &str, ticks: u64) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3; utime and stime are fields 14, 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / ticks as f64)
}

fn kb_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces() {
        let stat = "1234 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(cpu_from_stat(stat, 100), Some(3.0));
    }

    #[test]
    fn status_kb_fields() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(kb_field(status, "VmRSS:"), Some(1024));
        assert_eq!(kb_field(status, "VmHWM:"), Some(2048));
        assert_eq!(kb_field(status, "VmSwap:"), None);
    }

    #[test]
    fn reads_own_process() {
        let u = usage(std::process::id()).unwrap();
        assert!(u.rss > 0 && u.hwm >= u.rss);
    }
}
