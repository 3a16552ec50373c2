//! Where a job writes its result (standard output or `--output FILE`), how
//! its CSV rows are written, and the time formats its tables use.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, LineWriter, Stdout, Write};
use std::path::{Path, PathBuf};

use crate::Error;

/// A job's result stream: standard output (line-buffered, so a consumer
/// sees rows as frames are analysed) or a file.
pub enum Output {
    Stdout(LineWriter<Stdout>),
    File(PathBuf, BufWriter<File>),
}

impl Output {
    /// `path`, created, or standard output when `None`.
    pub fn create(path: Option<&Path>) -> Result<Self, Error> {
        Ok(match path {
            None => Self::Stdout(LineWriter::new(std::io::stdout())),
            Some(path) => Self::File(path.to_owned(), BufWriter::new(create(path)?)),
        })
    }

    /// Writes with `f`, an I/O error said with the destination.
    pub fn write(
        &mut self,
        f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        let result = match self {
            Self::Stdout(w) => f(w),
            Self::File(_, w) => f(w),
        };
        result.map_err(|e| self.error(e))
    }

    /// Writes one row of a stream that a reader follows as it grows (a
    /// row per analysed frame) and flushes it: the rows written are in the
    /// file even when the job is stopped (Ctrl-C) or killed.
    pub fn write_row(
        &mut self,
        f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        self.write(|w| {
            f(w)?;
            w.flush()
        })
    }

    /// Writes `value` as a pretty-printed JSON document.
    pub fn write_json(&mut self, value: &impl serde::Serialize) -> Result<(), Error> {
        self.write(|w| {
            serde_json::to_writer_pretty(&mut *w, value)?;
            writeln!(w)
        })
    }

    /// Flushes what is buffered; call before reporting success.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.write(|w| w.flush())
    }

    /// The file written, when not standard output.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Stdout(_) => None,
            Self::File(path, _) => Some(path),
        }
    }

    fn error(&self, source: std::io::Error) -> Error {
        match self {
            Self::Stdout(_) => Error::Stdout(source),
            Self::File(path, _) => Error::File {
                path: path.clone(),
                source,
            },
        }
    }
}

/// A text cell of a CSV (a path, a label, a URI) as it is written: a cell
/// that a spreadsheet would take for a formula (it starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return) gets a leading apostrophe, as
/// OWASP recommends against CSV injection; the csv crate then quotes it
/// when it must. Numbers are written as they are, never through this.
pub fn text_cell(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Writes one CSV row with the csv crate (RFC 4180: a cell with a comma,
/// a quote, a line feed or a carriage return is quoted); rows may differ in
/// length. Text cells go through [`text_cell`] first.
pub fn csv_row<I, T>(w: &mut dyn Write, cells: I) -> std::io::Result<()>
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut csv = csv::WriterBuilder::new()
        .flexible(true)
        .buffer_capacity(1024)
        .from_writer(w);
    csv.write_record(cells)?;
    csv.flush()
}

/// Creates `path`, the error said with it.
pub fn create(path: &Path) -> Result<File, Error> {
    File::create(path).map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })
}

/// `HH:MM:SS.mmm`.
pub fn timecode(t: gst::ClockTime) -> String {
    timecode_ms(t.mseconds())
}

/// `HH:MM:SS.mmm` of a count of milliseconds.
pub fn timecode_ms(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// `HH:MM:SS.mmm` of a number of seconds, rounded to the millisecond.
pub fn timecode_s(seconds: f64) -> String {
    timecode_ms((seconds.max(0.0) * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        let mut out = Vec::new();
        for cell in [
            "=HYPERLINK(\"x\")",
            "+1",
            "-x",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "a\rb",
            "a,b",
        ] {
            csv_row(&mut out, [&*text_cell(cell), "1"]).unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"'=HYPERLINK(\"\"x\"\")\",1\n'+1,1\n'-x,1\n'@SUM(A1),1\n'\tx,1\n\"'\rx\",1\n\
             \"a\rb\",1\n\"a,b\",1\n"
        );
        assert_eq!(text_cell("clip.mp4"), "clip.mp4");
    }

    #[test]
    fn timecodes() {
        assert_eq!(timecode_ms(0), "00:00:00.000");
        assert_eq!(timecode_ms(3_723_004), "01:02:03.004");
        assert_eq!(timecode_s(1.2), "00:00:01.200");
        assert_eq!(timecode_s(-1.0), "00:00:00.000");
        assert_eq!(
            timecode(gst::ClockTime::from_mseconds(9680)),
            "00:00:09.680"
        );
    }
}
