//! `evaluate --baseline`, `--fail-above`, `--fail-below`,
//! `--fail-on-significant-change`: a run compared with a previous one
//! (items paired by id, a paired test per metric) and the gates that make
//! the exit status 4.
//!
//! The baseline is a file someone else may have written: read from a
//! regular file under a size cap, parsed strictly, its schema and every
//! value checked; any defect is a [`BaselineError`] (exit status 2) that
//! says what is wrong, never a panic and never a silently skipped gate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::stats::{self, Estimate};
use crate::untrusted;
use crate::values::{FloatRange, DISTANCE};

/// The schema `evaluate` writes and `--baseline` reads.
pub const SCHEMA: &str = "gst-dreamsim-evaluate/1";

/// Largest baseline read, bytes: a million items of about 250 bytes.
pub const MAX_BASELINE_BYTES: u64 = 256 << 20;

/// `--alpha`'s default: the conventional 5 % level. Each metric of each
/// group is tested at this level on its own, so a run with many groups
/// sees about one false alarm per twenty unchanged metrics; a release gate
/// over many groups is better run with `--alpha 0.01`.
pub const DEFAULT_ALPHA: f64 = 0.05;

/// `--alpha`: above 0, at most 0.5 (a two-sided test at a higher level
/// would call most unchanged metrics changed).
pub const ALPHA: FloatRange = FloatRange {
    min: 0.0,
    min_excluded: true,
    max: 0.5,
    what: "a significance level",
};

/// A share of items or pairs: 0 to 1.
const SHARE: FloatRange = FloatRange {
    min: 0.0,
    min_excluded: false,
    max: 1.0,
    what: "a share from 0 to 1 (copy_share=0 fails on any copy)",
};

/// A Vendi Score: an effective number of items.
const VENDI: FloatRange = FloatRange {
    min: 0.0,
    min_excluded: false,
    max: 1e9,
    what: "a Vendi Score (an effective number of items)",
};

/// The direction in which a metric gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worse {
    /// A rise is worse (less consistent, more copies, further from the reference).
    Up,
    /// A fall is worse (less diverse, closer to known items).
    Down,
}

/// What the tool knows of a metric of a group or of the whole run.
#[derive(Debug, Clone, Copy)]
pub struct SetMetric {
    /// Its name in the JSON document and in gates.
    pub name: &'static str,
    pub worse: Worse,
    /// The values a gate on it may take.
    pub range: FloatRange,
    /// The per-item metric whose paired values test a change of it, if any.
    pub item_metric: Option<&'static str>,
}

/// The metrics of a group and of `overall`, which gates name, with the
/// direction `--fail-on-significant-change` counts as worse: less
/// diversity (diversity, vendi down; more near-duplicate pairs), less
/// temporal consistency (temporal_*, max_jump up), more copies (copy_share
/// up), further from the reference (reference_distance up).
pub const SET_METRICS: &[SetMetric] = &[
    SetMetric {
        name: "diversity",
        worse: Worse::Down,
        range: DISTANCE,
        item_metric: Some("group_mean_distance"),
    },
    SetMetric {
        name: "vendi",
        worse: Worse::Down,
        range: VENDI,
        item_metric: None,
    },
    SetMetric {
        name: "near_duplicate_share",
        worse: Worse::Up,
        range: SHARE,
        item_metric: None,
    },
    SetMetric {
        name: "temporal_prev",
        worse: Worse::Up,
        range: DISTANCE,
        item_metric: Some("temporal_prev"),
    },
    SetMetric {
        name: "temporal_first",
        worse: Worse::Up,
        range: DISTANCE,
        item_metric: Some("temporal_first"),
    },
    SetMetric {
        name: "max_jump",
        worse: Worse::Up,
        range: DISTANCE,
        item_metric: Some("max_jump"),
    },
    SetMetric {
        name: "reference_distance",
        worse: Worse::Up,
        range: DISTANCE,
        item_metric: Some("reference_distance"),
    },
    SetMetric {
        name: "copy_share",
        worse: Worse::Up,
        range: SHARE,
        item_metric: Some("copy"),
    },
];

/// Per-item metrics compared that have no group or overall counterpart:
/// the distance to the nearest known item (`--against`) gets worse as it
/// falls (closer to a training or protected item).
const ITEM_ONLY_METRICS: &[(&str, Worse)] = &[("nearest_distance", Worse::Down)];

/// The set metric called `name`.
pub fn set_metric(name: &str) -> Option<&'static SetMetric> {
    SET_METRICS.iter().find(|m| m.name == name)
}

/// The metric names gates take, for error messages.
fn known_names() -> String {
    SET_METRICS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A threshold on a metric of the run (`METRIC=V`) or of a group
/// (`GROUP:METRIC=V`).
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// None: the whole run (`overall`).
    pub group: Option<String>,
    pub metric: &'static str,
    pub value: f64,
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(g) = &self.group {
            write!(f, "{g}:")?;
        }
        write!(f, "{}={}", self.metric, self.value)
    }
}

/// Parses `METRIC=V` or `GROUP:METRIC=V` (the group is everything before
/// the last `:`, so a group id may hold colons); the value is held to the
/// metric's range, NaN and infinities refused, an unknown metric named
/// with the list of known ones.
pub fn parse_gate(s: &str) -> Result<Gate, String> {
    let (name, value) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("expected METRIC=VALUE or GROUP:METRIC=VALUE, got {s:?}"))?;
    let (group, metric) = match name.rsplit_once(':') {
        Some((g, m)) => (Some(g), m),
        None => (None, name),
    };
    if group == Some("") {
        return Err(format!("an empty group name in {s:?}"));
    }
    let metric = set_metric(metric.trim()).ok_or_else(|| {
        format!(
            "unknown metric {:?}; the known metrics are {}",
            metric.trim(),
            known_names()
        )
    })?;
    let value = metric
        .range
        .parse(value)
        .map_err(|e| format!("{}: {e}", metric.name))?;
    Ok(Gate {
        group: group.map(str::to_owned),
        metric: metric.name,
        value,
    })
}

