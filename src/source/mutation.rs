//! Random mutations of real inputs for the seeded robustness tests of the parsers of untrusted
//! input (the exposition text, the push body); `fuzz/` runs the same properties under
//! libFuzzer for as long as one likes. Test-only.

use rand::rngs::StdRng;
use rand::Rng;

/// One random mutation of `seed`: a few edits of several kinds (bytes flipped, `tokens` of the
/// input's grammar inserted, spans deleted, the input cut, a slice repeated many times, runs of
/// one character inserted, two lines swapped).
pub fn mutate(seed: &[u8], tokens: &[&[u8]], rng: &mut StdRng) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..rng.gen_range(1..6) {
        let len = out.len().max(1);
        let at = rng.gen_range(0..len).min(out.len());
        match rng.gen_range(0..7) {
            0 => {
                if at < out.len() {
                    out[at] = rng.gen();
                }
            }
            1 => {
                let t = tokens[rng.gen_range(0..tokens.len())];
                out.splice(at..at, t.iter().copied());
            }
            2 => {
                let end = (at + rng.gen_range(0..40)).min(out.len());
                out.drain(at..end);
            }
            3 => out.truncate(at),
            4 => {
                // Repeat a slice many times: long lines, many items, deep nesting.
                let end = (at + rng.gen_range(1..80)).min(out.len());
                let piece = out[at..end].to_vec();
                for _ in 0..rng.gen_range(1..60) {
                    out.extend_from_slice(&piece);
                }
            }
            5 => {
                let v = vec![b'v'; rng.gen_range(1..40)];
                out.splice(at..at, v);
            }
            _ => {
                // Swap two lines.
                let text = String::from_utf8_lossy(&out).into_owned();
                let mut lines: Vec<&str> = text.split('\n').collect();
                if lines.len() > 2 {
                    let (a, b) = (rng.gen_range(0..lines.len()), rng.gen_range(0..lines.len()));
                    lines.swap(a, b);
                }
                out = lines.join("\n").into_bytes();
            }
        }
    }
    out
}
