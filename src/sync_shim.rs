//! The synchronisation types of the cancel-scope state machine, from `std`
//! normally and from [loom](https://docs.rs/loom) in the loom build, so that
//! loom can check the real code (as Tokio's `src/loom/` does).
//!
//! The decision between "drop now" and "clean up first" spans several
//! locks and an atomic: a scope's own mutex (`scope/node.rs`), a task
//! root's abort mutex (`scope/root.rs`), and a task's state word and locked
//! core (`task/state.rs`, `task/core.rs`). Those four import their `Mutex`
//! and atomics from here; the loom models (`scope/loom_models.rs`, under
//! `#[cfg(all(test, asyncio_loom))]`) run them on the interleavings loom
//! explores. `docs/design.md` ("Checked with loom") lists the models and
//! what they do not cover.
//!
//! # What stays `std` in the loom build
//! loom 0.7's `Arc` has no `Weak`, no `Arc::new_cyclic` and no unsized
//! coercion (`Arc<dyn Fn()>`), all of which the scopes use (a child's weak
//! link to its parent, a task root's idle hook). So [`Arc`] and [`Weak`]
//! are `std`'s in both builds: reference counts are not what is modelled;
//! the state behind the locks and the atomics is.
//!
//! # Running the models
//! `cargo test` runs them: `tests/loom.rs` runs cargo again with the cfg
//! (`ASYNCIO_LOOM=full` for a larger preemption bound, `ASYNCIO_LOOM=off`
//! to skip them). By hand, one model or all:
//! ```text
//! RUSTFLAGS="--cfg asyncio_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release --lib loom_models -- --nocapture --test-threads=1
//! ```
//! The cfg is `asyncio_loom`, not `loom`: Tokio and tokio-util have
//! `cfg(loom)` code of their own that needs loom as *their* dependency, so a
//! plain `--cfg loom` does not build them. Each model bounds its
//! preemptions (4 unless `LOOM_MAX_PREEMPTIONS` says otherwise) and prints
//! how many interleavings it explored and how long it took.
//!
//! Only the crate's own unit-test build switches to loom
//! (`cfg(all(test, asyncio_loom))`), where loom, a dev-dependency, is
//! available; the library as integration tests, examples and benches see it
//! stays on `std`, so the whole workspace still builds (and lints) under the
//! cfg. In that unit-test build the scopes work only inside a loom model
//! (loom's types panic elsewhere), so only the models are run there.

pub(crate) use std::sync::{Arc, Weak};

#[cfg(not(all(test, asyncio_loom)))]
pub(crate) use std::sync::{Mutex, MutexGuard, atomic};

#[cfg(all(test, asyncio_loom))]
pub(crate) use ::loom::sync::{Mutex, MutexGuard, atomic};

/// What the loom models share: a checked run with a bounded preemption.
#[cfg(all(test, asyncio_loom))]
pub(crate) mod model {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    /// The preemption bound when `LOOM_MAX_PREEMPTIONS` is not set. The
    /// scope and root models are exhaustive or nearly so at 4; the models
    /// that poll a real `on_cancel` grow about fivefold per step (unbounded,
    /// they do not finish in minutes).
    const DEFAULT_PREEMPTIONS: usize = 4;

    /// Runs `f` on every interleaving loom explores, with at most
    /// `LOOM_MAX_PREEMPTIONS` (default [`DEFAULT_PREEMPTIONS`]) preemptions,
    /// and prints how many there were and how long it took.
    pub(crate) fn check(name: &str, f: impl Fn() + Sync + Send + 'static) {
        let runs = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let mut builder = ::loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(DEFAULT_PREEMPTIONS);
        }
        let bound = builder.preemption_bound;
        let start = Instant::now();
        builder.check(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            f();
        });
        eprintln!(
            "loom model {name}: {} interleavings, preemption bound {bound:?}, {:.2?}",
            runs.load(Ordering::Relaxed),
            start.elapsed()
        );
    }
}
