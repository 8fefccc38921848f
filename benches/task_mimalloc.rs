//! The spawn + await pass of `task.rs` (raw Tokio, the two floors, ours),
//! with mimalloc as the global allocator on every side: shows that the gap
//! to raw Tokio, and the floors under it, are not glibc's doing. glibc's
//! `malloc` is what this machine's users get, so `task.rs` is the reference;
//! this bench answers "what if the allocator were fast?".
//!
//! `cargo bench --bench task_mimalloc` (`-- --quick`: 5 rounds instead of 15).

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[path = "spawn_common/mod.rs"]
mod spawn_common;

fn main() {
    // `cargo test --benches` runs bench binaries with `--test`: stay quick.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    println!("global allocator: mimalloc");
    spawn_common::interleaved_spawn_await(if quick { 5 } else { 15 });
}
