//! Error text for logs and notices: an error followed by its causes. Library errors (reqwest,
//! tokio-postgres) often keep what actually happened — "connection refused", a certificate
//! problem — in their sources, not in their own `Display`.

use std::error::Error;

/// `error: cause: cause...`, skipping a cause whose text is already included.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn causes_are_appended_once() {
        let e = E("error connecting", Some(Box::new(E("refused", None))));
        assert_eq!(chain(&e), "error connecting: refused");
        let e = E(
            "request failed: refused",
            Some(Box::new(E("refused", None))),
        );
        assert_eq!(chain(&e), "request failed: refused");
        assert_eq!(chain(&E("alone", None)), "alone");
    }
}
