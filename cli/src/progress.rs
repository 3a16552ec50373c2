//! The progress bar of a job that reads a file: the pipeline's position
//! against its duration, with the elapsed time, an ETA and what the job has
//! found so far. Drawn on standard error when it is a terminal, hidden
//! otherwise (and with `--quiet`), so that logs and pipes stay clean.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use gst::prelude::*;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How often the position is queried at most.
const QUERY_EVERY: Duration = Duration::from_millis(100);

/// A progress bar in milliseconds of media.
pub struct Progress {
    bar: ProgressBar,
    queried: Option<Instant>,
    known_length: bool,
}

impl Progress {
    /// A bar labelled `label`, drawn when `show` and standard error is a
    /// terminal.
    pub fn new(label: &str, show: bool) -> Self {
        let bar = if show && std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(unknown_length_style());
        bar.set_prefix(label.to_owned());
        if !bar.is_hidden() {
            // Redraws the spinner and the clock while the model loads.
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Self {
            bar,
            queried: None,
            known_length: false,
        }
    }

    /// Moves the bar to the pipeline's position (at most every 100 ms) and
    /// shows `message()` beside it.
    pub fn update(&mut self, pipeline: &gst::Pipeline, message: impl FnOnce() -> String) {
        if self.bar.is_hidden() || self.queried.is_some_and(|t| t.elapsed() < QUERY_EVERY) {
            return;
        }
        self.queried = Some(Instant::now());
        if let Some(duration) = pipeline.query_duration::<gst::ClockTime>() {
            if duration > gst::ClockTime::ZERO {
                self.bar.set_length(duration.mseconds());
                if !self.known_length {
                    self.known_length = true;
                    self.bar.set_style(known_length_style());
                    self.bar.reset_eta();
                }
            }
        }
        if let Some(position) = pipeline.query_position::<gst::ClockTime>() {
            self.bar.set_position(position.mseconds());
        }
        self.bar.set_message(message());
    }

    /// Writes `line` on standard error without garbling the bar.
    pub fn println(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `label ████░░░░  42% 0:00:04/0:00:10 [3s, ETA 4s] frames...`, the
/// message cut to the terminal's width.
fn known_length_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix} {bar:16} {percent:>3}% {media} [{elapsed}, ETA {eta}] {wide_msg}",
    )
    .expect("a valid template")
    .with_key("media", media_position)
}

/// `label ⠋ 0:00:04 [3s] frames...` (a live source, or before the duration
/// is known).
fn unknown_length_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix} {spinner} {media} [{elapsed}] {wide_msg}")
        .expect("a valid template")
        .with_key("media", media_position)
}

/// The position (and the duration when known), `H:MM:SS`.
fn media_position(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let hms = |ms: u64| {
        let s = ms / 1000;
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    };
    let _ = match state.len() {
        Some(len) => write!(w, "{}/{}", hms(state.pos()), hms(len)),
        None => write!(w, "{}", hms(state.pos())),
    };
}

/// A progress bar over a count of items (files, entries): done/total with
/// an ETA and what is being done now. Drawn like [`Progress`]: on a
/// terminal, unless hidden.
pub struct Counter {
    bar: ProgressBar,
}

impl Counter {
    /// A bar of `total` items labelled `label`, drawn when `show` and
    /// standard error is a terminal.
    pub fn new(label: &str, total: u64, show: bool) -> Self {
        let bar = if show && std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} {bar:16} {pos}/{len} [{elapsed}, ETA {eta}] {wide_msg}",
            )
            .expect("a valid template"),
        );
        bar.set_prefix(label.to_owned());
        Self { bar }
    }

    /// Shows what is being done now.
    pub fn message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Counts `n` more items done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Sets how many are done.
    pub fn set(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// Writes `line` on standard error without garbling the bar.
    pub fn println(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Runs `f` with the bar hidden (another bar, a video's, is drawn meanwhile).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.finish();
    }
}
