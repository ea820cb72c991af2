//! The few operating-system knobs the bench needs: the open-files limit,
//! CPU pinning of the generator, and the kernel's clock tick for reading
//! CPU times from /proc.

use crate::error::{BenchError, Result};

/// Raise the soft open-files limit to the hard limit and return the new
/// soft limit. Brokers started afterwards inherit it.
pub fn raise_nofile_limit() -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(BenchError::io(
            "getrlimit(RLIMIT_NOFILE)",
            std::io::Error::last_os_error(),
        ));
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; the call only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(BenchError::io(
                "setrlimit(RLIMIT_NOFILE)",
                std::io::Error::last_os_error(),
            ));
        }
        lim = raised;
    }
    Ok(lim.rlim_cur)
}

/// Pin the calling thread (and every thread it creates afterwards) to one
/// CPU.
pub fn pin_current_thread(cpu: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET only writes inside `set`; `cpu` is checked by the
    // caller against the number of CPUs, far below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` outlives the call.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(BenchError::io(
            format!("sched_setaffinity(cpu {cpu})"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// CPUs online.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Clock ticks per second, the unit of utime/stime in /proc/PID/stat.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// Send SIGTERM to a process we started.
pub fn terminate(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions; the pid is a
        // child this process spawned and has not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
