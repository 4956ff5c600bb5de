//! The `chorus serve` process at the edge: it raises its open-file soft limit to the hard limit
//! at start, and its pretty logs carry no ANSI colour codes when they do not go to a terminal.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `chorus serve` on loopback with `extra` flags and its stdout piped.
fn serve(extra: &[&str], prepare: impl FnOnce(&mut Command)) -> Child {
    let mut command = support::serve_command();
    command
        .args(["--log", "info"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    prepare(&mut command);
    command.spawn().expect("chorus starts")
}

/// The log lines up to and including the one that says `listening`.
fn lines_until_listening(child: &mut Child) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read a log line");
        let done = line.contains("listening");
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    lines
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pretty_logs_have_no_colour_codes_off_a_terminal() {
    let mut child = serve(&["--log-format", "pretty"], |_| {});
    let lines = lines_until_listening(&mut child);
    let _stop = Stop(child);
    assert!(
        lines.last().is_some_and(|l| l.contains("listening")),
        "no listening line in {lines:?}"
    );
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "ANSI code in {line:?}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_open_file_limit_is_raised_at_start() {
    use std::os::unix::process::CommandExt;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    let hard = limit.rlim_max;
    let low = 512.min(hard);
    if low == hard {
        eprintln!("hard open-file limit is {hard}: nothing to raise");
        return;
    }
    let mut child = serve(&["--log-format", "json"], |command| {
        // SAFETY: only async-signal-safe setrlimit between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let lowered = libc::rlimit {
                    rlim_cur: low,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let lines = lines_until_listening(&mut child);
    let _stop = Stop(child);
    let raised = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|entry| entry["message"] == "raised the open-file limit")
        .unwrap_or_else(|| panic!("no `raised the open-file limit` line in {lines:?}"));
    assert_eq!(raised["from"], low);
    assert_eq!(raised["to"], hard);
}
