//! Reading a configuration file: with a size cap (a FIFO, a device or a directory is refused at
//! once), parsed once into a [`Document`] from which each section is then deserialized on its
//! own, so that every problem is listed with its key path and position.

use super::document::Document;
use super::files::{read_limited, MAX_CONFIG_BYTES};
use super::values::Problem;
use std::path::Path;

/// Reads and parses `path`: a regular file of at most [`MAX_CONFIG_BYTES`], whose sections
/// [`crate::settings`] then deserializes and validates.
pub fn read(path: &Path) -> Result<Document, Vec<Problem>> {
    let bytes = read_limited(path, MAX_CONFIG_BYTES).map_err(|e| {
        vec![Problem {
            file: path.to_path_buf(),
            line_col: None,
            key: None,
            message: format!("cannot read config file: {e}"),
        }]
    })?;
    Document::from_bytes(path, bytes).map_err(|p| vec![p])
}
