//! Configuration: the TOML schema ([`schema`]), value types shared by every section
//! ([`values`]), and loading with full validation ([`load`]) so that a bad file is refused with
//! every problem located, and a reload never replaces a running config with an invalid one.

pub mod schema;
pub mod values;
