//! asyncio's stream errors: `IncompleteReadError` and `LimitOverrunError`.

use std::fmt;
use std::io;

/// The stream ended (or failed) before the expected bytes arrived:
/// asyncio's `IncompleteReadError`.
///
/// [`partial`](Self::partial) holds the bytes that were read; nothing is
/// lost. When a transport error (a reset, a broken pipe) ended the stream,
/// [`io_error`](Self::io_error) holds it: an error is never reported as a
/// plain end of stream.
///
/// ```
/// asyncio::run(async {
///     let mut reader = asyncio::StreamReader::new(&b"abc"[..]);
///     let err = reader.readexactly(5).await.unwrap_err();
///     assert_eq!(err.partial(), b"abc");
///     assert_eq!(err.expected(), Some(5));
///     assert_eq!(err.to_string(), "3 bytes read on a total of 5 expected bytes");
///     let io: std::io::Error = err.into();
///     assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
/// });
/// ```
#[derive(Debug)]
pub struct IncompleteReadError {
    partial: Vec<u8>,
    expected: Option<usize>,
    source: Option<io::Error>,
}

impl IncompleteReadError {
    pub(crate) fn new(
        partial: Vec<u8>,
        expected: Option<usize>,
        source: Option<io::Error>,
    ) -> Self {
        Self {
            partial,
            expected,
            source,
        }
    }

    /// The bytes read before the stream ended.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"ab"[..]);
    ///     assert_eq!(reader.readexactly(3).await.unwrap_err().partial(), b"ab");
    /// });
    /// ```
    pub fn partial(&self) -> &[u8] {
        &self.partial
    }

    /// The bytes read before the stream ended, by value.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"ab"[..]);
    ///     let bytes = reader.readexactly(3).await.unwrap_err().into_partial();
    ///     assert_eq!(bytes, b"ab");
    /// });
    /// ```
    pub fn into_partial(self) -> Vec<u8> {
        self.partial
    }

    /// How many bytes were expected: `Some(n)` for `readexactly(n)`, `None`
    /// for `readuntil` (asyncio's `expected=None`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"ab"[..]);
    ///     let err = reader.readuntil(b"\n").await.unwrap_err();
    ///     match err {
    ///         asyncio::ReadUntilError::IncompleteRead(e) => assert_eq!(e.expected(), None),
    ///         other => panic!("{other}"),
    ///     }
    /// });
    /// ```
    pub fn expected(&self) -> Option<usize> {
        self.expected
    }

    /// The transport error that ended the stream, if it did not simply end.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b""[..]);
    ///     assert!(reader.readexactly(1).await.unwrap_err().io_error().is_none());
    /// });
    /// ```
    pub fn io_error(&self) -> Option<&io::Error> {
        self.source.as_ref()
    }
}

impl fmt::Display for IncompleteReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            Some(n) => write!(
                f,
                "{} bytes read on a total of {n} expected bytes",
                self.partial.len()
            )?,
            None => write!(
                f,
                "{} bytes read on a total of undefined expected bytes",
                self.partial.len()
            )?,
        }
        if let Some(e) = &self.source {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for IncompleteReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<IncompleteReadError> for io::Error {
    /// The transport error if there was one, else `UnexpectedEof` carrying
    /// the [`IncompleteReadError`].
    fn from(e: IncompleteReadError) -> Self {
        match e.source {
            Some(source) => source,
            None => io::Error::new(io::ErrorKind::UnexpectedEof, e),
        }
    }
}

/// The separator was not found within the reader's limit: asyncio's
/// `LimitOverrunError`. The data stays in the reader's buffer;
/// [`consumed`](Self::consumed) says how many bytes are to be consumed.
///
/// ```
/// asyncio::run(async {
///     let mut reader = asyncio::StreamReader::new(&b"aaaaaaaa\n"[..]).with_limit(4);
///     let err = reader.readuntil(b"\n").await.unwrap_err();
///     let asyncio::ReadUntilError::LimitOverrun(e) = err else { panic!() };
///     assert_eq!(e.to_string(), "Separator is found, but chunk is longer than limit");
///     assert_eq!(e.consumed(), 8);
///     // Nothing was lost: the bytes are still there.
///     assert_eq!(reader.read(100).await.unwrap(), b"aaaaaaaa\n");
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitOverrunError {
    message: &'static str,
    consumed: usize,
}

impl LimitOverrunError {
    pub(crate) fn not_found(consumed: usize) -> Self {
        Self {
            message: "Separator is not found, and chunk exceed the limit",
            consumed,
        }
    }

    pub(crate) fn too_long(consumed: usize) -> Self {
        Self {
            message: "Separator is found, but chunk is longer than limit",
            consumed,
        }
    }

    /// asyncio's `consumed`: the bytes to consume to get past the overrun.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"xxxxxx"[..]).with_limit(2);
    ///     let asyncio::ReadUntilError::LimitOverrun(e) = reader.readuntil(b"!").await.unwrap_err()
    ///     else { panic!() };
    ///     assert!(e.consumed() > 2);
    /// });
    /// ```
    pub fn consumed(&self) -> usize {
        self.consumed
    }
}

impl fmt::Display for LimitOverrunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for LimitOverrunError {}

impl From<LimitOverrunError> for io::Error {
    /// `InvalidData` carrying the [`LimitOverrunError`].
    fn from(e: LimitOverrunError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Why [`readuntil`](crate::StreamReader::readuntil) failed.
///
/// ```
/// asyncio::run(async {
///     let mut reader = asyncio::StreamReader::new(&b"no newline"[..]);
///     let err = reader.readuntil(b"\n").await.unwrap_err();
///     assert!(matches!(err, asyncio::ReadUntilError::IncompleteRead(_)));
///     let io: std::io::Error = err.into();
///     assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
/// });
/// ```
#[derive(Debug)]
pub enum ReadUntilError {
    /// The stream ended before the separator (the bytes are in the error).
    IncompleteRead(IncompleteReadError),
    /// The separator was not found within the limit (the bytes stay in the
    /// reader's buffer).
    LimitOverrun(LimitOverrunError),
}

impl fmt::Display for ReadUntilError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IncompleteRead(e) => e.fmt(f),
            Self::LimitOverrun(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadUntilError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::IncompleteRead(e) => Some(e),
            Self::LimitOverrun(e) => Some(e),
        }
    }
}

impl From<ReadUntilError> for io::Error {
    fn from(e: ReadUntilError) -> Self {
        match e {
            ReadUntilError::IncompleteRead(e) => e.into(),
            ReadUntilError::LimitOverrun(e) => e.into(),
        }
    }
}

/// A shareable copy of a transport error: every later read reports it.
pub(crate) fn copy_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}
