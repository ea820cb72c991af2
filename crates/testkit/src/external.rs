//! Locating the third-party MQTT clients (mosquitto_pub, mosquitto_sub,
//! Python with paho-mqtt or the AWS IoT Device SDK) that interoperability
//! tests drive as separate processes.
//!
//! `scripts/test` installs them and sets `CIVITAS_REQUIRE_EXTERNAL=1`, so
//! a missing client fails the run there. A plain `cargo test` on a machine
//! without them skips those tests, saying so loudly on stderr, rather than
//! passing in silence or failing for a reason unrelated to the code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Set to `1` to turn a missing external client into a test failure.
pub const REQUIRE_ENV: &str = "CIVITAS_REQUIRE_EXTERNAL";
/// The Python interpreter that has paho-mqtt and awsiotsdk installed.
pub const PYTHON_ENV: &str = "CIVITAS_PYTHON";
/// The name [`require`] understands as "a Python that can import paho.mqtt".
pub const PAHO: &str = "paho-mqtt";
/// The name [`require`] understands as "a Python that can import the AWS
/// IoT Device SDK v2" (`awsiot`, on the AWS Common Runtime).
pub const AWS_IOT_SDK: &str = "awsiotsdk";

/// The path of an external client, or `None` (after an explicit
/// `SKIPPED` line on stderr) when it is absent and not required.
///
/// `tool` is an executable looked up on `PATH` (`"mosquitto_sub"`), or
/// [`PAHO`] / [`AWS_IOT_SDK`] for the Python interpreter from
/// `CIVITAS_PYTHON` (else the workspace's `.venv`, else `python3`) that can
/// import `paho.mqtt` / `awsiot`.
///
/// # Panics
/// When the tool is missing and `CIVITAS_REQUIRE_EXTERNAL=1`.
pub fn require(tool: &str) -> Option<PathBuf> {
    let found = match tool {
        PAHO => python_with(PAHO, "paho.mqtt", PAHO_CHECK),
        AWS_IOT_SDK => python_with(AWS_IOT_SDK, "awsiot", AWS_IOT_SDK_CHECK),
        _ => find_on_path(tool).ok_or_else(|| format!("{tool} not installed (not found on PATH)")),
    };
    match found {
        Ok(path) => Some(path),
        Err(why) if required() => {
            panic!("{why}; {REQUIRE_ENV}=1 makes a missing external client a failure")
        }
        Err(why) => {
            // Straight to the process's stderr: the test harness captures
            // `eprintln!` of passing tests, which would hide the skip.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (not run): {why}; run scripts/test to install it"
            );
            None
        }
    }
}

/// Both mosquitto command-line clients, or `None` as with [`require`].
pub fn require_mosquitto() -> Option<Mosquitto> {
    let publisher = require("mosquitto_pub")?;
    let subscriber = require("mosquitto_sub")?;
    Some(Mosquitto {
        publisher,
        subscriber,
    })
}

/// Paths of the mosquitto command-line clients.
#[derive(Debug, Clone)]
pub struct Mosquitto {
    pub publisher: PathBuf,
    pub subscriber: PathBuf,
}

fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The first executable file called `name` in a `PATH` directory.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

// paho-mqtt 1.x has a different callback API; the scripts need 2.x.
const PAHO_CHECK: &str =
    "import sys, paho.mqtt; sys.exit(0 if paho.mqtt.__version__.startswith('2.') else 1)";
// The v2 SDK: `awsiot.iotshadow` on top of `awscrt`.
const AWS_IOT_SDK_CHECK: &str = "import awscrt, awsiot.iotshadow, awsiot.mqtt_connection_builder";

/// The Python that passes `check` (a `-c` program exiting 0): the one in
/// `CIVITAS_PYTHON`, else the workspace's `.venv`, else `python3`.
fn python_with(package: &str, module: &str, check: &str) -> Result<PathBuf, String> {
    // An explicit choice is honoured or reported, never silently replaced.
    if let Some(python) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) {
        let python = PathBuf::from(python);
        return if passes(&python, check) {
            Ok(python)
        } else {
            Err(format!(
                "{package} not installed: {PYTHON_ENV}={} cannot import {module}",
                python.display()
            ))
        };
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let candidates = [Some(venv), find_on_path("python3")];
    candidates
        .into_iter()
        .flatten()
        .find(|p| passes(p, check))
        .ok_or_else(|| {
            format!("{package} not installed ({PYTHON_ENV} unset, no Python here imports {module})")
        })
}

fn passes(python: &Path, check: &str) -> bool {
    Command::new(python)
        .args(["-c", check])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
