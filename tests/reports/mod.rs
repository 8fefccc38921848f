//! Capturing exception-handler reports in tests. The handler is
//! process-wide and the tests of one file run in parallel threads: one
//! capturing handler is installed once per test binary, and each test looks
//! only at the reports about its own, uniquely named tasks.
#![allow(dead_code)] // each test binary uses its own part

use std::sync::{Mutex, Once};

use asyncio::ExceptionContext;

/// (message, task name, full text) of every report so far.
static REPORTS: Mutex<Vec<(String, Option<String>, String)>> = Mutex::new(Vec::new());

/// Installs the capturing handler (once).
pub fn capture() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        asyncio::set_exception_handler(Some(|ctx: &ExceptionContext| {
            REPORTS.lock().unwrap().push((
                ctx.message().to_string(),
                ctx.task().map(|t| t.get_name()),
                ctx.to_string(),
            ));
        }));
    });
}

/// (message, full text) of the reports about the task called `name`.
pub fn reports_for(name: &str) -> Vec<(String, String)> {
    REPORTS
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, task, _)| task.as_deref() == Some(name))
        .map(|(m, _, text)| (m.clone(), text.clone()))
        .collect()
}

/// The "never retrieved" reports about the task called `name` (a slow-poll
/// warning, which a busy machine can add to any poll, is not counted).
pub fn lost_reports_for(name: &str) -> Vec<(String, String)> {
    let mut reports = reports_for(name);
    reports.retain(|(msg, _)| msg == "Task exception was never retrieved");
    reports
}
