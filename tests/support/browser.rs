//! Helpers of the browser tests (`tests/browser_*.rs`): start the real server in-process
//! on 127.0.0.1 (HTTP port 0, UDP port 0, loopback candidates only), run one Node driver
//! scenario of `tests/browser/` (playwright-core → Debian's Chromium, puppeteer-core → Firefox
//! ESR over WebDriver BiDi) against it, and hand back the JSON the scenario measured. A browser
//! test that cannot run fails with the reason; it never skips. Only one scenario runs at a time
//! (the browsers need both cores). Test-only code.

use super::test_config;
use chorus::{Config, RunningServer};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::{Mutex, MutexGuard};

/// Scenarios take both cores: they run one at a time, whatever `--test-threads` says.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The server under test with the lock that keeps browser scenarios from overlapping.
pub struct BrowserTest {
    pub server: RunningServer,
    pub base: String,
    _turn: MutexGuard<'static, ()>,
}

/// The one test configuration, plus the origin of the mesh test pages (they come from another
/// port, tests/browser/lib/static-server.mjs).
pub fn browser_config() -> Config {
    Config {
        allowed_origins: vec!["http://127.0.0.1:*".to_owned()],
        ..test_config()
    }
}

/// Waits for this test's turn, then starts the server.
pub async fn start() -> BrowserTest {
    start_with(browser_config()).await
}

pub async fn start_with(config: Config) -> BrowserTest {
    let turn = ONE_AT_A_TIME.lock().await;
    super::init_tracing();
    let server = chorus::spawn(config).await.expect("the server starts");
    let base = format!("http://{}", server.addr());
    BrowserTest {
        server,
        base,
        _turn: turn,
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where tests write screenshots (git-ignored).
pub fn artifacts() -> PathBuf {
    root().join("tests").join("artifacts")
}

fn check_prerequisites(driver_dir: &Path) {
    let modules = driver_dir.join("node_modules");
    assert!(
        modules.join("playwright-core").is_dir() && modules.join("puppeteer-core").is_dir(),
        "the browser test drivers are not installed: run `npm ci --prefix tests/browser` \
         (and `apt-get install chromium firefox-esr`); .ci/run does both"
    );
}

impl BrowserTest {
    /// Shuts the server down (every WebSocket is closed with 1001, as on a restart) and starts
    /// a new one with `config` on the same HTTP address, `pause` later.
    pub async fn restart(self, mut config: Config, pause: Duration) -> Self {
        let addr = self.server.addr();
        self.server.shutdown().await.expect("the server shuts down");
        tokio::time::sleep(pause).await;
        config.listen = addr;
        let server = chorus::spawn(config)
            .await
            .expect("the server starts again");
        BrowserTest {
            server,
            base: self.base,
            _turn: self._turn,
        }
    }

    /// Runs `tests/browser/run.mjs <scenario>` against this server and returns its result.
    /// Panics (the test fails) if Node, the drivers or a browser are missing, if the scenario
    /// fails, or if it does not finish within `timeout`.
    pub async fn scenario(&self, name: &str, timeout: Duration) -> Value {
        run_scenario(&self.base, name, timeout, &[]).await
    }

    /// [`Self::scenario`] with extra environment variables for the driver.
    pub async fn scenario_with_env(
        &self,
        name: &str,
        timeout: Duration,
        env: &[(&str, &str)],
    ) -> Value {
        run_scenario(&self.base, name, timeout, env).await
    }
}

/// Runs scenario `name` against the server at `base` (see [`BrowserTest::scenario`]).
pub async fn run_scenario(
    base: &str,
    name: &str,
    timeout: Duration,
    env: &[(&str, &str)],
) -> Value {
    let driver_dir = root().join("tests").join("browser");
    check_prerequisites(&driver_dir);
    std::fs::create_dir_all(artifacts()).expect("create tests/artifacts");
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg("run.mjs")
        .arg(name)
        .arg("--base")
        .arg(base)
        .arg("--artifacts")
        .arg(artifacts())
        .arg("--timeout-ms")
        .arg(
            timeout
                .saturating_sub(Duration::from_secs(5))
                .as_millis()
                .to_string(),
        )
        .envs(env.iter().copied())
        .current_dir(&driver_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `node` for the browser tests: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let run = async {
        let mut out = String::new();
        let mut err = String::new();
        let (a, b, status) = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err),
            child.wait()
        );
        a.expect("read driver stdout");
        b.expect("read driver stderr");
        (out, err, status.expect("driver exit status"))
    };
    let (out, err, status) = match tokio::time::timeout(timeout, run).await {
        Ok(done) => done,
        Err(_) => panic!("browser scenario `{name}` did not finish within {timeout:?}"),
    };
    eprintln!(
        "--- scenario `{name}` ({:.1} s) ---\n{err}",
        started.elapsed().as_secs_f64()
    );
    let result = out
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("scenario `{name}` printed no RESULT line ({status}); stdout:\n{out}\nstderr:\n{err}"));
    let value: Value = serde_json::from_str(result)
        .unwrap_or_else(|e| panic!("scenario `{name}` printed bad JSON ({e}): {result}"));
    if let Some(error) = value.get("error") {
        panic!(
            "browser scenario `{name}` failed: {}",
            error.as_str().unwrap_or_default()
        );
    }
    assert!(status.success(), "scenario `{name}` exited with {status}");
    // One line: CI keeps only the head and the tail of a failing test's output.
    eprintln!("result: {value}");
    value
}

/// `value[path...]` as f64 (numeric segments index arrays), failing the test with the whole
/// result when it is missing.
pub fn num(value: &Value, path: &[&str]) -> f64 {
    let mut v = value;
    for key in path {
        v = match key.parse::<usize>() {
            Ok(index) if v.is_array() => &v[index],
            _ => &v[*key],
        };
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {value:#}"))
}

/// Asserts that no page logged an error or threw.
pub fn no_page_errors(result: &serde_json::Value) {
    let errors = &result["pageErrors"];
    for (page, list) in errors.as_object().expect("pageErrors") {
        assert!(
            list.as_array().is_some_and(|l| l.is_empty()),
            "page {page} reported errors: {list}"
        );
    }
}
