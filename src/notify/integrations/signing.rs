//! Request signing, so that a receiver can tell a notification really comes from this
//! poolwatch and was not altered:
//!
//! * [Standard Webhooks](https://www.standardwebhooks.com/): `webhook-id` (the notification id,
//!   the same for every retry), `webhook-timestamp` (seconds since the epoch, at the attempt) and
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the secret
//!   given as `whsec_<base64>`;
//! * GitHub's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! The signatures are pure functions of their inputs; keys never appear in `Debug` output.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderName, HeaderValue};
use sha2::Sha256;
use std::fmt;

/// The header names set when signing; configured headers may not use them.
pub const HEADERS: [&str; 4] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-hub-signature-256",
];

/// A signing key. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    /// A key of these bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Key {
        Key(bytes.into())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// How an integration signs its requests; nothing by default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signing {
    /// The Standard Webhooks key (the bytes `whsec_<base64>` stands for).
    pub standard_webhooks: Option<Key>,
    /// The GitHub-style `X-Hub-Signature-256` secret.
    pub github: Option<Key>,
}

impl Signing {
    /// True when requests are signed at all.
    pub fn is_enabled(&self) -> bool {
        self.standard_webhooks.is_some() || self.github.is_some()
    }

    /// The signature headers of one request: notification `id`, `timestamp` (seconds since the
    /// epoch) and `body`. The values are marked sensitive.
    pub(crate) fn headers(
        &self,
        id: &str,
        timestamp: u64,
        body: &[u8],
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        let mut add = |name: &'static str, value: String| {
            if let Ok(mut v) = HeaderValue::from_str(&value) {
                v.set_sensitive(true);
                out.push((HeaderName::from_static(name), v));
            }
        };
        if let Some(key) = &self.standard_webhooks {
            add("webhook-id", id.to_string());
            add("webhook-timestamp", timestamp.to_string());
            add(
                "webhook-signature",
                standard_signature(key, id, timestamp, body),
            );
        }
        if let Some(key) = &self.github {
            add("x-hub-signature-256", github_signature(key, body));
        }
        out
    }
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`: the Standard Webhooks signature.
pub fn standard_signature(key: &Key, id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = hmac(key);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// `sha256=<hex HMAC-SHA256 of body>`: GitHub's `X-Hub-Signature-256`.
pub fn github_signature(key: &Key, body: &[u8]) -> String {
    let mut mac = hmac(key);
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn hmac(key: &Key) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    <Hmac<Sha256> as KeyInit>::new_from_slice(&key.0).unwrap_or_else(|_| unreachable!())
}

/// Decodes a Standard Webhooks secret, `whsec_` followed by base64 (padded or not). The error
/// never quotes the secret.
pub fn decode_whsec(secret: &str) -> Result<Key, String> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let Some(encoded) = secret.strip_prefix("whsec_") else {
        return Err("a Standard Webhooks secret starts with `whsec_` followed by base64".into());
    };
    match LENIENT.decode(encoded.trim()) {
        Ok(bytes) if bytes.is_empty() => Err("the secret after `whsec_` is empty".into()),
        Ok(bytes) => Ok(Key(bytes)),
        Err(_) => Err("the part after `whsec_` is not valid base64".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (and of its reference libraries).
    #[test]
    fn standard_webhooks_reference_vector() {
        let key = decode_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let sig = standard_signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    /// The example of GitHub's documentation ("Validating webhook deliveries").
    #[test]
    fn github_reference_vector() {
        let key = Key::new(*b"It's a Secret to Everybody");
        assert_eq!(
            github_signature(&key, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn secrets_decode_padded_or_not_and_errors_never_quote_them() {
        let padded = decode_whsec("whsec_c2VjcmV0LWtleQ==").expect("padded");
        let bare = decode_whsec("whsec_c2VjcmV0LWtleQ").expect("unpadded");
        assert_eq!(padded, bare);
        assert_eq!(padded, Key::new(*b"secret-key"));
        for bad in ["c2VjcmV0LWtleQ==", "whsec_", "whsec_!!not base64!!"] {
            let e = decode_whsec(bad).expect_err(bad);
            assert!(!e.contains("c2Vj") && !e.contains("!!"), "{e}");
        }
        assert_eq!(format!("{padded:?}"), "Key(<redacted>)");
    }

    #[test]
    fn headers_are_set_for_what_is_configured() {
        let none = Signing::default();
        assert!(!none.is_enabled());
        assert!(none.headers("id", 1, b"{}").is_empty());
        let both = Signing {
            standard_webhooks: Some(Key::new(*b"k1")),
            github: Some(Key::new(*b"k2")),
        };
        let names: Vec<String> = both
            .headers("abc", 1_700_000_000, b"{}")
            .iter()
            .map(|(n, v)| format!("{n}={}", v.to_str().unwrap_or_default()))
            .collect();
        assert_eq!(names.len(), 4);
        assert_eq!(names[0], "webhook-id=abc");
        assert_eq!(names[1], "webhook-timestamp=1700000000");
        assert!(names[2].starts_with("webhook-signature=v1,"));
        assert!(names[3].starts_with("x-hub-signature-256=sha256="));
    }
}