/// `--alpha`.
pub fn parse_alpha(s: &str) -> Result<f64, String> {
    ALPHA.parse(s)
}

/// clap arguments for comparing with a previous run and gating; flattened into `evaluate`'s args.
#[derive(clap::Args, Debug, Clone)]
pub struct BaselineArgs {
    /// A previous run's JSON report (evaluate --json) to compare with:
    /// items paired by id, each metric's change tested (Wilcoxon
    /// signed-rank over the paired items; the Vendi Score and the share of
    /// near-duplicate pairs by their 95 % intervals)
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Exit with status 4 when METRIC of the run (or GROUP:METRIC of a
    /// group) is above V (repeatable). Metrics: diversity, vendi,
    /// near_duplicate_share, temporal_prev, temporal_first, max_jump,
    /// reference_distance, copy_share
    #[arg(long = "fail-above", value_name = "[GROUP:]METRIC=V", value_parser = parse_gate)]
    pub fail_above: Vec<Gate>,
    /// Exit with status 4 when METRIC of the run (or GROUP:METRIC of a
    /// group) is below V (repeatable), e.g. --fail-below diversity=0.2
    #[arg(long = "fail-below", value_name = "[GROUP:]METRIC=V", value_parser = parse_gate)]
    pub fail_below: Vec<Gate>,
    /// With --baseline: exit with status 4 when a metric changed
    /// significantly (p < --alpha) for the worse: diversity, vendi,
    /// nearest_distance down; near_duplicate_share, temporal_prev,
    /// temporal_first, max_jump, reference_distance, copy_share up
    #[arg(long, requires = "baseline")]
    pub fail_on_significant_change: bool,
    /// Significance level of the comparison with --baseline, each metric
    /// tested on its own (0.05 is the usual level; with many groups use
    /// 0.01 to keep false alarms rare)
    #[arg(long, value_name = "LEVEL", default_value_t = DEFAULT_ALPHA, value_parser = parse_alpha)]
    pub alpha: f64,
}

impl Default for BaselineArgs {
    fn default() -> Self {
        Self {
            baseline: None,
            fail_above: Vec::new(),
            fail_below: Vec::new(),
            fail_on_significant_change: false,
            alpha: DEFAULT_ALPHA,
        }
    }
}

/// Outcome: what to print and whether a gate failed.
#[derive(Debug)]
pub struct Verdict {
    pub failed: bool,
    pub lines: Vec<String>,
    pub comparison: Option<serde_json::Value>,
}

/// Why the baseline or a gate cannot be used (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Not a regular file, over the size cap, unreadable.
    #[error("--baseline {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: untrusted::ReadError,
    },
    /// Not JSON, or JSON of another layout.
    #[error("--baseline {}: not an evaluate report: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    /// JSON with another schema.
    #[error(
        "--baseline {}: schema {found}, expected \"gst-dreamsim-evaluate/1\" (a report written by gst-dreamsim evaluate --json)",
        path.display()
    )]
    Schema { path: PathBuf, found: String },
    /// A value or id that breaks the schema's rules.
    #[error("--baseline {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// A significance level out of its range (NaN included).
    #[error("--alpha {0}: expected a significance level above 0 to 0.5")]
    Alpha(f64),
    /// This run's own report breaks the schema (a bug, not a user error).
    #[error("this run's report: {0}")]
    Current(String),
    /// A gate names a group this run does not have.
    #[error("{option} {gate}: this run has no group {group:?} (its groups: {known})")]
    UnknownGroup {
        option: &'static str,
        gate: String,
        group: String,
        known: String,
    },
    /// A gate names a metric the run (or the group) has no value for.
    #[error("{option} {gate}: {scope} has no {metric} (it applies to {applies}), so the gate cannot be checked")]
    MissingMetric {
        option: &'static str,
        gate: String,
        scope: String,
        metric: &'static str,
        applies: &'static str,
    },
    /// Nothing could be paired, so the change gate could not be checked.
    #[error("--fail-on-significant-change: no item id of this run is in {} and neither has a set metric to compare; nothing was compared (are the ids made from other paths?)", path.display())]
    NothingCompared { path: PathBuf },
}

// ---- the report, as read back

