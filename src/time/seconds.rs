//! Seconds as Python writes them: [`Seconds`], the one conversion every delay
//! and timeout parameter goes through.
//!
//! asyncio takes delays as float seconds (`sleep(0.5)`, `wait_for(aw, 2)`);
//! Rust code usually has a [`Duration`]. Every delay or timeout parameter of
//! this crate accepts any of them: see [`Seconds`] for the table.
//!
//! ```
//! use std::time::Duration;
//! use asyncio::Seconds;
//!
//! assert_eq!(1.5.to_duration(), Some(Duration::from_millis(1500)));
//! assert_eq!(2.to_duration(), Some(Duration::from_secs(2)));
//! assert_eq!((-3).to_duration(), Some(Duration::ZERO));
//! assert_eq!(f64::INFINITY.to_duration(), None);
//! assert_eq!(None.to_duration(), None);
//! ```

use std::time::Duration;

/// A delay or timeout: a [`Duration`], seconds as a float or an integer, or
/// `None` for "no timeout".
///
/// | value | meaning |
/// |---|---|
/// | `Duration` | that long |
/// | `0.5`, `2` (any float or integer type) | that many seconds |
/// | negative seconds | zero (as in asyncio) |
/// | `f64::INFINITY` | forever: no timeout |
/// | `None` (an `Option<Duration>`) | forever: no timeout |
/// | `f64::NAN` | panics: `invalid delay: NaN (not a number)` |
///
/// ```
/// use std::time::Duration;
/// use asyncio::Seconds;
///
/// fn deadline_of(t: impl Seconds) -> Option<Duration> {
///     t.to_duration()
/// }
/// assert_eq!(deadline_of(Duration::from_secs(1)), Some(Duration::from_secs(1)));
/// assert_eq!(deadline_of(0.25), Some(Duration::from_millis(250)));
/// assert_eq!(deadline_of(None), None);
/// ```
pub trait Seconds {
    /// The duration, or `None` for "forever" (infinity, or `None`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use asyncio::Seconds;
    ///
    /// assert_eq!(0.5.to_duration(), Some(Duration::from_millis(500)));
    /// assert_eq!(f64::INFINITY.to_duration(), None);
    /// ```
    ///
    /// # Panics
    /// On NaN seconds, with `invalid delay: NaN (not a number)`.
    fn to_duration(self) -> Option<Duration>;
}

impl Seconds for Duration {
    fn to_duration(self) -> Option<Duration> {
        Some(self)
    }
}

impl Seconds for Option<Duration> {
    fn to_duration(self) -> Option<Duration> {
        self
    }
}

impl Seconds for f64 {
    fn to_duration(self) -> Option<Duration> {
        if self.is_nan() {
            panic!(
                "invalid delay: NaN (not a number); pass seconds as a number, or None for no timeout"
            );
        }
        if self <= 0.0 {
            return Some(Duration::ZERO);
        }
        // `try_from_secs_f64` fails for infinity and for values too large for
        // a Duration: both mean "longer than anything we could wait".
        Duration::try_from_secs_f64(self).ok()
    }
}

impl Seconds for f32 {
    fn to_duration(self) -> Option<Duration> {
        f64::from(self).to_duration()
    }
}

macro_rules! signed_seconds {
    ($($t:ty),*) => {$(
        impl Seconds for $t {
            fn to_duration(self) -> Option<Duration> {
                Some(Duration::from_secs(u64::try_from(self).unwrap_or(0)))
            }
        }
    )*};
}
signed_seconds!(i8, i16, i32, i64, isize);

macro_rules! unsigned_seconds {
    ($($t:ty),*) => {$(
        impl Seconds for $t {
            fn to_duration(self) -> Option<Duration> {
                Some(Duration::from_secs(self as u64))
            }
        }
    )*};
}
unsigned_seconds!(u8, u16, u32, u64, usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(0.5f32.to_duration(), Some(Duration::from_millis(500)));
        assert_eq!(0u8.to_duration(), Some(Duration::ZERO));
        assert_eq!(i64::MIN.to_duration(), Some(Duration::ZERO));
        assert_eq!((-0.1).to_duration(), Some(Duration::ZERO));
        assert_eq!(f64::NEG_INFINITY.to_duration(), Some(Duration::ZERO));
        assert_eq!(1e300.to_duration(), None);
        assert_eq!(Some(Duration::ZERO).to_duration(), Some(Duration::ZERO));
    }

    #[test]
    #[should_panic(expected = "invalid delay: NaN")]
    fn nan_panics() {
        let _ = f64::NAN.to_duration();
    }
}
