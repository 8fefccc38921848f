//! Showing stacks: `TaskRef::get_stack`, `TaskRef::print_stack` and
//! [`dump_tasks`].

use std::io::{self, Write};

use super::frame::{Frame, await_name, short_name};
use crate::task::diag::{DiagEntry, NO_RECORDS, entry_of};
use crate::{Error, TaskRef};

impl TaskRef {
    /// The task's frames, oldest first (asyncio's `get_stack(limit=)`): its
    /// spawn site; while it is pending, the [`framed`](crate::framed) await points it is
    /// suspended in; if it panicked, the marked await points it panicked in
    /// and the panic's location. `limit` keeps the newest `limit` frames.
    ///
    /// ```
    /// use asyncio::FramedExt;
    ///
    /// asyncio::Runner::new().current_thread().run(async {
    ///     let task = asyncio::create_task(async {
    ///         asyncio::sleep(10).framed_as("outer").await
    ///     });
    ///     asyncio::sleep(0.01).await;
    ///     let names: Vec<String> = task.get_stack(None).iter().map(|f| f.name().into()).collect();
    ///     assert_eq!(names[1], "outer");
    ///     assert_eq!(task.get_stack(Some(1))[0].name(), "outer");
    ///     assert!(task.get_stack(Some(0)).is_empty());
    ///     task.cancel();
    /// });
    /// ```
    pub fn get_stack(&self, limit: Option<usize>) -> Vec<Frame> {
        let header = self.core().header();
        let state = header.state();
        let mut frames = vec![Frame::at(short_name(self.get_coro()), header.spawned_at)];
        if !header.is_done() || state.is_panicked() {
            let extra = header.diag.entry(self.id());
            let st = extra.as_ref().map(|e| e.lock());
            let st = st.as_deref().unwrap_or(&NO_RECORDS);
            let mut parent = 0;
            for slot in st.awaits.iter() {
                match slot {
                    Some(s) if s.parent == parent => {
                        frames.push(Frame::at(await_name(s.name), s.at));
                        parent = s.owner;
                    }
                    _ => break,
                }
            }
            if state.is_panicked() {
                if let Some(p) = &st.panic {
                    frames.push(Frame::panic(p));
                }
            }
        }
        if let Some(limit) = limit {
            let skip = frames.len().saturating_sub(limit);
            frames.drain(..skip);
        }
        frames
    }

    /// Writes the task's stack in asyncio's layout (`print_stack(limit=,
    /// file=)`): a header line — `Stack for <Task …> (most recent call
    /// last):`, `Traceback for <Task …> (most recent call last):` for a task
    /// that panicked, `No stack for <Task …>` when there are no frames — then
    /// one `  File "path", line N, in name` line a frame, then for a panicked
    /// task the error. In debug mode, the task's creation backtrace follows.
    ///
    /// # Errors
    /// The first error of writing to `out`; what was written before it
    /// stays written.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let task = asyncio::Task::builder().name("idle").spawn(std::future::pending::<()>());
    ///     let line = line!() - 1;
    ///     let mut out = Vec::new();
    ///     task.print_stack(None, &mut out).unwrap();
    ///     let text = String::from_utf8(out).unwrap();
    ///     let lines: Vec<&str> = text.lines().collect();
    ///     assert_eq!(lines[0], format!("Stack for {task} (most recent call last):"));
    ///     assert_eq!(lines[1], format!("  File \"{}\", line {line}, in Pending", file!()));
    ///     task.cancel();
    /// });
    /// ```
    pub fn print_stack(&self, limit: Option<usize>, out: &mut dyn Write) -> io::Result<()> {
        let frames = self.get_stack(limit);
        let header = self.core().header();
        let panicked = header.state().is_panicked();
        if frames.is_empty() {
            writeln!(out, "No stack for {self}")?;
        } else if panicked {
            writeln!(out, "Traceback for {self} (most recent call last):")?;
        } else {
            writeln!(out, "Stack for {self} (most recent call last):")?;
        }
        for frame in &frames {
            writeln!(out, "  {frame}")?;
        }
        if panicked {
            if let Some(e @ Error::Panicked(_)) = self.core().error() {
                writeln!(out, "{e}")?;
            }
        }
        if let Some(bt) = entry_of(self).as_deref().and_then(DiagEntry::backtrace) {
            writeln!(out, "Task created at (most recent call first):\n{bt}")?;
        }
        Ok(())
    }
}

/// Writes the stack of every pending task of ours — on the current runtime,
/// or on every runtime when called outside one (from a watchdog thread) —
/// in task id order, a blank line between two: the asyncio-side answer to
/// "what is my hung service doing?".
///
/// # Errors
/// The first error of writing to `out`, which ends the dump there.
///
/// ```
/// use asyncio::FramedExt;
///
/// asyncio::Runner::new().current_thread().run(async {
///     let stuck = asyncio::Task::builder()
///         .name("stuck")
///         .spawn(std::future::pending::<()>().framed_as("waiting forever"));
///     asyncio::sleep(0.01).await;
///     let mut out = Vec::new();
///     asyncio::dump_tasks(&mut out).unwrap();
///     let text = String::from_utf8(out).unwrap();
///     assert!(text.contains("name='stuck'") && text.contains("in waiting forever"));
///     stuck.cancel();
/// });
/// ```
pub fn dump_tasks(out: &mut dyn Write) -> io::Result<()> {
    let mut tasks = crate::all_tasks();
    tasks.sort_by_key(|t| t.id());
    for (i, task) in tasks.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        task.print_stack(None, out)?;
    }
    Ok(())
}
