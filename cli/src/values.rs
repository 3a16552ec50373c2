//! The allowed range of every numeric option, and the parsers that hold
//! the command line to it: one place for each range, so that a value the
//! elements would refuse (a `set_property` out of its `ParamSpec` range
//! panics), or one that silently turns a gate off (NaN compares false
//! with everything), is a usage error (exit status 2, the allowed range
//! in the message) before anything runs.
//!
//! The ranges of values that reach an element are the element's own
//! (`gst-inspect-1.0 dreamsimscene` ...); a unit test checks that they
//! still are.

use clap::builder::{RangedI64ValueParser, RangedU64ValueParser, TypedValueParser};

/// Largest DreamSim distance (1 - cosine similarity): the elements'
/// `threshold`, `min-distance` maximum.
pub const MAX_DISTANCE: f64 = 2.0;
/// `dreamsimscene`'s largest `adaptive-threshold` (its detector's cap).
pub const MAX_RATIO: f64 = 255.0;
/// `dreamsimscene`'s largest `window`.
pub const MAX_WINDOW: u32 = 64;
/// `dreamsim`'s largest `batch-size` (the engine's limit).
pub const MAX_BATCH_SIZE: u32 = dreamsim::limits::MAX_BATCH_SIZE as u32;
/// Largest number of seconds an option takes (a gap, a duration, a
/// sampling period): about 11.6 days, longer than any video.
pub const MAX_SECONDS: f64 = 1e6;
/// Highest sampling rate, frames per second.
pub const MAX_RATE: f64 = 1000.0;
/// Longest timeout in seconds (a week): `Instant + Duration` must not
/// overflow.
pub const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;
/// Longest `--reclaim-after`, seconds (a year).
pub const MAX_RECLAIM_S: u64 = 365 * 24 * 3600;
/// Most worst frames shown in `compare --html` (each one decoded twice).
pub const MAX_WORST: u64 = 1000;
/// Most frames of `bench --synthetic` (videotestsrc's `num-buffers` is a
/// signed 32-bit integer).
pub const MAX_SYNTHETIC: u64 = i32::MAX as u64;

/// A range of finite floating-point values, said in the user's words.
#[derive(Debug, Clone, Copy)]
pub struct FloatRange {
    /// Smallest value allowed.
    pub min: f64,
    /// The smallest value itself is excluded (a rate must be above 0).
    pub min_excluded: bool,
    /// Largest value allowed.
    pub max: f64,
    /// What the value is, e.g. "a DreamSim distance".
    pub what: &'static str,
}

impl FloatRange {
    /// `s` as a number of this range; NaN, infinities and values outside
    /// it are errors that state the range.
    pub fn parse(&self, s: &str) -> Result<f64, String> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("not a number; {}", self.allowed()))?;
        let low = if self.min_excluded {
            v > self.min
        } else {
            v >= self.min
        };
        if v.is_finite() && low && v <= self.max {
            Ok(v)
        } else {
            Err(format!("out of range; {}", self.allowed()))
        }
    }

    /// "expected a DreamSim distance from 0 to 2".
    pub fn allowed(&self) -> String {
        let low = if self.min_excluded {
            format!("above {}", self.min)
        } else {
            format!("from {}", self.min)
        };
        format!("expected {} {low} to {}", self.what, self.max)
    }
}

/// A DreamSim distance: 0 to 2.
pub const DISTANCE: FloatRange = FloatRange {
    min: 0.0,
    min_excluded: false,
    max: MAX_DISTANCE,
    what: "a DreamSim distance",
};

/// `dreamsimscene`'s adaptive ratio: 0 to 255.
pub const RATIO: FloatRange = FloatRange {
    min: 0.0,
    min_excluded: false,
    max: MAX_RATIO,
    what: "a ratio to the neighbours' mean distance",
};

/// A share of frames, percent: 0 to 100.
pub const PERCENT: FloatRange = FloatRange {
    min: 0.0,
    min_excluded: false,
    max: 100.0,
    what: "a percentage",
};

/// A length of time that may be zero.
pub const SECONDS: FloatRange = FloatRange {
    min: 0.0,
    min_excluded: false,
    max: MAX_SECONDS,
    what: "a number of seconds",
};

/// A sampling period: above zero.
pub const PERIOD: FloatRange = FloatRange {
    min: 0.0,
    min_excluded: true,
    max: MAX_SECONDS,
    what: "a number of seconds",
};

