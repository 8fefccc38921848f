//! [`Frame`], one line of a task's stack, and the type-name parser that
//! names frames after futures.

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;

use crate::task::diag::{AwaitName, PanicAt};

/// One line of a task's stack: a source location and a name.
///
/// `Display` gives asyncio's (Python's `traceback`) layout:
/// `File "src/main.rs", line 12, in worker`.
///
/// ```
/// asyncio::run(async {
///     let task = asyncio::create_task(std::future::pending::<()>()); let line = line!();
///     let spawn = &task.get_stack(None)[0];
///     assert_eq!((spawn.file(), spawn.line()), (file!(), line));
///     assert_eq!(spawn.name(), "Pending");
///     assert_eq!(spawn.to_string(), format!("File \"{}\", line {line}, in Pending", file!()));
///     task.cancel();
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    name: Cow<'static, str>,
    file: Cow<'static, str>,
    line: u32,
    column: u32,
}

impl Frame {
    pub(super) fn at(name: &'static str, at: &'static Location<'static>) -> Self {
        Frame {
            name: Cow::Borrowed(name),
            file: Cow::Borrowed(at.file()),
            line: at.line(),
            column: at.column(),
        }
    }

    /// What is at this location: the short type name of the future spawned
    /// or awaited there (`worker` for `worker()`, an `async` block takes the
    /// name of the function it is written in), a label given to
    /// [`framed_as`](crate::framed_as), or `<panic>`.
    ///
    /// ```
    /// async fn worker() {}
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(worker());
    ///     assert_eq!(t.get_stack(None)[0].name(), "worker");
    /// });
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source file, as `file!()` spells it.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {});
    ///     assert_eq!(t.get_stack(None)[0].file(), file!());
    /// });
    /// ```
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line, from 1.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {}); let line = line!();
    ///     assert_eq!(t.get_stack(None)[0].line(), line);
    /// });
    /// ```
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, from 1.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {});
    ///     assert_eq!(t.get_stack(None)[0].column(), 13);
    /// });
    /// ```
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "File \"{}\", line {}, in {}",
            self.file, self.line, self.name
        )
    }
}

/// The readable part of a type name: `worker` for
/// `app::jobs::worker::{{closure}}`, `Sleep` for `asyncio::sleep::Sleep`,
/// `Map` for `futures_util::future::Map<A, B>`. A slice of the input: no
/// allocation.
pub(super) fn short_name(type_name: &'static str) -> &'static str {
    // A task spawned on a marked future is named after what it wraps.
    if let Some(inner) = type_name
        .strip_prefix(framed_prefix())
        .and_then(|t| t.strip_suffix('>'))
    {
        return short_name(inner);
    }
    let mut depth = 0usize;
    let mut seg_start = 0;
    let mut best: Option<&'static str> = None;
    let bytes = type_name.as_bytes();
    let mut i = 0;
    let take = |start: usize, end: usize, best: &mut Option<&'static str>| {
        let seg = &type_name[start..end];
        let seg = seg.split('<').next().unwrap_or(seg).trim();
        if !seg.is_empty() && !seg.starts_with('{') && !seg.starts_with('&') {
            *best = Some(seg);
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                take(seg_start, i, &mut best);
                i += 2;
                seg_start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    take(seg_start, bytes.len(), &mut best);
    best.unwrap_or(type_name)
}

/// The readable name of a marked await point.
pub(super) fn await_name(name: AwaitName) -> &'static str {
    match name {
        AwaitName::Type(f) => short_name(f()),
        AwaitName::Label(l) => l,
    }
}

impl Frame {
    /// The `<panic>` frame of a task that panicked at `at`.
    pub(super) fn panic(at: &PanicAt) -> Self {
        Frame {
            name: Cow::Borrowed("<panic>"),
            file: Cow::Owned(at.file.clone()),
            line: at.line,
            column: at.column,
        }
    }
}

/// `"asyncio::stack::framed::Framed<"`, read from the type itself so that it
/// follows the type wherever it moves.
fn framed_prefix() -> &'static str {
    let name = std::any::type_name::<super::Framed<()>>();
    name.strip_suffix("()>").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn short_names() {
        assert_eq!(short_name("app::jobs::worker::{{closure}}"), "worker");
        assert_eq!(short_name("m::main::{{closure}}::{{closure}}"), "main");
        assert_eq!(short_name("asyncio::sleep::Sleep"), "Sleep");
        assert_eq!(
            short_name("futures_util::future::Map<a::B<c::D>, e::F>"),
            "Map"
        );
        assert_eq!(short_name("core::future::pending::Pending<()>"), "Pending");
        assert_eq!(short_name("i32"), "i32");
        // A marked future is named after what it wraps, wherever `Framed`
        // lives (its path is read from `type_name`, not written here).
        assert_eq!(
            short_name(std::any::type_name::<
                crate::futures::Framed<crate::futures::Sleep<()>>,
            >()),
            "Sleep"
        );
    }
}
