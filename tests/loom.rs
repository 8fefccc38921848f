//! Runs the loom models of the cancel-scope state machine
//! (`src/scope/loom_models.rs`) as part of `cargo test`.
//!
//! The models live in the crate's own unit tests and need the crate and its
//! dependencies built with `--cfg asyncio_loom` (which also brings in loom,
//! a dev-dependency under that cfg only). So this test runs cargo itself:
//! `cargo test -p asyncio --lib loom_models` with the cfg added to the
//! rustflags, into a target directory of its own under this build's
//! `target/tmp/` (kept between runs; the outer build's lock is never
//! contended), and fails with the inner run's output if a model fails.
//!
//! The inner build is the dev profile with loom and what it runs on every
//! step (its context switches, its tracing calls) at `opt-level = 2`: on a
//! 2-core machine that is about a minute from an empty directory and about
//! 10 s per run after, where a release build takes nearly twice as long to
//! build and a plain dev build four times as long to run the models.
//!
//! `ASYNCIO_LOOM` sizes it:
//! - unset: the CI size, each model bounded at 4 preemptions (the scope and
//!   root models are exhaustive or nearly so there), about 10 s of models;
//! - `full`: 5 preemptions, the task models about five times larger, about
//!   1.5 minutes of models;
//! - `off`: skipped, for a quick local `cargo test` (CI never sets it).
//!
//! `LOOM_MAX_PREEMPTIONS`, when set, overrides both sizes; loom's other
//! variables (`LOOM_LOG`, `LOOM_LOCATION`, `LOOM_CHECKPOINT_FILE`, ...)
//! reach the models as they are.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

/// The preemption bound of `ASYNCIO_LOOM=full`.
const FULL_PREEMPTIONS: &str = "5";

/// The crates built at `opt-level = 2` in the inner (dev) build: loom and
/// what it calls on every step of a model.
const OPTIMISED: &[&str] = &["loom", "generator", "scoped-tls", "tracing", "tracing-core"];

/// The rustflags of the outer build (`CARGO_ENCODED_RUSTFLAGS`, else
/// `RUSTFLAGS`) with `--cfg asyncio_loom` added, `\x1f`-separated as
/// `CARGO_ENCODED_RUSTFLAGS` takes them. Rustflags from cargo's config files
/// are not seen here; an environment variable replaces them, so they do not
/// reach the inner build.
fn loom_rustflags() -> OsString {
    let mut flags: Vec<String> = match std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(encoded) => encoded
            .split('\x1f')
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect(),
        Err(_) => std::env::var("RUSTFLAGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    };
    if !flags.windows(2).any(|w| w == ["--cfg", "asyncio_loom"]) {
        flags.extend(["--cfg".to_owned(), "asyncio_loom".to_owned()]);
    }
    flags.join("\x1f").into()
}

#[test]
fn loom_models_pass() {
    let preemptions = match std::env::var("ASYNCIO_LOOM").as_deref() {
        Err(_) | Ok("") => None,
        Ok("full") => Some(FULL_PREEMPTIONS),
        Ok("off") => {
            eprintln!("ASYNCIO_LOOM=off: the loom models are skipped");
            return;
        }
        Ok(other) => panic!("ASYNCIO_LOOM={other:?}: expected unset, `full` or `off`"),
    };
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("loom");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    let mut inner = Command::new(cargo);
    inner
        .current_dir(manifest_dir)
        .arg("test")
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"))
        .args(["-p", "asyncio", "--lib"])
        .arg("--target-dir")
        .arg(&target_dir);
    for krate in OPTIMISED {
        inner.arg(format!("--config=profile.dev.package.{krate}.opt-level=2"));
    }
    inner
        .args(["loom_models", "--", "--nocapture"])
        .env("CARGO_ENCODED_RUSTFLAGS", loom_rustflags())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        if let Some(bound) = preemptions {
            inner.env("LOOM_MAX_PREEMPTIONS", bound);
        }
    }

    let out = inner.output().expect("cannot run cargo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the loom models failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    // Some model ran: a build without the cfg has no `loom_models` module,
    // and its harness reports "ok" with nothing run.
    let passed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    assert!(passed > 0, "no loom model ran:\n{stdout}\n{stderr}");
    // Shown with `--nocapture`: how many interleavings each model explored.
    for line in stderr.lines().filter(|l| l.starts_with("loom model ")) {
        eprintln!("{line}");
    }
    eprintln!("{passed} loom models passed");
}
