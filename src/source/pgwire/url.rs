//! libpq connection strings: `sslmode` and `sslrootcert` taken out of a URL
//! (`postgres://...?sslmode=...`) or a key/value string (`host=... sslmode=...`), since
//! tokio-postgres does not know the verifying modes.

/// A connection string with `sslmode` and `sslrootcert` taken out.
#[derive(Debug, PartialEq)]
pub struct SplitTls {
    /// The rest, for tokio-postgres.
    pub rest: String,
    /// `sslmode` as written.
    pub sslmode: Option<String>,
    /// `sslrootcert` as written.
    pub sslrootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL (`postgres://...?sslmode=...`) or a key/value
/// string (`host=... sslmode=...`).
pub fn split_tls_params(s: &str) -> SplitTls {
    let mut out = SplitTls {
        rest: String::new(),
        sslmode: None,
        sslrootcert: None,
    };
    let s = s.trim();
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        let Some((base, query)) = s.split_once('?') else {
            out.rest = s.to_string();
            return out;
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("sslmode", v)) => out.sslmode = Some(percent_decode(v)),
                Some(("sslrootcert", v)) => out.sslrootcert = Some(percent_decode(v)),
                _ if pair.is_empty() => {}
                _ => kept.push(pair),
            }
        }
        out.rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return out;
    }
    let mut kept = Vec::new();
    for (key, raw, value) in kv_pairs(s) {
        match key.as_str() {
            "sslmode" => out.sslmode = Some(value),
            "sslrootcert" => out.sslrootcert = Some(value),
            _ => kept.push(raw),
        }
    }
    out.rest = kept.join(" ");
    out
}

/// Splits a libpq key/value string into (key, raw text of the pair, unquoted value).
fn kv_pairs(s: &str) -> Vec<(String, String, String)> {
    let mut pairs = Vec::new();
    let mut chars = s.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek().is_some_and(|(_, c)| *c == '=') {
            chars.next();
            while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                chars.next();
            }
            let quoted = chars.peek().is_some_and(|(_, c)| *c == '\'');
            if quoted {
                chars.next();
            }
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' if quoted => break,
                    c if !quoted && c.is_whitespace() => break,
                    c => value.push(c),
                }
            }
        }
        let end = chars.peek().map_or(s.len(), |(i, _)| *i);
        pairs.push((key, s[start..end].trim().to_string(), value));
    }
    pairs
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_params_are_taken_out_of_urls_and_kv_strings() {
        let cases = [
            (
                "postgres://u@h:5/db?sslmode=verify-full&sslrootcert=%2Fca.pem&connect_timeout=3",
                "postgres://u@h:5/db?connect_timeout=3",
                Some("verify-full"),
                Some("/ca.pem"),
            ),
            (
                "postgres://u@h/db?sslmode=require",
                "postgres://u@h/db",
                Some("require"),
                None,
            ),
            ("postgres://u@h/db", "postgres://u@h/db", None, None),
            (
                "host=h user=u sslmode=verify-ca sslrootcert='/a b.pem' dbname=x",
                "host=h user=u dbname=x",
                Some("verify-ca"),
                Some("/a b.pem"),
            ),
            (
                r"host=h password='it\'s x'",
                r"host=h password='it\'s x'",
                None,
                None,
            ),
        ];
        for (input, rest, mode, cert) in cases {
            let got = split_tls_params(input);
            assert_eq!(got.rest, rest, "{input}");
            assert_eq!(got.sslmode.as_deref(), mode, "{input}");
            assert_eq!(got.sslrootcert.as_deref(), cert, "{input}");
        }
    }
}
