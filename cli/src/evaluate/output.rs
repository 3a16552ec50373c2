//! What `evaluate` found, as the JSON document (schema
//! `gst-dreamsim-evaluate/1`, docs/evaluate.md) and one CSV row per item.
//! Both are written from the same values, so they agree to the digit.
//!
//! A figure that does not apply (an image's temporal consistency, a
//! distance to no reference) is absent, never NaN or null.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use dreamsim_index::ModelIdentity;
use serde::Serialize;

use super::embed::Embedded;
use super::input::Item;
use super::items::Temporal;
use super::stats::{self, Estimate};
use super::Args;
use crate::embed_cache::CacheTally;
use crate::index::Kind;
use crate::Error;

/// The schema name of the JSON document.
pub const SCHEMA: &str = "gst-dreamsim-evaluate/1";

/// The nearest known item of `--against`.
#[derive(Debug, Clone, Serialize)]
pub struct Nearest {
    /// Its label in the index.
    pub label: String,
    /// DreamSim distance from the closest of the item's frames.
    pub distance: f64,
    /// At or below `--copy-threshold`.
    pub copy: bool,
    /// The file it was added from, when the index says.
    #[serde(skip)]
    pub known_path: Option<String>,
    /// That frame's time, ns, when known.
    #[serde(skip)]
    pub time_ns: Option<u64>,
}

/// An item's figures.
#[derive(Debug, Clone)]
pub struct ItemResult {
    pub temporal: Option<Temporal>,
    pub reference_distance: Option<f64>,
    /// Its one vector in diversity (a video's normalised mean).
    pub vector: Vec<f32>,
    pub nearest: Option<Nearest>,
    /// Its mean distance to the other items of its group.
    pub group_mean_distance: Option<f64>,
    /// Its sampled frame count (1 for an image).
    pub frames: usize,
    /// Its sampled frames' times, ns (empty when unknown).
    pub times_ns: Vec<u64>,
}

/// A group's (or the whole set's) figures.
#[derive(Debug, Clone, Serialize)]
pub struct GroupResult {
    /// The group's name (`overall`'s is not written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its number of items.
    pub items: usize,
    pub metrics: BTreeMap<&'static str, Estimate>,
    /// Its members (indexes into the items), for the page.
    #[serde(skip)]
    pub members: Vec<usize>,
}

/// The settings that shape the figures, as written in the document.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub rate: f64,
    pub scene_starts: bool,
    pub copy_threshold: f64,
    pub near_duplicate: f64,
    pub resamples: usize,
    pub seed: u64,
    /// The `--against` index, its password removed.
    pub against: Option<String>,
    /// How a video counts in diversity.
    pub video_vector: &'static str,
    /// How a video's reference distance is pooled.
    pub reference_pooling: &'static str,
}

/// A whole run's results.
pub struct Evaluation {
    pub model: ModelIdentity,
    pub settings: Settings,
    pub tally: CacheTally,
    pub items: Vec<Item>,
    pub results: Vec<ItemResult>,
    pub groups: Vec<GroupResult>,
    pub overall: GroupResult,
}

