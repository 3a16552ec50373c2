//! Where a job writes its result (standard output or `--output FILE`), and
//! the time formats its tables use.

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
