//! Small time helpers: RFC 3339 rendering for payloads and JSON, and human durations for text.

use std::time::{Duration, SystemTime};

/// Formats a wall-clock time as RFC 3339 with millisecond precision, UTC (`2026-11-20T10:00:00.123Z`).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Formats a duration for people: `350ms`, `1.2s`, `4m 12s`, `2h 3m`; short durations keep a
/// tenth of a second (a client that waited 1.2 s is not one that waited 1 s), longer ones are
/// rounded so that alert text stays short.
pub fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    if d < Duration::from_secs(10) {
        let tenths = d.as_millis() / 100;
        return match tenths % 10 {
            0 => format!("{}s", tenths / 10),
            t => format!("{}.{t}s", tenths / 10),
        };
    }
    let secs = d.as_secs();
    let rounded = if secs >= 3600 { secs - secs % 60 } else { secs };
    humantime::format_duration(Duration::from_secs(rounded)).to_string()
}

/// Serde adapter: a `SystemTime` as an RFC 3339 string.
pub mod rfc3339 {
    use serde::Serializer;
    use std::time::SystemTime;

    /// Serializes `t` with [`super::rfc3339`].
    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        let cases = [
            (Duration::from_millis(350), "350ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_250), "1.2s"),
            (Duration::from_millis(9_990), "9.9s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(252), "4m 12s"),
            (Duration::from_secs(7385), "2h 3m"),
        ];
        for (d, want) in cases {
            assert_eq!(human(d), want, "{d:?}");
        }
    }

    #[test]
    fn rfc3339_is_utc_millis() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
    }
}
