//! Configuration: the TOML schema ([`schema`]), value types shared by every section
//! ([`values`]) and loading with full validation ([`load`]), so
//! that a bad file is refused with every problem located, and a reload never replaces a running
//! config with an invalid one.
//!
//! Reading goes through two helpers that any section can use wherever its type lives:
//! [`files::read_limited`] reads a file the config names (regular files only, size-capped,
//! never blocking), and [`document::Document`] deserialises any item at a key path, recording
//! each problem as `file:line:column: key.path: message` ([`locate`] maps key paths and
//! positions both ways, [`syntax`] locates what does not parse, [`message`] words the problems).

pub mod document;
pub mod files;
pub mod load;
pub mod locate;
pub mod message;
pub mod schema;
pub mod syntax;
pub mod values;

pub use load::{load, parse, Config};