#[derive(Debug, Deserialize)]
struct SchemaOnly {
    schema: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Report {
    schema: String,
    items: Vec<ReportItem>,
    #[serde(default)]
    groups: Vec<ReportGroup>,
    overall: ReportScope,
    #[serde(default)]
    settings: Option<Settings>,
}

#[derive(Debug, Deserialize)]
struct ReportItem {
    id: String,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
struct ReportGroup {
    id: String,
    #[serde(default)]
    metrics: BTreeMap<String, Estimate>,
}

#[derive(Debug, Deserialize)]
struct ReportScope {
    #[serde(default)]
    metrics: BTreeMap<String, Estimate>,
}

#[derive(Debug, Deserialize)]
struct Settings {
    resamples: Option<u64>,
    seed: Option<u64>,
}

/// Resamples of the paired bootstrap when the run's settings give none.
const DEFAULT_RESAMPLES: usize = 1000;
/// At most this many resamples per paired bootstrap, whatever the settings say.
const MAX_RESAMPLES: u64 = 100_000;

/// Slack on the range of a stored value (a distance of -1e-9 is rounding).
const RANGE_SLACK: f64 = 1e-6;

/// The range a stored per-item metric must lie in, by name (None: a
/// metric this version does not know, ignored).
fn item_range(name: &str) -> Option<(f64, f64)> {
    match name {
        "copy" => Some((0.0, 1.0)),
        "temporal_prev"
        | "temporal_first"
        | "max_jump"
        | "reference_distance"
        | "nearest_distance"
        | "group_mean_distance" => Some((0.0, DISTANCE.max)),
        _ => None,
    }
}

/// Why `report` breaks the schema's rules, if it does: ids empty or
/// repeated, values out of their metric's range, intervals upside down.
fn check(report: &Report) -> Result<(), String> {
    let in_range = |v: f64, (lo, hi): (f64, f64)| {
        v.is_finite() && v >= lo - RANGE_SLACK && v <= hi + RANGE_SLACK
    };
    let mut ids = HashSet::new();
    for item in &report.items {
        if item.id.is_empty() {
            return Err("an item with an empty id".into());
        }
        if !ids.insert(item.id.as_str()) {
            return Err(format!(
                "item id {:?} appears twice (ids pair the items of two runs, so each must be unique)",
                item.id
            ));
        }
        for (name, &v) in &item.metrics {
            if let Some(range) = item_range(name) {
                if !in_range(v, range) {
                    return Err(format!(
                        "item {:?}: {name} = {v} is outside {} to {}",
                        item.id, range.0, range.1
                    ));
                }
            }
        }
    }
    let check_scope = |scope: &str, metrics: &BTreeMap<String, Estimate>| {
        for (name, e) in metrics {
            let Some(m) = set_metric(name) else { continue };
            let range = (m.range.min, m.range.max);
            let ci_ok = e.ci95.is_none_or(|(lo, hi)| {
                in_range(lo, range) && in_range(hi, range) && lo <= hi + RANGE_SLACK
            });
            if !in_range(e.value, range) || !ci_ok {
                return Err(format!(
                    "{scope}: {name} = {} (interval {:?}) is outside {} to {} or upside down",
                    e.value, e.ci95, range.0, range.1
                ));
            }
        }
        Ok(())
    };
    let mut groups = HashSet::new();
    for g in &report.groups {
        if !groups.insert(g.id.as_str()) {
            return Err(format!("group {:?} appears twice", g.id));
        }
        check_scope(&format!("group {:?}", g.id), &g.metrics)?;
    }
    check_scope("overall", &report.overall.metrics)
}

/// Reads and checks the baseline file.
fn read_baseline(path: &Path) -> Result<Report, BaselineError> {
    let bytes = untrusted::read_capped(path, "a baseline report", MAX_BASELINE_BYTES).map_err(
        |source| BaselineError::Read {
            path: path.to_owned(),
            source,
        },
    )?;
    let parse = |e: serde_json::Error| BaselineError::Parse {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    // The schema first, so that another program's JSON is named as such
    // rather than by the first field it lacks.
    let head: SchemaOnly = serde_json::from_slice(&bytes).map_err(parse)?;
    match head.schema {
        Some(serde_json::Value::String(s)) if s == SCHEMA => {}
        other => {
            return Err(BaselineError::Schema {
                path: path.to_owned(),
                found: other.map_or_else(|| "missing".to_owned(), |v| v.to_string()),
            })
        }
    }
    let report: Report = serde_json::from_slice(&bytes).map_err(parse)?;
    check(&report).map_err(|reason| BaselineError::Invalid {
        path: path.to_owned(),
        reason,
    })?;
    Ok(report)
}

/// Reads and checks this run's report.
fn read_current(current: &serde_json::Value) -> Result<Report, BaselineError> {
    let report = Report::deserialize(current).map_err(|e| BaselineError::Current(e.to_string()))?;
    if report.schema != SCHEMA {
        return Err(BaselineError::Current(format!(
            "schema {:?}",
            report.schema
        )));
    }
    check(&report).map_err(BaselineError::Current)?;
    Ok(report)
}

// ---- the comparison

/// How a change was tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    /// Wilcoxon signed-rank over the paired items.
    Wilcoxon { exact: bool },
    /// The two runs' 95 % intervals: significant when they do not overlap.
    /// Conservative: two 95 % intervals that just touch correspond to a
    /// difference at about the 0.6 % level for equal spreads.
    Intervals,
    /// Too few items or no intervals: nothing to test.
    None,
}

impl Test {
    fn describe(self) -> &'static str {
        match self {
            Test::Wilcoxon { exact: true } => "wilcoxon signed-rank (exact)",
            Test::Wilcoxon { exact: false } => "wilcoxon signed-rank (normal approximation)",
            Test::Intervals => "95 % intervals overlap",
            Test::None => "none (too few items)",
        }
    }
}

/// One metric of one scope, compared.
#[derive(Debug, Clone)]
struct Change {
    group: Option<String>,
    metric: &'static str,
    test: Test,
    /// Paired items (Wilcoxon), or the items of the current run (intervals).
    n: usize,
    baseline: f64,
    current: f64,
    /// Paired bootstrap interval of the mean difference (Wilcoxon only).
    ci95: Option<(f64, f64)>,
    baseline_ci95: Option<(f64, f64)>,
    current_ci95: Option<(f64, f64)>,
    p: Option<f64>,
    significant: bool,
    /// The change goes the bad way for this metric.
    worse: bool,
}

impl Change {
    fn difference(&self) -> f64 {
        self.current - self.baseline
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "scope": if self.group.is_some() { "group" } else { "overall" },
            "group": self.group,
            "metric": self.metric,
            "test": self.test.describe(),
            "n": self.n,
            "baseline": self.baseline,
            "current": self.current,
            "difference": self.difference(),
            "ci95": self.ci95,
            "baseline_ci95": self.baseline_ci95,
            "current_ci95": self.current_ci95,
            "p": self.p,
            "significant": self.significant,
            "worse": self.worse,
        })
    }

    /// "diversity of group "prompt-17" fell from 0.41 to 0.29 (p < 0.001)".
    fn line(&self) -> String {
        let subject = match &self.group {
            Some(g) => format!("{} of group {g:?}", self.metric),
            None => self.metric.to_owned(),
        };
        let verb = if self.difference() > 0.0 {
            "rose"
        } else if self.difference() < 0.0 {
            "fell"
        } else {
            "stayed"
        };
        let how = match (self.test, self.p) {
            (Test::Wilcoxon { .. }, Some(p)) => format_p(p),
            (Test::Intervals, _) => format!(
                "95 % intervals {} and {}{}",
                format_ci(self.baseline_ci95),
                format_ci(self.current_ci95),
                if self.significant {
                    " do not overlap"
                } else {
                    " overlap"
                }
            ),
            _ => "too few items to test".to_owned(),
        };
        let verdict = if self.significant {
            if self.worse {
                ": significant, for the worse"
            } else {
                ": significant"
            }
        } else {
            ": no significant change"
        };
        format!(
            "{subject} {verb} from {:.3} to {:.3} ({how}, n = {}){verdict}",
            self.baseline, self.current, self.n
        )
    }
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_owned()
    } else {
        format!("p = {p:.3}")
    }
}

