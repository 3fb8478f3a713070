//! `/metrics`: the exposition ([`crate::exporter`]: each target rendered at most once per
//! report, by the first scrape after it) plus the process registry, gzip-compressed when the
//! client accepts it (Prometheus does): the exposition of hundreds of pools shrinks about
//! tenfold.

use super::{respond, AppState, RequestBody};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};

/// Answers `/metrics`.
pub fn metrics(req: &Request<RequestBody>, state: &AppState) -> Response<Full<Bytes>> {
    let text = state.exposition.render(&state.registry);
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    if !accepts_gzip(req.headers()) {
        return respond(StatusCode::OK, content_type, text);
    }
    match gzip(text.as_bytes()) {
        Ok(body) => {
            let mut resp = respond(StatusCode::OK, content_type, body);
            resp.headers_mut().insert(
                hyper::header::CONTENT_ENCODING,
                hyper::header::HeaderValue::from_static("gzip"),
            );
            resp
        }
        Err(e) => {
            tracing::warn!(error = %e, "compressing /metrics failed; sending it uncompressed");
            respond(StatusCode::OK, content_type, text)
        }
    }
}

/// Whether `Accept-Encoding` lists gzip with a non-zero quality.
pub fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(hyper::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';').map(str::trim);
            let coding = it.next().unwrap_or("");
            let zero = it.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero
        })
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes)?;
    enc.finish()
}

#[cfg(test)]
mod gzip_tests {
    use super::*;

    #[test]
    fn gzip_is_used_when_accepted() {
        // (Accept-Encoding values, want gzip)
        let cases: [(&[&str], bool); 8] = [
            (&[], false),
            (&["gzip"], true),
            (&["identity"], false),
            (&["deflate, gzip;q=0.5"], true),
            (&["GZIP"], true),
            (&["gzip;q=0"], false),
            (&["br", "gzip"], true),
            (&["*"], true),
        ];
        for (values, want) in cases {
            let mut headers = hyper::HeaderMap::new();
            for v in values {
                headers.append(
                    hyper::header::ACCEPT_ENCODING,
                    hyper::header::HeaderValue::from_static(v),
                );
            }
            assert_eq!(accepts_gzip(&headers), want, "{values:?}");
        }
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let text = "poolwatch_pool_capacity{target=\"a\",kind=\"server\",pool=\"server\"} 97\n"
            .repeat(500);
        let packed = gzip(text.as_bytes()).expect("gzip");
        assert!(
            packed.len() * 10 < text.len(),
            "{} of {}",
            packed.len(),
            text.len()
        );
        let mut unpacked = String::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_string(&mut unpacked)
            .expect("gunzip");
        assert_eq!(unpacked, text);
    }
}
