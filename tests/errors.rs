//! `asyncio::Error` and its parts; the duration conversion.

use std::time::Duration;

use asyncio::{CancelledError, Error, InvalidStateError, PanicError, Seconds, TimeoutError};

fn assert_traits<T: Clone + Send + Sync + 'static + std::error::Error>() {}

#[test]
fn error_is_clone_send_sync_static_and_an_error() {
    assert_traits::<Error>();
    assert_traits::<CancelledError>();
    assert_traits::<TimeoutError>();
    assert_traits::<InvalidStateError>();
    assert_traits::<PanicError>();
}

/// Predicates and texts, with asyncio's wording where one exists.
#[test]
fn predicates_and_texts() {
    let cases: [(Error, [bool; 4], &str); 5] = [
        (
            CancelledError::new().into(),
            [true, false, false, false],
            "cancelled",
        ),
        (
            CancelledError::with_message("m").into(),
            [true, false, false, false],
            "cancelled: m",
        ),
        (
            TimeoutError::new().into(),
            [false, true, false, false],
            "timed out",
        ),
        (
            InvalidStateError::new("Result is not set.").into(),
            [false, false, true, false],
            "Result is not set.",
        ),
        (
            PanicError::new("boom").into(),
            [false, false, false, true],
            "task panicked: boom",
        ),
    ];
    for (e, [c, t, i, p], text) in cases {
        assert_eq!(
            [
                e.is_cancelled(),
                e.is_timeout(),
                e.is_invalid_state(),
                e.is_panic()
            ],
            [c, t, i, p]
        );
        assert_eq!(e.to_string(), text);
        // Transparent: the message is in `Display`, not repeated as a source.
        assert!(std::error::Error::source(&e).is_none());
    }
}

/// The whole conversion table of `Seconds`.
#[test]
fn seconds_table() {
    assert_eq!(
        Duration::from_millis(3).to_duration(),
        Some(Duration::from_millis(3))
    );
    assert_eq!(0.5.to_duration(), Some(Duration::from_millis(500)));
    assert_eq!(2.to_duration(), Some(Duration::from_secs(2)));
    assert_eq!(2u64.to_duration(), Some(Duration::from_secs(2)));
    assert_eq!((-1).to_duration(), Some(Duration::ZERO));
    assert_eq!((-0.5).to_duration(), Some(Duration::ZERO));
    assert_eq!(f64::INFINITY.to_duration(), None);
    assert_eq!(None.to_duration(), None);
}

#[test]
#[should_panic(expected = "invalid delay: NaN")]
fn nan_seconds_panic() {
    let _ = f64::NAN.to_duration();
}

/// An error report that walks the `source()` chain (as `anyhow`'s `{:#}` or
/// `eyre` reports do) prints each message once: `Error` is transparent, its
/// `Display` is the part's and it does not return the part as its source.
#[test]
fn a_source_chain_prints_the_message_once() {
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            out.push_str(": ");
            out.push_str(&s.to_string());
            next = s.source();
        }
        out
    }
    let cases: [(Error, &str); 4] = [
        (CancelledError::with_message("bye").into(), "cancelled: bye"),
        (TimeoutError::new().into(), "timed out"),
        (
            InvalidStateError::new("Result is not set.").into(),
            "Result is not set.",
        ),
        (PanicError::new("boom").into(), "task panicked: boom"),
    ];
    for (e, text) in cases {
        assert_eq!(chain(&e), text);
    }
}
