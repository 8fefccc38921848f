//! asyncio's streams: [`open_connection`], [`start_server`],
//! [`StreamReader`], [`StreamWriter`] and [`Server`], over `tokio::net`.

mod connection;
mod error;
mod link;
mod reader;
mod server;
mod writer;

pub use connection::open_connection;
#[cfg(unix)]
pub use connection::open_unix_connection;
pub use error::{IncompleteReadError, LimitOverrunError, ReadUntilError};
pub use reader::StreamReader;
#[cfg(unix)]
pub use server::start_unix_server;
pub use server::{Server, start_server};
pub use writer::StreamWriter;