/// The figures of the items `members`: diversity over their vectors (two
/// items at least), the means of the item figures that apply to some.
fn figures(
    members: &[usize],
    results: &[ItemResult],
    settings: &Settings,
) -> (BTreeMap<&'static str, Estimate>, Vec<f64>) {
    let (resamples, seed) = (settings.resamples, settings.seed);
    let mut m = BTreeMap::new();
    let mut per_item = Vec::new();
    if members.len() >= 2 {
        let vectors: Vec<&[f32]> = members
            .iter()
            .map(|&i| results[i].vector.as_slice())
            .collect();
        let d = stats::diversity(&vectors, settings.near_duplicate, resamples, seed);
        m.insert("diversity", d.mean_distance);
        m.insert("vendi", d.vendi);
        m.insert("near_duplicate_share", d.near_duplicate_share);
        per_item = d.per_item_mean_distance;
    }
    let mut mean_of = |name: &'static str, f: &dyn Fn(&ItemResult) -> Option<f64>| {
        let values: Vec<f64> = members.iter().filter_map(|&i| f(&results[i])).collect();
        if !values.is_empty() {
            m.insert(name, stats::mean_estimate(&values, resamples, seed));
        }
    };
    mean_of("temporal_prev", &|r: &ItemResult| {
        r.temporal.map(|t| t.prev)
    });
    mean_of("temporal_first", &|r: &ItemResult| {
        r.temporal.map(|t| t.first)
    });
    mean_of("max_jump", &|r: &ItemResult| r.temporal.map(|t| t.max_jump));
    mean_of("reference_distance", &|r: &ItemResult| r.reference_distance);
    mean_of("copy_share", &|r: &ItemResult| {
        r.nearest.as_ref().map(|n| f64::from(u8::from(n.copy)))
    });
    (m, per_item)
}

impl Evaluation {
    /// Groups (named ones, in order of first appearance) and the overall figures.
    pub fn new(
        args: &Args,
        items: Vec<Item>,
        mut results: Vec<ItemResult>,
        embedded: &Embedded,
    ) -> Self {
        let settings = Settings {
            rate: args.rate,
            scene_starts: !args.no_scene_starts,
            copy_threshold: args.copy_threshold,
            near_duplicate: args.near_duplicate,
            resamples: args.resamples,
            seed: args.seed,
            against: args.against.as_deref().map(dreamsim_index::redact),
            video_vector: "mean of the sampled frames' embeddings, normalised",
            reference_pooling: "mean over the item's sampled frames, paired by time",
        };
        let mut order: Vec<&str> = Vec::new();
        let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(g) = &item.group {
                if !members.contains_key(g.as_str()) {
                    order.push(g);
                }
                members.entry(g).or_default().push(i);
            }
        }
        let mut groups = Vec::new();
        for g in order {
            let ids = &members[g];
            let (metrics, per_item) = figures(ids, &results, &settings);
            for (&i, &d) in ids.iter().zip(&per_item) {
                results[i].group_mean_distance = Some(d);
            }
            groups.push(GroupResult {
                id: Some(g.to_owned()),
                items: ids.len(),
                metrics,
                members: ids.clone(),
            });
        }
        let all: Vec<usize> = (0..items.len()).collect();
        let (metrics, _) = figures(&all, &results, &settings);
        let overall = GroupResult {
            id: None,
            items: items.len(),
            metrics,
            members: all,
        };
        Self {
            model: embedded.identity.clone(),
            settings,
            tally: embedded.tally,
            items,
            results,
            groups,
            overall,
        }
    }

    /// Item `i`'s figures by name: only those that apply.
    pub fn item_metrics(&self, i: usize) -> BTreeMap<&'static str, f64> {
        let r = &self.results[i];
        let mut m = BTreeMap::new();
        if let Some(t) = r.temporal {
            m.insert("temporal_prev", t.prev);
            m.insert("temporal_first", t.first);
            m.insert("max_jump", t.max_jump);
        }
        if let Some(d) = r.reference_distance {
            m.insert("reference_distance", d);
        }
        if let Some(n) = &r.nearest {
            m.insert("nearest_distance", n.distance);
            m.insert("copy", f64::from(u8::from(n.copy)));
        }
        if let Some(d) = r.group_mean_distance {
            m.insert("group_mean_distance", d);
        }
        m
    }

    /// Where item `i`'s largest jump ends: (sampled frame, time in s when known).
    pub fn jump_at(&self, i: usize) -> Option<(usize, Option<f64>)> {
        let t = self.results[i].temporal?;
        Some((
            t.at,
            self.results[i]
                .times_ns
                .get(t.at)
                .map(|&ns| ns as f64 / 1e9),
        ))
    }

    /// The JSON document.
    pub fn document(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct JumpAt {
            frame: usize,
            time_s: Option<f64>,
        }
        #[derive(Serialize)]
        struct ItemDoc<'a> {
            id: &'a str,
            path: &'a str,
            group: Option<&'a str>,
            kind: &'static str,
            frames: usize,
            metrics: BTreeMap<&'static str, f64>,
            max_jump_at: Option<JumpAt>,
            reference: Option<&'a str>,
            nearest: Option<&'a Nearest>,
        }
        #[derive(Serialize)]
        struct Doc<'a> {
            schema: &'static str,
            model: &'a ModelIdentity,
            settings: &'a Settings,
            /// Files the model ran on in this run and files read from the cache.
            embedding: &'a CacheTally,
            items: Vec<ItemDoc<'a>>,
            groups: &'a [GroupResult],
            overall: &'a GroupResult,
        }
        let items = self
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| ItemDoc {
                id: &item.id,
                path: &item.shown,
                group: item.group.as_deref(),
                kind: kind_name(item.kind),
                frames: self.results[i].frames,
                metrics: self.item_metrics(i),
                max_jump_at: self
                    .jump_at(i)
                    .map(|(frame, time_s)| JumpAt { frame, time_s }),
                reference: item.reference.as_ref().map(|(r, _)| r.as_str()),
                nearest: self.results[i].nearest.as_ref(),
            })
            .collect();
        serde_json::to_value(Doc {
            schema: SCHEMA,
            model: &self.model,
            settings: &self.settings,
            embedding: &self.tally,
            items,
            groups: &self.groups,
            overall: &self.overall,
        })
        .expect("plain data serialises")
    }
}

