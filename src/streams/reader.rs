//! `StreamReader`: asyncio's buffered reader over any `AsyncRead`.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use futures::Stream;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::error::{IncompleteReadError, LimitOverrunError, ReadUntilError, copy_error};
use super::link::Link;

/// asyncio's default reader limit (`2 ** 16`).
pub(crate) const DEFAULT_LIMIT: usize = 64 * 1024;

/// Bytes asked of the transport at a time (at least).
const READ_CHUNK: usize = 64 * 1024;

/// asyncio's `StreamReader`: a buffered reader with `readline`,
/// `readexactly`, `readuntil`, `read` and `at_eof`.
///
/// The bytes read from the transport live in the reader, never in a
/// waiting future: a read that is dropped (a `select!` branch that lost, a
/// `wait_for` that timed out, a cancelled task) loses no byte.
///
/// The reader asks the transport for data only while one of its read
/// methods waits, so a slow consumer holds the peer back (asyncio's read
/// flow control).
///
/// ```
/// asyncio::run(async {
///     let mut reader = asyncio::StreamReader::new(&b"line 1\nline 2\nrest"[..]);
///     assert_eq!(reader.readline().await.unwrap(), b"line 1\n");
///     assert_eq!(reader.readexactly(4).await.unwrap(), b"line");
///     assert_eq!(reader.readuntil(b"\n").await.unwrap(), b" 2\n");
///     assert_eq!(reader.read(100).await.unwrap(), b"rest");
///     assert_eq!(reader.read(100).await.unwrap(), b"");
///     assert!(reader.at_eof());
/// });
/// ```
pub struct StreamReader {
    /// In a `Mutex` only so that the reader is `Sync` (a `&Process` is
    /// then `Send`); it is reached through `get_mut`, never locked.
    io: Option<Mutex<Box<dyn AsyncRead + Send + Unpin>>>,
    /// `buf[pos..]` is what was read and not yet consumed.
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    error: Option<io::Error>,
    limit: usize,
    /// Set when the connection is closed from the writer's side.
    link: Option<Arc<Link>>,
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StreamReader");
        d.field("buffered", &self.buffered().len())
            .field("limit", &self.limit);
        if self.eof {
            d.field("eof", &true);
        }
        if let Some(e) = &self.error {
            d.field("exception", e);
        }
        d.finish_non_exhaustive()
    }
}