fn format_ci(ci: Option<(f64, f64)>) -> String {
    ci.map_or_else(|| "(none)".to_owned(), |(a, b)| format!("[{a:.3}, {b:.3}]"))
}

/// Whether a two-sided Wilcoxon test on `n` pairs can reach `alpha` at
/// all: its smallest p is 2 / 2^n (every difference of one sign), so
/// below 6 pairs it never reaches 0.05. Then the intervals decide.
fn wilcoxon_can_reach(n: usize, alpha: f64) -> bool {
    n > 0 && (1.0 - n as f64).exp2() < alpha
}

/// Whether a change in the direction of `difference` is worse.
fn is_worse(worse: Worse, difference: f64) -> bool {
    match worse {
        Worse::Up => difference > 0.0,
        Worse::Down => difference < 0.0,
    }
}

/// Comparison by the two runs' 95 % intervals.
fn by_intervals(
    group: Option<&str>,
    metric: &'static str,
    worse: Worse,
    base: &Estimate,
    cur: &Estimate,
) -> Change {
    let overlap = match (base.ci95, cur.ci95) {
        (Some((b_lo, b_hi)), Some((c_lo, c_hi))) => Some(b_lo <= c_hi && c_lo <= b_hi),
        _ => None,
    };
    let difference = cur.value - base.value;
    Change {
        group: group.map(str::to_owned),
        metric,
        test: if overlap.is_some() {
            Test::Intervals
        } else {
            Test::None
        },
        n: cur.n,
        baseline: base.value,
        current: cur.value,
        ci95: None,
        baseline_ci95: base.ci95,
        current_ci95: cur.ci95,
        p: None,
        significant: overlap == Some(false),
        worse: is_worse(worse, difference),
    }
}

/// What the comparison works with.
struct Context<'a> {
    alpha: f64,
    resamples: usize,
    seed: u64,
    base_items: HashMap<&'a str, &'a ReportItem>,
}

impl Context<'_> {
    /// Paired (baseline, current) values of `item_metric` over the items
    /// of `current` in `group` (None: all) that the baseline has, in the
    /// same group, with the metric in both.
    fn pairs(
        &self,
        current: &[ReportItem],
        group: Option<&str>,
        item_metric: &str,
    ) -> Vec<(f64, f64)> {
        current
            .iter()
            .filter(|c| group.is_none() || c.group.as_deref() == group)
            .filter_map(|c| {
                let b = self.base_items.get(c.id.as_str())?;
                if group.is_some() && b.group != c.group {
                    return None;
                }
                Some((*b.metrics.get(item_metric)?, *c.metrics.get(item_metric)?))
            })
            .collect()
    }

    /// The change of one metric: by the paired items when enough of them
    /// have it, otherwise by the scope's intervals.
    #[allow(clippy::too_many_arguments)]
    fn change(
        &self,
        k: u64,
        group: Option<&str>,
        metric: &'static str,
        worse: Worse,
        pairs: &[(f64, f64)],
        base: Option<&Estimate>,
        cur: Option<&Estimate>,
    ) -> Option<Change> {
        if wilcoxon_can_reach(pairs.len(), self.alpha) || (base.is_none() || cur.is_none()) {
            if pairs.is_empty() {
                return None;
            }
            let n = pairs.len() as f64;
            let paired = stats::paired_change(pairs, self.resamples, self.seed.wrapping_add(k));
            let testable = wilcoxon_can_reach(pairs.len(), self.alpha);
            let significant = testable && paired.wilcoxon.p < self.alpha;
            let baseline = pairs.iter().map(|p| p.0).sum::<f64>() / n;
            let current = pairs.iter().map(|p| p.1).sum::<f64>() / n;
            return Some(Change {
                group: group.map(str::to_owned),
                metric,
                test: if testable {
                    Test::Wilcoxon {
                        exact: paired.wilcoxon.exact,
                    }
                } else {
                    Test::None
                },
                n: pairs.len(),
                baseline,
                current,
                ci95: paired.difference.ci95,
                baseline_ci95: base.and_then(|e| e.ci95),
                current_ci95: cur.and_then(|e| e.ci95),
                p: testable.then_some(paired.wilcoxon.p),
                significant,
                worse: is_worse(worse, current - baseline),
            });
        }
        Some(by_intervals(group, metric, worse, base?, cur?))
    }

    /// Every metric of one scope (`group` None: overall).
    fn scope(
        &self,
        k: &mut u64,
        current: &[ReportItem],
        group: Option<&str>,
        base: &BTreeMap<String, Estimate>,
        cur: &BTreeMap<String, Estimate>,
    ) -> Vec<Change> {
        let mut out = Vec::new();
        for m in SET_METRICS {
            // Overall diversity is over all items, which no per-item
            // figure pairs (group_mean_distance is within a group).
            let item_metric = match (m.item_metric, group) {
                (Some("group_mean_distance"), None) => None,
                (im, _) => im,
            };
            let pairs = item_metric.map_or_else(Vec::new, |im| self.pairs(current, group, im));
            *k += 1;
            if let Some(c) = self.change(
                *k,
                group,
                m.name,
                m.worse,
                &pairs,
                base.get(m.name),
                cur.get(m.name),
            ) {
                out.push(c);
            }
        }
        for &(name, worse) in ITEM_ONLY_METRICS {
            let pairs = self.pairs(current, group, name);
            *k += 1;
            if let Some(c) = self.change(*k, group, name, worse, &pairs, None, None) {
                out.push(c);
            }
        }
        out
    }
}