/// `image` or `video`.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Image => "image",
        Kind::Video => "video",
    }
}

/// The document to `path`, or to standard output.
pub fn write_json(path: Option<&Path>, document: &serde_json::Value) -> Result<(), Error> {
    let mut out = crate::output::Output::create(path)?;
    out.write_json(document)?;
    out.finish()
}

/// The CSV's columns.
pub const CSV_HEADER: [&str; 16] = [
    "id",
    "path",
    "group",
    "kind",
    "frames",
    "temporal_prev",
    "temporal_first",
    "max_jump",
    "max_jump_frame",
    "max_jump_time_s",
    "reference",
    "reference_distance",
    "nearest_label",
    "nearest_distance",
    "copy",
    "group_mean_distance",
];

/// One row per item; an empty cell where a figure does not apply.
pub fn write_csv(path: &Path, e: &Evaluation) -> Result<(), Error> {
    let io = |source| Error::File {
        path: path.to_owned(),
        source,
    };
    let mut w = std::io::BufWriter::new(crate::output::create(path)?);
    crate::output::csv_row(&mut w, CSV_HEADER.iter().map(|h| h.to_string())).map_err(io)?;
    let num = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
    for (i, item) in e.items.iter().enumerate() {
        let m = e.item_metrics(i);
        let get = |k: &str| num(m.get(k).copied());
        let jump = e.jump_at(i);
        let nearest = e.results[i].nearest.as_ref();
        let text = |s: &str| crate::output::text_cell(s).into_owned();
        let row = [
            text(&item.id),
            text(&item.shown),
            text(item.group.as_deref().unwrap_or_default()),
            kind_name(item.kind).to_owned(),
            e.results[i].frames.to_string(),
            get("temporal_prev"),
            get("temporal_first"),
            get("max_jump"),
            jump.map_or_else(String::new, |(f, _)| f.to_string()),
            num(jump.and_then(|(_, t)| t)),
            text(item.reference.as_ref().map_or("", |(r, _)| r.as_str())),
            get("reference_distance"),
            text(nearest.map_or("", |n| n.label.as_str())),
            get("nearest_distance"),
            get("copy"),
            get("group_mean_distance"),
        ];
        crate::output::csv_row(&mut w, row).map_err(io)?;
    }
    w.flush().map_err(io)
}
