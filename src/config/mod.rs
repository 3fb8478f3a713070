//! Configuration: the TOML schema ([`schema`]), value types shared by every section
//! ([`values`]), sections deserialized with located problems ([`section`]) and loading with full validation ([`load`]), so
//! that a bad file is refused with every problem located, and a reload never replaces a running
//! config with an invalid one.

pub mod load;
pub mod locate;
pub mod schema;
pub mod section;
pub mod values;

pub use load::{load, parse, Config};
pub use section::{field_names, section};
