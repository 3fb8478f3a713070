//! Classifies what went wrong talking to PostgreSQL or PgBouncer. The class decides the
//! target's state (PostgreSQL's 53300 and PgBouncer's `no more connections allowed` mean
//! *saturated*, not *down*) and is the bounded label of the error counter.

use crate::model::{ErrorClass, PollError};
use tokio_postgres::error::SqlState;

/// Classifies a tokio-postgres error; the message never contains the password (tokio-postgres
/// does not echo connection parameters in errors).
pub fn classify(e: &tokio_postgres::Error) -> PollError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        // PgBouncer refuses a client beyond max_client_conn (or a database's or user's client
        // limit) with this message and a generic SQLSTATE.
        let full = db.message().starts_with("no more connections allowed");
        let class = if *code == SqlState::TOO_MANY_CONNECTIONS || full {
            ErrorClass::TooManyConnections
        } else if [
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
        ]
        .contains(code)
        {
            ErrorClass::CannotConnectNow
        } else if db.message().contains("authentication failed")
            || [
                SqlState::INVALID_PASSWORD,
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                SqlState::INSUFFICIENT_PRIVILEGE,
                SqlState::INVALID_CATALOG_NAME,
            ]
            .contains(code)
        {
            ErrorClass::Auth
        } else if *code == SqlState::QUERY_CANCELED {
            ErrorClass::Timeout
        } else {
            ErrorClass::Query
        };
        return PollError {
            class,
            message: format!(
                "{} {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                code.code()
            ),
        };
    }
    let message = crate::errtext::chain(e);
    // tokio-postgres reports a missing password or an authentication exchange it cannot do
    // (unsupported method, SCRAM mismatch) as client-side errors, not server ones: still a
    // configuration problem, to be reported as such.
    let top = e.to_string();
    let class =
        if top.starts_with("invalid configuration") || top.starts_with("authentication error") {
            ErrorClass::Auth
        } else if e.is_closed() {
            ErrorClass::Network
        } else if let Some(io) = find_source::<std::io::Error>(e) {
            if io.kind() == std::io::ErrorKind::TimedOut {
                ErrorClass::Timeout
            } else if involves_tls(e) {
                ErrorClass::Tls
            } else {
                ErrorClass::Network
            }
        } else if involves_tls(e) || message.to_lowercase().contains("tls") {
            ErrorClass::Tls
        } else if message.contains("timeout") || message.contains("timed out") {
            ErrorClass::Timeout
        } else {
            ErrorClass::Query
        };
    PollError { class, message }
}

fn find_source<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

/// Whether a rustls error is in `e`'s chain. A TLS failure (e.g. an untrusted certificate)
/// reaches tokio-postgres as an `io::Error` wrapping the `rustls::Error`, and `io::Error`'s
/// `source()` skips the error it wraps, so each `io::Error` is looked into as well.
fn involves_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<rustls::Error>() {
            return true;
        }
        let wrapped = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        if wrapped.is_some_and(|inner| inner.is::<rustls::Error>()) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A poll that did not answer within the client-side limit.
pub fn timed_out(what: &str, limit: std::time::Duration) -> PollError {
    PollError {
        class: ErrorClass::Timeout,
        message: format!(
            "{what} did not finish within {}",
            crate::timefmt::human(limit)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_inside_io_errors_are_found() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, cert);
        assert!(involves_tls(&io));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(!involves_tls(&plain));
    }
}
