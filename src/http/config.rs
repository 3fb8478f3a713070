//! `[http]`: where the endpoint listens and how much of the process it may take. The schema
//! lives here, beside the server that uses it; [`crate::config`] only refers to it.

use crate::config::values::{HumanDuration, Problems};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on. Default `0.0.0.0:9671` (postgres_exporter uses 9187 and
    /// pgbouncer_exporter 9127). Port 0 picks a free port; the bound address is logged.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Base URL under which people reach this poolwatch, used for `externalURL` and
    /// `generatorURL` in alert payloads. Default `http://<hostname>:<port>`.
    #[serde(default)]
    pub external_url: Option<String>,
    /// Most HTTP connections open at once. Default 64: Prometheus (an HA pair keeps one
    /// keep-alive connection each), probes, a status page and a few people with browsers (up to
    /// 6 connections each) fit many times over, while a flood of connections costs at most 64
    /// descriptors and 64 small buffers. The daemon lowers it further when the open-file limit
    /// leaves less room (see [`crate::fdlimit`]). At the limit, the connection that has waited
    /// longest for a request makes room for the new one; when every connection is in the middle
    /// of a request, the new one is answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long a new connection may take to send its first complete request head. Default
    /// `"5s"`: scrapers and probes send theirs at once; a connection that sends nothing, or
    /// trickles bytes, only holds a slot this long.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: HumanDuration,
    /// How long a kept-alive connection may wait for its next complete request head after a
    /// response. Default `"30s"`: longer than Prometheus's usual 15 s scrape interval, so that
    /// a scraper keeps its connection, and short enough that abandoned ones go.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// How long one request may take from its complete head to the end of its response:
    /// reading a body, handling, and writing to a client that reads slowly. Default `"10s"`
    /// (Prometheus's default scrape timeout; a scrape is answered in milliseconds).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// Largest request body accepted, in bytes; larger ones are answered 413. Default 65536.
    /// Today's endpoints are GET/HEAD only: the cap is there for every endpoint that will read
    /// a body, and bounds memory at `max_connections` × this.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
}

fn default_listen() -> String {
    "0.0.0.0:9671".into()
}
fn default_max_connections() -> u32 {
    64
}
fn default_header_timeout() -> HumanDuration {
    HumanDuration::secs(5)
}
fn default_idle_timeout() -> HumanDuration {
    HumanDuration::secs(30)
}
fn default_request_timeout() -> HumanDuration {
    HumanDuration::secs(10)
}
fn default_max_body_bytes() -> u64 {
    64 * 1024
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            external_url: None,
            max_connections: default_max_connections(),
            header_timeout: default_header_timeout(),
            idle_timeout: default_idle_timeout(),
            request_timeout: default_request_timeout(),
            max_body_bytes: default_max_body_bytes(),
        }
    }
}

/// What the server enforces, from a validated `[http]` (and the descriptor budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once, at least 1.
    pub max_connections: usize,
    /// See [`HttpConfig::header_timeout`].
    pub header_timeout: Duration,
    /// See [`HttpConfig::idle_timeout`].
    pub idle_timeout: Duration,
    /// See [`HttpConfig::request_timeout`].
    pub request_timeout: Duration,
    /// See [`HttpConfig::max_body_bytes`].
    pub max_body_bytes: u64,
}

impl HttpConfig {
    /// Checks every key; returns the listen address when it parses. Problems go to `problems`.
    pub fn validate(&self, problems: &mut Problems) -> Option<SocketAddr> {
        let listen = self.listen.parse::<SocketAddr>().ok();
        if listen.is_none() {
            problems.at(
                "http.listen",
                format!(
                    "\"{}\" is not an address like \"0.0.0.0:9671\"",
                    self.listen
                ),
            );
        }
        if let Some(url) = &self.external_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.at("http.external_url", "must start with http:// or https://");
            }
        }
        if self.max_connections == 0 {
            problems.at("http.max_connections", "must be at least 1");
        }
        for (key, value) in [
            ("header_timeout", self.header_timeout),
            ("idle_timeout", self.idle_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if value.0.is_zero() {
                problems.at(format!("http.{key}"), "must be greater than 0");
            }
        }
        listen
    }

    /// The limits as written (before the descriptor budget lowers `max_connections`).
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: usize::try_from(self.max_connections)
                .unwrap_or(usize::MAX)
                .max(1),
            header_timeout: self.header_timeout.0,
            idle_timeout: self.idle_timeout.0,
            request_timeout: self.request_timeout.0,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn problems_of(toml_text: &str) -> Vec<String> {
        let http: HttpConfig = toml::from_str(toml_text).expect("parses");
        let mut problems = Problems::new(Path::new("x.toml"));
        http.validate(&mut problems);
        problems
            .into_vec()
            .into_iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let http: HttpConfig = toml::from_str("").expect("parses");
        assert_eq!(
            http.limits(),
            Limits {
                max_connections: 64,
                header_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(30),
                request_timeout: Duration::from_secs(10),
                max_body_bytes: 65536,
            }
        );
        assert_eq!(http.listen, "0.0.0.0:9671");
        assert_eq!(HttpConfig::default().limits(), http.limits());
    }

    #[test]
    fn every_bad_key_is_reported() {
        let cases: [(&str, &[&str]); 5] = [
            ("", &[]),
            (
                "max_connections = 0",
                &["x.toml: http.max_connections: must be at least 1"],
            ),
            (
                "header_timeout = \"0s\"\nidle_timeout = \"0s\"\nrequest_timeout = \"0s\"",
                &[
                    "x.toml: http.header_timeout: must be greater than 0",
                    "x.toml: http.idle_timeout: must be greater than 0",
                    "x.toml: http.request_timeout: must be greater than 0",
                ],
            ),
            (
                "listen = \"localhost\"",
                &["x.toml: http.listen: \"localhost\" is not an address like \"0.0.0.0:9671\""],
            ),
            (
                "external_url = \"ftp://x\"",
                &["x.toml: http.external_url: must start with http:// or https://"],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(problems_of(text), want, "{text}");
        }
    }

    #[test]
    fn negative_or_huge_values_are_type_errors() {
        for text in [
            "max_connections = -1",
            "max_body_bytes = -1",
            "max_connections = 5000000000",
        ] {
            assert!(toml::from_str::<HttpConfig>(text).is_err(), "{text}");
        }
    }
}
