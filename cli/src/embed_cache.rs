//! Embedding a labelled set of files once, through the project's own
//! pipelines, with the embeddings kept in an index so that a second run (of
//! `calibrate`, or of another set-level job on the same files) does not run
//! the model again.
//!
//! - An image is read and embedded by the engine, as `index add` does, and
//!   cached under its file's sha256: the content hash `index add` gives it,
//!   so an index built by `index add` with the same model serves as a cache
//!   and the other way round.
//! - A video is sampled as `corpus add` samples it (frames at a rate plus
//!   the first frame of every scene, through `dreamsim ! dreamsimscene`;
//!   [`crate::corpus::fingerprint`]) and cached as its sampled frames, under
//!   `<sha256>#frames:<period ns>:<s|n>:<ordinal>` (the sampling in the key:
//!   another rate is another fingerprint). A video's frames are added in one
//!   all-or-nothing `add`, so finding its frame 0 means all of them are
//!   there; they are read back by [`EmbeddingIndex::id_of_content`] for
//!   ordinals 0, 1, ... until one is missing.
//!
//! Whatever the job does with the frames (one vector, frame-level distances)
//! is the job's decision, not this module's.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use dreamsim::{Engine, Frame};
use dreamsim_index::{self as index, EmbeddingIndex, IndexOptions, NewEntry, Quantization, Source};

use crate::common::CommonArgs;
use crate::corpus::fingerprint::{self, Sampling};
use crate::index::{image_reason, kind_of_file, Kind, SharedModel};
use crate::progress::Counter;
use crate::Error;

/// How videos are sampled (the key of their cached frames depends on it).
#[derive(Debug, Clone, Copy)]
pub struct VideoSampling {
    /// Sampling period, ns.
    pub period_ns: u64,
    /// Also the first frame of every scene.
    pub scene_starts: bool,
    /// A video with no new frame for this long fails as stalled.
    pub stall: Duration,
}

/// An item's embeddings: one for an image, the sampled frames (in time
/// order) for a video.
#[derive(Debug, Clone)]
pub struct ItemEmbeddings {
    /// Unit-norm vectors, at least one.
    pub frames: Vec<Vec<f32>>,
    /// Whether the item is a video.
    pub video: bool,
    /// A video's sampled frames' presentation times, ns, one per frame;
    /// empty for an image (and for frames cached before times were kept).
    pub times_ns: Vec<u64>,
}

/// How many items the model ran on and how many came from the cache.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct CacheTally {
    /// Items embedded by the model in this run.
    pub embedded: usize,
    /// Items read from the cache.
    pub cached: usize,
}

/// The content hash of a video's frame `ordinal` sampled with `sampling`.
fn frame_key(file_hash: &str, sampling: &VideoSampling, ordinal: usize) -> String {
    let scenes = if sampling.scene_starts { 's' } else { 'n' };
    format!(
        "{file_hash}#frames:{}:{scenes}:{ordinal}",
        sampling.period_ns
    )
}

/// The stored vector of entry `id`.
fn stored_vector(set: &mut dyn EmbeddingIndex, id: u64) -> Result<Vec<f32>, Error> {
    Ok(stored(set, id)?.embedding)
}

/// The stored entry `id` with its vector.
fn stored(set: &mut dyn EmbeddingIndex, id: u64) -> Result<index::StoredEntry, Error> {
    let page = set.entries_after(id.checked_sub(1), 1)?;
    match page.into_iter().next() {
        Some(e) if e.entry.id == id => Ok(e),
        _ => Err(Error::Pipeline(format!(
            "the cache lists entry {id} but holds no vector for it"
        ))),
    }
}

/// The cached embeddings of the file with sha256 `hash`, if all are there.
pub(crate) fn cached(
    set: &mut dyn EmbeddingIndex,
    hash: &str,
    kind: Kind,
    sampling: &VideoSampling,
) -> Result<Option<ItemEmbeddings>, Error> {
    match kind {
        Kind::Image => match set.id_of_content(hash)? {
            Some(id) => Ok(Some(ItemEmbeddings {
                frames: vec![stored_vector(set, id)?],
                video: false,
                times_ns: Vec::new(),
            })),
            None => Ok(None),
        },
        Kind::Video => {
            let mut frames = Vec::new();
            let mut times_ns = Vec::new();
            while let Some(id) = set.id_of_content(&frame_key(hash, sampling, frames.len()))? {
                let e = stored(set, id)?;
                if let Source::VideoFrame { timestamp_ns, .. } = e.entry.source {
                    times_ns.push(timestamp_ns);
                }
                frames.push(e.embedding);
            }
            // All or none: a partial list of times would misplace frames.
            if times_ns.len() != frames.len() {
                times_ns.clear();
            }
            Ok((!frames.is_empty()).then_some(ItemEmbeddings {
                frames,
                video: true,
                times_ns,
            }))
        }
    }
}

