//! What the crate's macros expand to and the plumbing of its generic bounds:
//! public only so that `gather!` and user code naming a bound compile, not
//! part of the API (hidden from the docs, sealed, may change in any
//! release).

pub use crate::combinators::gather::{TaskTuple, TupleSlots, gather_tuple};
pub use crate::combinators::input::WaitTarget;