/// `current` is the JSON document evaluate writes (schema below). Reads the baseline file (untrusted:
/// use cli/src/untrusted.rs's checks), pairs items by id, tests each metric, applies the gates.
///
/// Gates fail closed: a gate on a group the run does not have, or on a
/// metric it has no value for, is an error, never a pass.
pub fn judge(args: &BaselineArgs, current: &serde_json::Value) -> Result<Verdict, BaselineError> {
    // NaN compares false with everything: a NaN level would pass every
    // test, so it is refused here too, not only by the parser.
    if !(args.alpha > ALPHA.min && args.alpha <= ALPHA.max) {
        return Err(BaselineError::Alpha(args.alpha));
    }
    let gates_given = !args.fail_above.is_empty() || !args.fail_below.is_empty();
    if args.baseline.is_none() && !gates_given {
        return Ok(Verdict {
            failed: false,
            lines: Vec::new(),
            comparison: None,
        });
    }
    let cur = read_current(current)?;
    let mut verdict = Verdict {
        failed: false,
        lines: Vec::new(),
        comparison: None,
    };
    if let Some(path) = &args.baseline {
        let base = read_baseline(path)?;
        compare(args, path, &base, &cur, &mut verdict)?;
    }
    for (option, gates, above) in [
        ("--fail-above", &args.fail_above, true),
        ("--fail-below", &args.fail_below, false),
    ] {
        for gate in gates {
            apply_gate(option, gate, above, &cur, &mut verdict)?;
        }
    }
    Ok(verdict)
}

fn compare(
    args: &BaselineArgs,
    path: &Path,
    base: &Report,
    cur: &Report,
    verdict: &mut Verdict,
) -> Result<(), BaselineError> {
    let settings = cur.settings.as_ref();
    let resamples = settings
        .and_then(|s| s.resamples)
        .map_or(DEFAULT_RESAMPLES, |r| r.min(MAX_RESAMPLES) as usize);
    let seed = settings.and_then(|s| s.seed).unwrap_or(1);
    let ctx = Context {
        alpha: args.alpha,
        resamples,
        seed,
        base_items: base.items.iter().map(|i| (i.id.as_str(), i)).collect(),
    };
    let cur_ids: HashSet<&str> = cur.items.iter().map(|i| i.id.as_str()).collect();
    let paired = cur
        .items
        .iter()
        .filter(|i| ctx.base_items.contains_key(i.id.as_str()))
        .count();
    let only_current = cur.items.len() - paired;
    let only_baseline = base
        .items
        .iter()
        .filter(|i| !cur_ids.contains(i.id.as_str()))
        .count();
    let regrouped = cur
        .items
        .iter()
        .filter(|c| {
            ctx.base_items
                .get(c.id.as_str())
                .is_some_and(|b| b.group != c.group)
        })
        .count();

    let mut k = 0u64;
    let mut changes = ctx.scope(
        &mut k,
        &cur.items,
        None,
        &base.overall.metrics,
        &cur.overall.metrics,
    );
    let base_groups: HashMap<&str, &ReportGroup> =
        base.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let mut groups_only_current = Vec::new();
    for g in &cur.groups {
        match base_groups.get(g.id.as_str()) {
            Some(b) => changes.extend(ctx.scope(
                &mut k,
                &cur.items,
                Some(g.id.as_str()),
                &b.metrics,
                &g.metrics,
            )),
            None => groups_only_current.push(g.id.as_str()),
        }
    }
    let cur_groups: HashSet<&str> = cur.groups.iter().map(|g| g.id.as_str()).collect();
    let groups_only_baseline = base
        .groups
        .iter()
        .filter(|g| !cur_groups.contains(g.id.as_str()))
        .count();

    let significant = changes.iter().filter(|c| c.significant).count();
    let worse = changes.iter().filter(|c| c.significant && c.worse).count();
    let shown = path.display();
    verdict.lines.push(format!(
        "compared with {shown}: {paired} item(s) paired by id, {} metric(s) compared, {significant} significant change(s) at alpha {} ({worse} for the worse)",
        changes.len(),
        args.alpha
    ));
    if only_current > 0 || only_baseline > 0 {
        verdict.lines.push(format!(
            "note: {only_current} item(s) of this run are not in the baseline and {only_baseline} item(s) of the baseline are not in this run; paired tests use the items in both"
        ));
    }
    if regrouped > 0 {
        verdict.lines.push(format!(
            "note: {regrouped} paired item(s) changed group; they count only in the overall comparison"
        ));
    }
    if !groups_only_current.is_empty() || groups_only_baseline > 0 {
        verdict.lines.push(format!(
            "note: {} group(s) only in this run, {groups_only_baseline} only in the baseline: not compared",
            groups_only_current.len()
        ));
    }
    for c in &changes {
        if c.group.is_none() || c.significant {
            verdict.lines.push(c.line());
        }
    }
    if args.fail_on_significant_change {
        if changes.iter().all(|c| c.test == Test::None) {
            return Err(BaselineError::NothingCompared {
                path: path.to_owned(),
            });
        }
        if worse > 0 {
            verdict.failed = true;
            verdict.lines.push(format!(
                "--fail-on-significant-change: {worse} significant change(s) for the worse: failed"
            ));
        } else {
            verdict.lines.push(
                "--fail-on-significant-change: no significant change for the worse: passed".into(),
            );
        }
    }
    verdict.comparison = Some(serde_json::json!({
        "baseline": shown.to_string(),
        "alpha": args.alpha,
        "paired_items": paired,
        "items_only_in_current": only_current,
        "items_only_in_baseline": only_baseline,
        "items_regrouped": regrouped,
        "metrics": changes.iter().map(Change::json).collect::<Vec<_>>(),
    }));
    Ok(())
}

/// Where a metric applies, for the message of a gate on an absent one.
fn applies(metric: &str) -> &'static str {
    match metric {
        "temporal_prev" | "temporal_first" | "max_jump" => "videos only",
        "reference_distance" => "items with a reference only",
        "copy_share" => "runs with --against only",
        _ => "sets of two items or more",
    }
}