/// A sampling rate: above zero.
pub const RATE: FloatRange = FloatRange {
    min: 0.0,
    min_excluded: true,
    max: MAX_RATE,
    what: "frames per second",
};

/// `--threshold`, `--fail-above`, `--limit`, `--min-distance`,
/// `--frame-distance`.
pub fn distance(s: &str) -> Result<f64, String> {
    DISTANCE.parse(s)
}

/// `scenes --adaptive-threshold`.
pub fn ratio(s: &str) -> Result<f64, String> {
    RATIO.parse(s)
}

/// `corpus match --query-share`, `--candidate-share`.
pub fn percent(s: &str) -> Result<f64, String> {
    PERCENT.parse(s)
}

/// `corpus match --max-gap`, `--min-duration`.
pub fn seconds(s: &str) -> Result<f64, String> {
    SECONDS.parse(s)
}

/// `index --every`.
pub fn period(s: &str) -> Result<f64, String> {
    PERIOD.parse(s)
}

/// `corpus --rate`.
pub fn rate(s: &str) -> Result<f64, String> {
    RATE.parse(s)
}

/// A whole number from `min` to `max`; clap says the range of a value
/// outside it ("0 is not in 1..=64"), negative ones included.
pub fn u32_in(min: u32, max: u32) -> RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(i64::from(min)..=i64::from(max))
}

/// A whole number from `min` to `max`.
pub fn u64_in(min: u64, max: u64) -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::<u64>::new().range(min..=max)
}

/// A whole number from `min` to `max`, as a `usize`.
pub fn usize_in(min: u64, max: u64) -> impl TypedValueParser<Value = usize> {
    u64_in(min, max).map(|v| v as usize)
}

/// `scenes --window`.
pub fn window() -> RangedI64ValueParser<u32> {
    u32_in(1, MAX_WINDOW)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst::prelude::*;

    #[test]
    fn floats_outside_their_range_are_refused_with_the_range() {
        for bad in [
            "nan", "NaN", "inf", "-inf", "infinity", "-1", "3", "2.0001", "x", "",
        ] {
            let e = DISTANCE.parse(bad).unwrap_err();
            assert!(e.contains("from 0 to 2"), "{bad}: {e}");
        }
        assert_eq!(DISTANCE.parse("0").unwrap(), 0.0);
        assert_eq!(DISTANCE.parse("2").unwrap(), 2.0);
        assert!(RATE.parse("0").unwrap_err().contains("above 0 to 1000"));
        assert_eq!(RATE.parse("0.5").unwrap(), 0.5);
        assert!(PERCENT.parse("1000").is_err());
    }

    /// The ranges of the options that set element properties are the
    /// elements' own: a value the CLI lets through is one the element takes.
    #[test]
    fn the_ranges_are_the_elements_ranges() {
        gst::init().unwrap();
        gstdreamsim::plugin_register_static().unwrap();
        let pspec = |factory: &str, property: &str| {
            gst::ElementFactory::make(factory)
                .build()
                .unwrap()
                .find_property(property)
                .unwrap_or_else(|| panic!("{factory} has no {property}"))
        };
        let double = |factory: &str, property: &str| {
            let p = pspec(factory, property);
            let p = p.downcast_ref::<gst::glib::ParamSpecDouble>().unwrap();
            (p.minimum(), p.maximum())
        };
        let uint = |factory: &str, property: &str| {
            let p = pspec(factory, property);
            let p = p.downcast_ref::<gst::glib::ParamSpecUInt>().unwrap();
            (p.minimum(), p.maximum())
        };
        for (factory, property) in [
            ("dreamsimscene", "threshold"),
            ("dreamsimscene", "min-distance"),
            ("dreamsimdedup", "threshold"),
            ("dreamsimcompare", "threshold"),
            ("dreamsimmatch", "threshold"),
        ] {
            assert_eq!(
                double(factory, property),
                (DISTANCE.min, DISTANCE.max),
                "{factory} {property}"
            );
        }
        assert_eq!(
            double("dreamsimscene", "adaptive-threshold"),
            (RATIO.min, RATIO.max)
        );
        assert_eq!(uint("dreamsimscene", "window"), (1, MAX_WINDOW));
        assert_eq!(uint("dreamsim", "batch-size"), (1, MAX_BATCH_SIZE));
        assert_eq!(uint("dreamsim", "interval"), (1, u32::MAX));
    }
}
