//! Configuration machinery that every section uses, wherever its type lives: reading the file
//! ([`load::read`]: a regular file, size-capped, never blocking), value types ([`values`]:
//! durations, secrets, located problems), and [`document::Document`], which deserializes any
//! item at a key path and records each problem as `file:line:column: key.path: message`
//! ([`locate`] maps key paths and positions both ways, [`syntax`] locates what does not parse,
//! [`message`] words the problems, [`files`] reads the files a config names).
//!
//! This module knows no section: each component declares its own schema and validates it
//! ([`crate::settings`] puts them together), so nothing here imports the rules, the notifier
//! or the sources.

pub mod document;
pub mod files;
pub mod load;
pub mod locate;
pub mod message;
pub mod syntax;
pub mod values;

pub use load::read;