fn apply_gate(
    option: &'static str,
    gate: &Gate,
    above: bool,
    cur: &Report,
    verdict: &mut Verdict,
) -> Result<(), BaselineError> {
    let (scope, metrics) = match &gate.group {
        None => ("this run".to_owned(), &cur.overall.metrics),
        Some(g) => {
            let group = cur.groups.iter().find(|x| &x.id == g).ok_or_else(|| {
                let mut known: Vec<String> = cur
                    .groups
                    .iter()
                    .take(10)
                    .map(|x| format!("{:?}", x.id))
                    .collect();
                if cur.groups.len() > 10 {
                    known.push(format!("and {} more", cur.groups.len() - 10));
                }
                BaselineError::UnknownGroup {
                    option,
                    gate: gate.to_string(),
                    group: g.clone(),
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                }
            })?;
            (format!("group {g:?}"), &group.metrics)
        }
    };
    let value = metrics
        .get(gate.metric)
        .ok_or_else(|| BaselineError::MissingMetric {
            option,
            gate: gate.to_string(),
            scope: scope.clone(),
            metric: gate.metric,
            applies: applies(gate.metric),
        })?
        .value;
    // Written so that a NaN value (which the checks above rule out) would
    // fail the gate rather than pass it.
    let passed = if above {
        value <= gate.value
    } else {
        value >= gate.value
    };
    let (relation, bound) = if above {
        ("above", ">")
    } else {
        ("below", "<")
    };
    if passed {
        verdict.lines.push(format!(
            "{option} {gate}: {} of {scope} is {value:.4}, not {relation} {}: passed",
            gate.metric, gate.value
        ));
    } else {
        verdict.failed = true;
        verdict.lines.push(format!(
            "{option} {gate}: {} of {scope} is {value:.4} {bound} {}: failed",
            gate.metric, gate.value
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::stats::diversity;
    use clap::Parser;
    use serde_json::{json, Value};

    const RESAMPLES: usize = 200;

    /// `n` random unit vectors (reproducible by seed) near `centre` when
    /// `spread` is small, anywhere when it is 1.
    fn units(n: usize, seed: u64, spread: f32) -> Vec<Vec<f32>> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let centre: Vec<f32> = (0..32).map(|_| rng.f32() * 2.0 - 1.0).collect();
        (0..n)
            .map(|_| {
                let v: Vec<f32> = centre
                    .iter()
                    .map(|c| c * (1.0 - spread) + spread * (rng.f32() * 2.0 - 1.0))
                    .collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect()
    }

    fn estimate(e: Estimate) -> Value {
        serde_json::to_value(e).unwrap()
    }

    /// The set metrics of a set of embeddings, as evaluate writes them.
    fn set_metrics(set: &[Vec<f32>]) -> (Value, Vec<f64>) {
        let refs: Vec<&[f32]> = set.iter().map(Vec::as_slice).collect();
        let d = diversity(&refs, 0.05, RESAMPLES, 1);
        (
            json!({
                "diversity": estimate(d.mean_distance),
                "vendi": estimate(d.vendi),
                "near_duplicate_share": estimate(d.near_duplicate_share),
            }),
            d.per_item_mean_distance,
        )
    }

    /// A report of image items: `groups` of embeddings (a group named ""
    /// holds items without a group), ids `GROUP/i.png`.
    fn report(groups: &[(&str, Vec<Vec<f32>>)]) -> Value {
        let mut items = Vec::new();
        let mut group_docs = Vec::new();
        let mut everything = Vec::new();
        for (name, set) in groups {
            let (metrics, per_item) = set_metrics(set);
            for (i, m) in per_item.iter().enumerate() {
                let id = format!("{name}/{i}.png");
                let mut item_metrics = json!({});
                if !name.is_empty() {
                    item_metrics["group_mean_distance"] = json!(m);
                }
                items.push(json!({
                    "id": id, "path": id, "kind": "image",
                    "group": if name.is_empty() { Value::Null } else { json!(name) },
                    "metrics": item_metrics,
                }));
            }
            if !name.is_empty() {
                group_docs.push(json!({"id": name, "items": set.len(), "metrics": metrics}));
            }
            everything.extend(set.iter().cloned());
        }
        let (overall, _) = set_metrics(&everything);
        json!({
            "schema": SCHEMA,
            "model": {"name": "test"},
            "settings": {"resamples": RESAMPLES, "seed": 1, "near_duplicate": 0.05},
            "items": items,
            "groups": group_docs,
            "overall": {"items": everything.len(), "metrics": overall},
        })
    }

    fn write(dir: &tempfile::TempDir, name: &str, doc: &Value) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec(doc).unwrap()).unwrap();
        path
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BaselineArgs,
    }

    fn args(line: &[&str]) -> Result<BaselineArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("evaluate").chain(line.iter().copied())).map(|c| c.args)
    }

    fn diverse() -> Value {
        report(&[("g1", units(10, 1, 1.0)), ("g2", units(10, 2, 1.0))])
    }

    /// g1 collapsed onto nearly one picture; g2 as before.
    fn collapsed() -> Value {
        report(&[("g1", units(10, 3, 0.001)), ("g2", units(10, 2, 1.0))])
    }

    #[test]
    fn a_run_against_itself_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let doc = diverse();
        let path = write(&dir, "base.json", &doc);
        let a = args(&[
            "--baseline",
            path.to_str().unwrap(),
            "--fail-on-significant-change",
        ])
        .unwrap();
        let v = judge(&a, &doc).unwrap();
        assert!(!v.failed, "{:#?}", v.lines);
        let comparison = v.comparison.unwrap();
        assert_eq!(comparison["paired_items"], 20);
        let metrics = comparison["metrics"].as_array().unwrap();
        assert!(!metrics.is_empty());
        assert!(
            metrics.iter().all(|m| m["significant"] == false),
            "{metrics:#?}"
        );
        // The groups' diversity is tested on the paired items.
        let g1 = metrics
            .iter()
            .find(|m| m["group"] == "g1" && m["metric"] == "diversity")
            .unwrap();
        assert_eq!(g1["test"], "wilcoxon signed-rank (exact)");
        assert_eq!(g1["p"], 1.0);
        assert_eq!(g1["difference"], 0.0);
        assert!(
            v.lines.iter().any(|l| l.contains("passed")),
            "{:#?}",
            v.lines
        );
    }

    #[test]
    fn a_collapsed_group_is_a_significant_drop_that_fails_the_gate() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "base.json", &diverse());
        let current = collapsed();
        let a = args(&[
            "--baseline",
            path.to_str().unwrap(),
            "--fail-on-significant-change",
        ])
        .unwrap();
        let v = judge(&a, &current).unwrap();
        assert!(v.failed, "{:#?}", v.lines);
        let line = v
            .lines
            .iter()
            .find(|l| l.starts_with("diversity of group \"g1\" fell from"))
            .unwrap_or_else(|| panic!("{:#?}", v.lines));
        // Ten items all lower: the exact p is 2 / 2^10.
        assert!(line.contains("p = 0.002"), "{line}");
        let metrics = v.comparison.unwrap()["metrics"].as_array().unwrap().clone();
        let g1 = metrics
            .iter()
            .find(|m| m["group"] == "g1" && m["metric"] == "diversity")
            .unwrap();
        assert_eq!(g1["significant"], true);
        assert_eq!(g1["worse"], true);
        assert!(g1["difference"].as_f64().unwrap() < -0.5, "{g1}");
        let ci = g1["ci95"].as_array().unwrap();
        assert!(ci[1].as_f64().unwrap() < 0.0, "{g1}");
        // The group that did not change did not change.
        assert!(metrics
            .iter()
            .filter(|m| m["group"] == "g2")
            .all(|m| m["significant"] == false));
        // Without the gate the same comparison passes: only reported.
        let a = args(&["--baseline", path.to_str().unwrap()]).unwrap();
        assert!(!judge(&a, &current).unwrap().failed);
        // The other way round diversity rose: significant, not worse.
        let path = write(&dir, "collapsed.json", &current);
        let a = args(&[
            "--baseline",
            path.to_str().unwrap(),
            "--fail-on-significant-change",
        ])
        .unwrap();
        let v = judge(&a, &diverse()).unwrap();
        assert!(!v.failed, "{:#?}", v.lines);
        assert!(v
            .lines
            .iter()
            .any(|l| l.starts_with("diversity of group \"g1\" rose")));
    }

    #[test]
    fn a_small_collapsed_set_without_groups_is_judged_by_its_intervals() {
        // Four items: no Wilcoxon test reaches 0.05 (its smallest p is
        // 2/16), the overall intervals decide.
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "base.json", &report(&[("", units(4, 1, 1.0))]));
        let current = report(&[("", units(4, 5, 0.001))]);
        let a = args(&[
            "--baseline",
            path.to_str().unwrap(),
            "--fail-on-significant-change",
        ])
        .unwrap();
        let v = judge(&a, &current).unwrap();
        assert!(v.failed, "{:#?}", v.lines);
        assert!(
            v.lines
                .iter()
                .any(|l| l.starts_with("diversity fell from") && l.contains("do not overlap")),
            "{:#?}",
            v.lines
        );
    }

    #[test]
    fn threshold_gates_work_both_ways() {
        let (good, bad) = (diverse(), collapsed());
        let check = |line: &[&str], doc: &Value| judge(&args(line).unwrap(), doc).unwrap();
        // diverse: diversity about 1 overall and in g1; collapsed g1 about 0.
        assert!(!check(&["--fail-below", "diversity=0.5"], &good).failed);
        assert!(!check(&["--fail-below", "g1:diversity=0.5"], &good).failed);
        let v = check(&["--fail-below", "g1:diversity=0.5"], &bad);
        assert!(v.failed);
        assert!(v.lines[0].contains("failed"), "{:#?}", v.lines);
        assert!(check(&["--fail-above", "g1:near_duplicate_share=0"], &bad).failed);
        assert!(!check(&["--fail-above", "g1:near_duplicate_share=0"], &good).failed);
        assert!(!check(&["--fail-above", "g2:near_duplicate_share=0"], &bad).failed);
        assert!(check(&["--fail-above", "vendi=2"], &good).failed);
        assert!(!check(&["--fail-below", "vendi=2"], &good).failed);
        // One failing gate among passing ones fails the run.
        let v = check(
            &[
                "--fail-below",
                "diversity=0.1",
                "--fail-below",
                "g1:vendi=3",
                "--fail-above",
                "g2:diversity=2",
            ],
            &bad,
        );
        assert!(v.failed);
        assert_eq!(v.lines.len(), 3, "{:#?}", v.lines);
        assert!(v.comparison.is_none());
    }

    #[test]
    fn gates_that_cannot_be_checked_are_errors_never_passes() {
        let good = diverse();
        let e = judge(&args(&["--fail-above", "g9:diversity=1"]).unwrap(), &good).unwrap_err();
        assert!(matches!(e, BaselineError::UnknownGroup { .. }), "{e}");
        assert!(e.to_string().contains("\"g1\", \"g2\""), "{e}");
        let e = judge(
            &args(&["--fail-above", "temporal_prev=0.1"]).unwrap(),
            &good,
        )
        .unwrap_err();
        assert!(e.to_string().contains("videos only"), "{e}");
        // A NaN level that got past the parser is refused, not used.
        let mut a = args(&["--fail-above", "diversity=1"]).unwrap();
        a.alpha = f64::NAN;
        assert!(matches!(judge(&a, &good), Err(BaselineError::Alpha(_))));
    }

    #[test]
    fn gate_and_alpha_values_are_parsed_strictly() {
        let g = parse_gate("prompt:17:copy_share=0").unwrap();
        assert_eq!(g.group.as_deref(), Some("prompt:17"));
        assert_eq!((g.metric, g.value), ("copy_share", 0.0));
        assert_eq!(parse_gate("vendi=3.5").unwrap().group, None);
        let e = parse_gate("diverstiy=0.2").unwrap_err();
        assert!(e.contains("known metrics are diversity, vendi"), "{e}");
        for bad in [
            "diversity=nan",
            "diversity=NaN",
            "diversity=inf",
            "diversity=-0.1",
            "diversity=2.5",
            "copy_share=1.5",
            "diversity",
            "diversity=",
            ":diversity=0.1",
            "vendi=-1",
        ] {
            assert!(parse_gate(bad).is_err(), "{bad}");
        }
        for bad in [
            &["--alpha", "nan"][..],
            &["--alpha", "0"],
            &["--alpha", "0.9"],
            &["--alpha", "-0.05"],
            &["--fail-below", "diversity=NaN"],
            // The change gate needs something to compare with.
            &["--fail-on-significant-change"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
        let a = args(&[]).unwrap();
        assert_eq!(a.alpha, DEFAULT_ALPHA);
        assert_eq!(BaselineArgs::default().alpha, DEFAULT_ALPHA);
        assert!(judge(&a, &json!({})).unwrap().comparison.is_none());
    }

    #[test]
    fn hostile_baselines_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let current = diverse();
        let judge_file = |path: &Path| {
            let a = args(&[
                "--baseline",
                path.to_str().unwrap(),
                "--fail-on-significant-change",
            ])
            .unwrap();
            judge(&a, &current)
        };
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let text = serde_json::to_string(&current).unwrap();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", vec![], "not an evaluate report"),
            ("garbage", b"\x00\xff{".to_vec(), "not an evaluate report"),
            (
                "other-schema",
                text.replace(SCHEMA, "gst-dreamsim-compare/1").into_bytes(),
                "schema \"gst-dreamsim-compare/1\"",
            ),
            ("no-schema", br#"{"items": []}"#.to_vec(), "schema missing"),
            ("schema-number", br#"{"schema": 1}"#.to_vec(), "schema 1"),
            (
                "nan-string",
                text.replacen(
                    "\"group_mean_distance\":",
                    "\"group_mean_distance\":\"NaN\",\"x\":",
                    1,
                )
                .into_bytes(),
                "not an evaluate report",
            ),
            (
                "nan-literal",
                text.replacen(
                    "\"group_mean_distance\":",
                    "\"group_mean_distance\":NaN,\"x\":",
                    1,
                )
                .into_bytes(),
                "not an evaluate report",
            ),
            (
                "huge-number",
                text.replacen(
                    "\"group_mean_distance\":",
                    "\"group_mean_distance\":1e999,\"x\":",
                    1,
                )
                .into_bytes(),
                "not an evaluate report",
            ),
            (
                "out-of-range",
                text.replacen(
                    "\"group_mean_distance\":",
                    "\"group_mean_distance\":7,\"x\":",
                    1,
                )
                .into_bytes(),
                "outside 0 to 2",
            ),
            (
                "duplicate-ids",
                text.replace("g1/1.png", "g1/0.png").into_bytes(),
                "appears twice",
            ),
            (
                "upside-down-interval",
                serde_json::to_vec(&{
                    let mut d = current.clone();
                    d["overall"]["metrics"]["diversity"]["ci95"] = json!([0.9, 0.1]);
                    d
                })
                .unwrap(),
                "upside down",
            ),
            (
                "items-not-array",
                text.replacen("\"items\":[", "\"items\":{\"a\":[", 1)
                    .into_bytes(),
                "not an evaluate report",
            ),
            (
                "deep",
                format!(
                    "{{\"schema\":{}1{}}}",
                    "[".repeat(100_000),
                    "]".repeat(100_000)
                )
                .into_bytes(),
                "not an evaluate report",
            ),
        ];
        for (name, bytes, want) in cases {
            let path = file(name, &bytes);
            let e = judge_file(&path)
                .err()
                .unwrap_or_else(|| panic!("{name} accepted"));
            let message = e.to_string();
            assert!(message.contains(want), "{name}: {message}");
            assert!(
                message.contains(name),
                "{name}: the file is named: {message}"
            );
        }
        // Over the size cap (a sparse file: nothing is written).
        let huge = dir.path().join("huge.json");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(MAX_BASELINE_BYTES + 1)
            .unwrap();
        let e = judge_file(&huge).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        // Not a regular file, or none.
        let e = judge_file(dir.path()).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        assert!(judge_file(&dir.path().join("absent.json")).is_err());
    }

    #[test]
    fn items_missing_from_either_run_are_noted_and_the_rest_compared() {
        let dir = tempfile::tempdir().unwrap();
        let mut base = diverse();
        // Three items of g1 only in the baseline, one new item in this run.
        let items = base["items"].as_array_mut().unwrap();
        items.retain(|i| !matches!(i["id"].as_str(), Some("g1/7.png" | "g1/8.png" | "g1/9.png")));
        let path = write(&dir, "base.json", &base);
        let mut current = diverse();
        let items = current["items"].as_array_mut().unwrap();
        items.push(json!({"id": "new.png", "group": null, "metrics": {}}));
        let a = args(&["--baseline", path.to_str().unwrap()]).unwrap();
        let v = judge(&a, &current).unwrap();
        assert!(
            v.lines.iter().any(|l| l.contains(
                "4 item(s) of this run are not in the baseline and 0 item(s) of the baseline"
            )),
            "{:#?}",
            v.lines
        );
        let comparison = v.comparison.unwrap();
        assert_eq!(comparison["paired_items"], 17);
        let g1 = comparison["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["group"] == "g1" && m["metric"] == "diversity")
            .unwrap()
            .clone();
        assert_eq!(g1["n"], 7);

        // No id in common: with the change gate, an error, not a pass.
        let other = report(&[("h", units(10, 1, 1.0))]);
        let path = write(&dir, "other.json", &other);
        let mut strip = diverse();
        strip["overall"]["metrics"] = json!({});
        let a = args(&[
            "--baseline",
            path.to_str().unwrap(),
            "--fail-on-significant-change",
        ])
        .unwrap();
        let e = judge(&a, &strip).unwrap_err();
        assert!(matches!(e, BaselineError::NothingCompared { .. }), "{e}");
    }
}