impl StreamReader {
    /// A reader over `reader`, with asyncio's default limit of 64 KiB.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let (client, server) = tokio::io::duplex(64);
    ///     let mut reader = asyncio::StreamReader::new(server);
    ///     let mut writer = asyncio::StreamWriter::new(client);
    ///     writer.write(b"hello\n");
    ///     writer.drain().await.unwrap();
    ///     assert_eq!(reader.readline().await.unwrap(), b"hello\n");
    /// });
    /// ```
    pub fn new<R>(reader: R) -> Self
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        Self::with_link(Box::new(reader), None)
    }

    pub(crate) fn with_link(
        io: Box<dyn AsyncRead + Send + Unpin>,
        link: Option<Arc<Link>>,
    ) -> Self {
        Self {
            io: Some(Mutex::new(io)),
            buf: Vec::new(),
            pos: 0,
            eof: false,
            error: None,
            limit: DEFAULT_LIMIT,
            link,
        }
    }

    /// The same reader with another limit (asyncio's `limit=`): the longest
    /// line [`readline`](Self::readline) and [`readuntil`](Self::readuntil)
    /// accept. It also sets the limit of a reader that
    /// [`open_connection`](crate::open_connection) or a server handed you.
    ///
    /// # Panics
    ///
    /// If `limit` is 0 (asyncio's `ValueError('Limit cannot be <= 0')`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"abcdef\n"[..]).with_limit(3);
    ///     assert!(reader.readuntil(b"\n").await.is_err());
    /// });
    /// ```
    pub fn with_limit(mut self, limit: usize) -> Self {
        assert!(
            limit > 0,
            "Limit cannot be <= 0: StreamReader::with_limit needs at least 1"
        );
        self.limit = limit;
        self
    }

    /// The reader's limit.
    ///
    /// ```
    /// let r = asyncio::StreamReader::new(&b""[..]);
    /// assert_eq!(r.limit(), 64 * 1024);
    /// ```
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The bytes read from the transport and not yet consumed (asyncio's
    /// `_buffer`), without waiting.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"ab\ncd"[..]);
    ///     reader.readline().await.unwrap();
    ///     assert_eq!(reader.buffered(), b"cd");
    /// });
    /// ```
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// `true` once the end of the stream was seen and the buffer is empty
    /// (asyncio's `at_eof()`). The reader reads only while a read method
    /// waits, so the end is seen by a read that found it.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"x"[..]);
    ///     assert!(!reader.at_eof());
    ///     assert_eq!(reader.read(10).await.unwrap(), b"x");
    ///     assert_eq!(reader.read(10).await.unwrap(), b"");
    ///     assert!(reader.at_eof());
    /// });
    /// ```
    pub fn at_eof(&self) -> bool {
        let closed = self.eof || self.link.as_ref().is_some_and(|l| l.is_closed());
        closed && self.pos == self.buf.len()
    }

    /// The transport error that ended the stream, if one did (asyncio's
    /// `exception()`).
    ///
    /// ```
    /// let r = asyncio::StreamReader::new(&b""[..]);
    /// assert!(r.exception().is_none());
    /// ```
    pub fn exception(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    fn consume(&mut self, n: usize) -> Vec<u8> {
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        out
    }

    fn take_all(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        if self.pos > 0 {
            out.drain(..self.pos);
        }
        self.pos = 0;
        out
    }

    /// Reads more bytes into the buffer: `Ok(true)` if some came,
    /// `Ok(false)` at the end of the stream. Cancel safe: a byte is in the
    /// buffer as soon as it was read.
    async fn fill(&mut self) -> io::Result<bool> {
        if let Some(e) = &self.error {
            return Err(copy_error(e));
        }
        if self.eof {
            return Ok(false);
        }
        if let Some(link) = self.link.as_ref().filter(|l| l.is_closed()) {
            return self.closed_by_writer(&link.clone());
        }
        // Keep the buffer from creeping: move the live bytes to the front
        // once the consumed part is the bigger one.
        if self.pos > 0 && self.pos >= self.buf.len() - self.pos {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        let Some(io) = self.io.as_mut() else {
            return Ok(false);
        };
        let io = io.get_mut().unwrap_or_else(PoisonError::into_inner);
        let result = match &self.link {
            None => io.read_buf(&mut self.buf).await,
            Some(link) => {
                let link = link.clone();
                tokio::select! {
                    biased;
                    r = io.read_buf(&mut self.buf) => r,
                    () = link.closed() => return self.closed_by_writer(&link),
                }
            }
        };
        match result {
            Ok(0) => {
                self.set_eof();
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(e) => {
                self.error = Some(copy_error(&e));
                self.io = None;
                Err(e)
            }
        }
    }

    /// The writer closed the connection: the end of the stream, or the
    /// error the connection failed with.
    fn closed_by_writer(&mut self, link: &Link) -> io::Result<bool> {
        match link.error() {
            Some(e) => {
                self.error = Some(copy_error(&e));
                self.io = None;
                Err(e)
            }
            None => {
                self.set_eof();
                Ok(false)
            }
        }
    }

    fn set_eof(&mut self) {
        self.eof = true;
        // Release our half of the transport (a socket closes once both
        // halves are gone).
        self.io = None;
    }

    /// Up to `n` bytes, as soon as at least one is there; empty at the end
    /// of the stream, or for `n == 0` (asyncio's `read(n)`). The limit does
    /// not cap `n`.
    ///
    /// # Errors
    ///
    /// The transport's error, once the buffered bytes are all read: the
    /// error that ended the stream (a reset, say), returned by this and
    /// every later read (see [`exception`](Self::exception)).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting, it consumed nothing.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"hello"[..]);
    ///     assert_eq!(reader.read(3).await.unwrap(), b"hel");
    ///     assert_eq!(reader.read(0).await.unwrap(), b"");
    ///     assert_eq!(reader.read(100).await.unwrap(), b"lo");
    ///     assert_eq!(reader.read(100).await.unwrap(), b"");
    /// });
    /// ```
    pub async fn read(&mut self, n: usize) -> io::Result<Vec<u8>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if self.pos == self.buf.len() && !self.fill().await? {
            return Ok(Vec::new());
        }
        if self.pos == 0 && self.buf.len() <= n {
            // All of the buffer: hand it over instead of copying it.
            return Ok(std::mem::take(&mut self.buf));
        }
        let take = n.min(self.buf.len() - self.pos);
        Ok(self.consume(take))
    }

    /// Everything up to the end of the stream (asyncio's `read()` /
    /// `read(-1)`); no limit applies.
    ///
    /// # Errors
    ///
    /// The transport's error, if one ended the stream; the bytes read before
    /// it stay in the buffer ([`buffered`](Self::buffered)).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting, it consumed nothing (what it
    /// read stays in the buffer).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"all of it"[..]);
    ///     assert_eq!(reader.read_to_end().await.unwrap(), b"all of it");
    /// });
    /// ```
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        while self.fill().await? {}
        Ok(self.take_all())
    }

    /// One line, up to and including `\n`; the partial last line at the end
    /// of the stream; empty once nothing is left (asyncio's `readline()`).
    ///
    /// # Errors
    ///
    /// - A line longer than the limit is an `InvalidData` error carrying a
    ///   [`LimitOverrunError`], and, as asyncio's, the line is thrown away
    ///   (up to its `\n` if one was read, else the whole buffer).
    /// - The transport's error, if one ended the stream before a `\n`; the
    ///   bytes read stay in the buffer.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting, it consumed nothing.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"a\nb"[..]);
    ///     assert_eq!(reader.readline().await.unwrap(), b"a\n");
    ///     assert_eq!(reader.readline().await.unwrap(), b"b");
    ///     assert_eq!(reader.readline().await.unwrap(), b"");
    /// });
    /// ```
    pub async fn readline(&mut self) -> io::Result<Vec<u8>> {
        match self.scan(b"\n").await {
            Ok(Scan::Found(end)) => Ok(self.consume(end)),
            Ok(Scan::Eof) => Ok(self.take_all()),
            Ok(Scan::Overrun(e)) => {
                let live = &self.buf[self.pos..];
                match find(live, b"\n", 0) {
                    Some(i) => {
                        self.consume(i + 1);
                    }
                    None => {
                        self.take_all();
                    }
                }
                Err(e.into())
            }
            Err(e) => Err(e),
        }
    }

    /// The bytes up to and including `separator` (asyncio's
    /// `readuntil(sep)`).
    ///
    /// # Errors
    ///
    /// - At the end of the stream without the separator:
    ///   [`ReadUntilError::IncompleteRead`], holding the bytes (the buffer
    ///   is emptied into it).
    /// - No separator within the limit: [`ReadUntilError::LimitOverrun`];
    ///   the bytes stay in the buffer.
    /// - A transport error: [`ReadUntilError::IncompleteRead`] with the
    ///   buffered bytes and the error in
    ///   [`io_error`](IncompleteReadError::io_error).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting, it consumed nothing.
    ///
    /// # Panics
    ///
    /// If `separator` is empty (asyncio's `ValueError('Separator should be
    /// at least one-byte string')`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"key=value;rest"[..]);
    ///     assert_eq!(reader.readuntil(b"=").await.unwrap(), b"key=");
    ///     assert_eq!(reader.readuntil(b";").await.unwrap(), b"value;");
    /// });
    /// ```
    pub async fn readuntil(&mut self, separator: &[u8]) -> Result<Vec<u8>, ReadUntilError> {
        assert!(
            !separator.is_empty(),
            "Separator should be at least one-byte string: readuntil needs a non-empty separator"
        );
        match self.scan(separator).await {
            Ok(Scan::Found(end)) => Ok(self.consume(end)),
            Ok(Scan::Eof) => Err(ReadUntilError::IncompleteRead(IncompleteReadError::new(
                self.take_all(),
                None,
                None,
            ))),
            Ok(Scan::Overrun(e)) => Err(ReadUntilError::LimitOverrun(e)),
            Err(e) => Err(ReadUntilError::IncompleteRead(IncompleteReadError::new(
                self.take_all(),
                None,
                Some(e),
            ))),
        }
    }

    /// Exactly `n` bytes (asyncio's `readexactly(n)`); the limit does not cap
    /// `n`.
    ///
    /// # Errors
    ///
    /// At the end of the stream before `n` bytes: an [`IncompleteReadError`]
    /// holding the bytes read (the buffer is emptied into it), with the
    /// transport error in [`io_error`](IncompleteReadError::io_error) if one
    /// ended the stream.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting, it consumed nothing (what it
    /// read stays in the buffer for the next read).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"0123456789"[..]);
    ///     assert_eq!(reader.readexactly(4).await.unwrap(), b"0123");
    ///     assert_eq!(reader.readexactly(0).await.unwrap(), b"");
    ///     let err = reader.readexactly(10).await.unwrap_err();
    ///     assert_eq!(err.partial(), b"456789");
    /// });
    /// ```
    pub async fn readexactly(&mut self, n: usize) -> Result<Vec<u8>, IncompleteReadError> {
        while self.buf.len() - self.pos < n {
            match self.fill().await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(IncompleteReadError::new(self.take_all(), Some(n), None));
                }
                Err(e) => {
                    return Err(IncompleteReadError::new(self.take_all(), Some(n), Some(e)));
                }
            }
        }
        Ok(self.consume(n))
    }

    /// The lines of the stream, as asyncio's `async for line in reader`:
    /// [`readline`](Self::readline) until it returns nothing.
    ///
    /// # Errors
    ///
    /// An item is `Err` where [`readline`](Self::readline) fails (a line
    /// over the limit, a transport error); the stream ends after it.
    ///
    /// # Cancel safety
    ///
    /// As [`readline`](Self::readline): a `next()` dropped while waiting
    /// consumed nothing.
    ///
    /// ```
    /// use futures::StreamExt;
    ///
    /// asyncio::run(async {
    ///     let mut reader = asyncio::StreamReader::new(&b"one\ntwo\n"[..]);
    ///     let lines: Vec<_> = reader.lines().map(Result::unwrap).collect().await;
    ///     assert_eq!(lines, [b"one\n".to_vec(), b"two\n".to_vec()]);
    /// });
    /// ```
    pub fn lines(&mut self) -> impl Stream<Item = io::Result<Vec<u8>>> + Send + '_ {
        futures::stream::unfold(Some(self), |reader| async move {
            let reader = reader?;
            match reader.readline().await {
                Ok(line) if line.is_empty() => None,
                Ok(line) => Some((Ok(line), Some(reader))),
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// Reads until `sep` is in the buffer (asyncio's `readuntil` loop).
    /// Consumes nothing.
    async fn scan(&mut self, sep: &[u8]) -> io::Result<Scan> {
        let seplen = sep.len();
        // Where the search resumes: the bytes before it were searched.
        let mut offset = 0;
        loop {
            let live = self.buf.len() - self.pos;
            if live >= seplen {
                if let Some(i) = find(&self.buf[self.pos..], sep, offset) {
                    if i > self.limit {
                        return Ok(Scan::Overrun(LimitOverrunError::too_long(i)));
                    }
                    return Ok(Scan::Found(i + seplen));
                }
                offset = live + 1 - seplen;
                if offset > self.limit {
                    return Ok(Scan::Overrun(LimitOverrunError::not_found(offset)));
                }
            }
            if !self.fill().await? {
                return Ok(Scan::Eof);
            }
        }
    }
}

enum Scan {
    /// The separator ends at this index of the live bytes.
    Found(usize),
    Eof,
    Overrun(LimitOverrunError),
}

/// The first index `>= from` where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.len() == 1 {
        return find_byte(&hay[from..], needle[0]).map(|i| i + from);
    }
    let first = needle[0];
    let mut start = from;
    while start + needle.len() <= hay.len() {
        let i = start + find_byte(&hay[start..=hay.len() - needle.len()], first)?;
        if hay[i..].starts_with(needle) {
            return Some(i);
        }
        start = i + 1;
    }
    None
}

/// The first index of `byte` in `hay`: eight bytes at a time.
fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(byte);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8")) ^ pattern;
        let found = word.wrapping_sub(LO) & !word & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == byte)
        .map(|i| base + i)
}

#[cfg(test)]
mod tests {
    use super::{find, find_byte};

    #[test]
    fn find_byte_agrees_with_a_plain_search() {
        let hay: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
        for b in 0..=255u8 {
            for start in [0, 1, 5, 9, 17] {
                assert_eq!(
                    find_byte(&hay[start..], b),
                    hay[start..].iter().position(|&x| x == b)
                );
            }
        }
    }

    #[test]
    fn find_locates_multi_byte_separators() {
        assert_eq!(find(b"abc\r\ndef\r\n", b"\r\n", 0), Some(3));
        assert_eq!(find(b"abc\r\ndef\r\n", b"\r\n", 4), Some(8));
        assert_eq!(find(b"abc\r", b"\r\n", 0), None);
        assert_eq!(find(b"aab", b"ab", 0), Some(1));
    }
}
