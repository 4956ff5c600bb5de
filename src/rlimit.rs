//! The process's open-file limit: raised from the soft to the hard limit at start (every
//! WebSocket and HTTP connection holds a file descriptor), and read to keep the connection cap
//! below it. It must not do anything else.

/// The soft and hard `RLIMIT_NOFILE`, if the platform has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    pub soft: u64,
    pub hard: u64,
}

/// The current open-file limit.
#[cfg(unix)]
#[allow(clippy::useless_conversion)] // rlim_t is u64 on Linux, not everywhere.
pub fn file_limit() -> Option<FileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (status == 0).then_some(FileLimit {
        soft: u64::from(limit.rlim_cur),
        hard: u64::from(limit.rlim_max),
    })
}

#[cfg(not(unix))]
pub fn file_limit() -> Option<FileLimit> {
    None
}

/// Raises the soft open-file limit to the hard limit; returns the limit before and after.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not everywhere.
pub fn raise_file_limit() -> std::io::Result<(FileLimit, FileLimit)> {
    let before = file_limit().ok_or_else(std::io::Error::last_os_error)?;
    if before.soft >= before.hard {
        return Ok((before, before));
    }
    let raised = libc::rlimit {
        rlim_cur: before.hard as libc::rlim_t,
        rlim_max: before.hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let after = file_limit().ok_or_else(std::io::Error::last_os_error)?;
    Ok((before, after))
}

#[cfg(not(unix))]
pub fn raise_file_limit() -> std::io::Result<(FileLimit, FileLimit)> {
    Err(std::io::Error::other("no RLIMIT_NOFILE on this platform"))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit() {
        let (before, after) = raise_file_limit().expect("raise");
        assert!(after.soft >= before.soft);
        assert_eq!(after.soft, after.hard);
        assert_eq!(file_limit(), Some(after));
    }
}