/// Embeds `paths` (images by extension, anything else as a video), each
/// once, reading and filling the index at `cache` when given (created when
/// missing, f32 vectors so the distances are the model's; an existing index
/// must hold this model's embeddings). Returns the embeddings in the order
/// of `paths`. A file that cannot be embedded is an error naming it.
pub fn embed_all(
    paths: &[PathBuf],
    common: &CommonArgs,
    sampling: &VideoSampling,
    cache: Option<&str>,
) -> Result<(Vec<ItemEmbeddings>, CacheTally), Error> {
    let show = !common.quiet;
    let mut model = SharedModel::load(common)?;
    let identity = model.identity().clone();
    let mut set = match cache {
        Some(location) => Some(index::open(
            location,
            Some(&identity),
            &IndexOptions {
                create: true,
                quantization: Quantization::F32,
                ..IndexOptions::default()
            },
        )?),
        None => None,
    };
    let mut tally = CacheTally::default();
    let mut out = Vec::with_capacity(paths.len());
    let counter = Counter::new("embed", paths.len() as u64, show);
    for path in paths {
        counter.message(path.display().to_string());
        let kind = kind_of_file(path);
        let hash = index::file_sha256(path).map_err(|e| Error::Input {
            input: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if let Some(set) = set.as_deref_mut() {
            if let Some(item) = cached(set, &hash, kind, sampling)? {
                tally.cached += 1;
                out.push(item);
                counter.inc(1);
                continue;
            }
        }
        let item = match kind {
            Kind::Image => embed_image(model.engine(), path)?,
            Kind::Video => {
                counter.suspend(|| model.lend(|element| embed_video(path, element, sampling)))??
            }
        };
        if let Some(set) = set.as_deref_mut() {
            store(set, path, &hash, &item, sampling)?;
        }
        tally.embedded += 1;
        out.push(item);
        counter.inc(1);
    }
    counter.finish();
    Ok((out, tally))
}

pub(crate) fn embed_image(engine: &mut Engine, path: &Path) -> Result<ItemEmbeddings, Error> {
    let input = || path.display().to_string();
    let img = dreamsim::image_file::read_rgb(path).map_err(|e| Error::Input {
        input: input(),
        reason: image_reason(e),
    })?;
    let frame = Frame::rgb(&img.data, img.width, img.height, img.width * 3)?;
    let embedding = engine
        .embed_frames(&[frame])?
        .pop()
        .ok_or_else(|| Error::Input {
            input: input(),
            reason: "the model returned no embedding".into(),
        })?;
    Ok(ItemEmbeddings {
        frames: vec![embedding.as_slice().to_vec()],
        video: false,
        times_ns: Vec::new(),
    })
}

pub(crate) fn embed_video(
    path: &Path,
    common: &CommonArgs,
    sampling: &VideoSampling,
) -> Result<ItemEmbeddings, Error> {
    let decoded = Arc::new(AtomicU64::new(0));
    let fp = fingerprint::fingerprint(
        &path.to_string_lossy(),
        common,
        Sampling {
            period_ns: sampling.period_ns,
            scene_starts: sampling.scene_starts,
            stall: sampling.stall,
        },
        &decoded,
        || {},
    )?;
    Ok(ItemEmbeddings {
        times_ns: fp.frames.iter().map(|f| f.timestamp_ns).collect(),
        frames: fp.frames.into_iter().map(|f| f.embedding).collect(),
        video: true,
    })
}

/// Adds an item's embeddings to the cache in one all-or-nothing `add`.
pub(crate) fn store(
    set: &mut dyn EmbeddingIndex,
    path: &Path,
    hash: &str,
    item: &ItemEmbeddings,
    sampling: &VideoSampling,
) -> Result<(), Error> {
    let shown = path.display().to_string();
    let label = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.clone());
    let entries: Vec<NewEntry<'_>> = if item.video {
        item.frames
            .iter()
            .enumerate()
            .map(|(i, f)| NewEntry {
                label: format!("{label}#{i}"),
                // The frame's time kept with it: evaluate says where a
                // video's largest jump is from the cache alone.
                source: match item.times_ns.get(i) {
                    Some(&timestamp_ns) => Source::VideoFrame {
                        path: shown.clone(),
                        timestamp_ns,
                    },
                    None => Source::Other {
                        description: format!("{shown}, sampled frame {i}"),
                    },
                },
                content_hash: frame_key(hash, sampling, i),
                embedding: f,
            })
            .collect()
    } else {
        vec![NewEntry {
            label,
            source: Source::File { path: shown },
            content_hash: hash.to_owned(),
            embedding: &item.frames[0],
        }]
    };
    set.add(&entries)?;
    Ok(())
}
