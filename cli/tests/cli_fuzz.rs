//! Mutation fuzzing of the tool's parsers of untrusted bytes (labels CSV,
//! manifest, a corpus's `videos.json`): real files mutated at random (bit
//! flips, bytes set to the characters that matter to each format, spans
//! deleted, duplicated, truncated, spliced from another seed) for a bounded
//! time, on stable Rust. Every input must give a value or a clear error
//! (one that names a line or what is wrong), never a panic.
//!
//! `DREAMSIM_FUZZ_SECS` sets the time per parser (default 20 s);
//! `DREAMSIM_FUZZ_SEED` the first seed (default 1), as for the engine's and
//! the index's fuzz tests (`dreamsim_testsupport::fuzz`). The counts go to standard error
//! (`cargo test -p gst-dreamsim --test cli_fuzz -- --nocapture`).

#[path = "../src/untrusted.rs"]
#[allow(dead_code)]
mod untrusted;

use std::time::{Duration, Instant};

/// xorshift64*: a small, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `input` (bytes that matter to the format in `special`).
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>], special: &[u8]) {
    let n = input.len();
    match rng.below(8) {
        0 if n > 0 => {
            let i = rng.below(n);
            input[i] ^= 1 << rng.below(8);
        }
        1 if n > 0 => {
            let i = rng.below(n);
            input[i] = special[rng.below(special.len())];
        }
        2 => {
            let i = rng.below(n + 1);
            input.insert(i, special[rng.below(special.len())]);
        }
        3 if n > 0 => {
            let a = rng.below(n);
            let b = (a + rng.below(32)).min(n);
            input.drain(a..b);
        }
        4 if n > 0 => {
            let a = rng.below(n);
            let b = (a + rng.below(64)).min(n);
            let span = input[a..b].to_vec();
            let at = rng.below(n + 1);
            input.splice(at..at, span);
        }
        5 => input.truncate(rng.below(n + 1)),
        6 => {
            let other = &seeds[rng.below(seeds.len())];
            if !other.is_empty() {
                let a = rng.below(other.len());
                let b = (a + rng.below(128)).min(other.len());
                let at = rng.below(n + 1);
                input.splice(at..at, other[a..b].iter().copied());
            }
        }
        _ => {
            let i = rng.below(n + 1);
            input.insert(i, rng.next() as u8);
        }
    }
}

/// Runs `parse` on mutations of `seeds` for `time`; returns (inputs tried,
/// accepted, refused).
fn fuzz<T, E: std::fmt::Display>(
    name: &str,
    seeds: &[Vec<u8>],
    special: &[u8],
    time: Duration,
    seed: u64,
    parse: impl Fn(&[u8]) -> Result<T, E>,
) -> (u64, u64, u64) {
    let mut rng = Rng(seed | 1);
    let (mut tried, mut accepted, mut refused) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < time {
        let mut input = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(8) {
            mutate(&mut rng, &mut input, seeds, special);
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&input)));
        match outcome {
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(e)) => {
                let said = e.to_string();
                assert!(
                    said.len() > 5 && !said.contains("panicked"),
                    "{name}: an unclear error {said:?} for {:?}",
                    String::from_utf8_lossy(&input)
                );
                refused += 1;
            }
            Err(_) => panic!(
                "{name}: the parser panicked on {:?} (bytes {input:?})",
                String::from_utf8_lossy(&input)
            ),
        }
        tried += 1;
    }
    eprintln!(
        "fuzz {name}: {tried} inputs in {:.1} s: {accepted} accepted, {refused} refused with an \
         error, 0 panics",
        started.elapsed().as_secs_f64()
    );
    (tried, accepted, refused)
}

fn settings() -> (Duration, u64) {
    (
        dreamsim_testsupport::fuzz::budget(),
        dreamsim_testsupport::fuzz::seed(),
    )
}

#[test]
fn labels_csv_parser_survives_mutations() {
    let (time, seed) = settings();
    let seeds = [
        b"path,label\nphotos/a.png,cat\nphotos/b.png,\"dog, brown\"\n".to_vec(),
        b"\"a \"\"quoted\"\" name.png\",label with \xc3\xa9\r\nb.jpg,=1+2\r\n".to_vec(),
        b"x.png,\"multi\nline\"\n,\n".to_vec(),
    ];
    let (tried, accepted, refused) = fuzz(
        "labels CSV",
        &seeds,
        b"\",\n\r\0\xff=#",
        time,
        seed,
        untrusted::parse_labels,
    );
    assert!(
        tried > 100 && accepted > 0 && refused > 0,
        "{tried} {accepted} {refused}"
    );
}

#[test]
fn manifest_parser_survives_mutations() {
    let (time, seed) = settings();
    let seeds = [
        b"# videos\nvideos/a.mp4\n\n  videos/b c.mkv  \r\n".to_vec(),
        "clips/\u{e9}t\u{e9}.webm\n#x\n/abs/path.mp4"
            .as_bytes()
            .to_vec(),
    ];
    let (tried, accepted, refused) = fuzz(
        "manifest",
        &seeds,
        b"\n\r#\0\xff\xc3 ",
        time,
        seed,
        untrusted::parse_manifest,
    );
    assert!(
        tried > 100 && accepted > 0 && refused > 0,
        "{tried} {accepted} {refused}"
    );
}

#[test]
fn video_list_parser_survives_mutations() {
    let (time, seed) = settings();
    let (a, b) = ("a".repeat(64), "0123456789abcdef".repeat(4));
    let one = format!(
        "{{\n  \"videos\": {{\n    \"{a}\": {{\n      \"id\": \"{a}\",\n      \"path\": \
         \"videos/a.mp4\",\n      \"duration_ns\": 10000000000,\n      \"frames\": 16\n    }},\n    \
         \"{b}\": {{\n      \"id\": \"{b}\",\n      \"path\": \"b \\\"q\\\".webm\",\n      \
         \"duration_ns\": 1,\n      \"frames\": 1\n    }}\n  }}\n}}\n"
    );
    untrusted::parse_video_list(one.as_bytes()).expect("the seed is valid");
    let seeds = [one.into_bytes(), b"{\"videos\":{}}".to_vec()];
    let (tried, accepted, refused) = fuzz(
        "videos.json",
        &seeds,
        b"{}[]\":,0123456789afz-e.\\\0",
        time,
        seed,
        untrusted::parse_video_list,
    );
    assert!(
        tried > 100 && accepted > 0 && refused > 0,
        "{tried} {accepted} {refused}"
    );
}
