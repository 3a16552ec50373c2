//! Embedding `evaluate`'s files (items and references), each once, on
//! `--workers` threads, through [`crate::embed_cache`]: images by the
//! engine, videos sampled as `corpus add` samples them. With `--cache` each
//! file's embeddings are added to the index as soon as it is done, so an
//! interrupted run resumes where it stopped and a rerun (other options, a
//! baseline) runs no model at all.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use dreamsim::Engine;
use dreamsim_index::{self as index, EmbeddingIndex, IndexOptions, ModelIdentity, Quantization};

use crate::common::CommonArgs;
use crate::embed_cache::{self, CacheTally, ItemEmbeddings, VideoSampling};
use crate::index::{kind_of_file, Kind, SharedModel};
use crate::progress::Counter;
use crate::Error;

/// The embeddings of every file, in the order given, and where they came from.
pub struct Embedded {
    pub files: Vec<ItemEmbeddings>,
    pub tally: CacheTally,
    pub identity: ModelIdentity,
}

/// What the workers share.
struct Shared<'a> {
    files: &'a [PathBuf],
    next: AtomicUsize,
    cache: Option<Mutex<Box<dyn EmbeddingIndex>>>,
    out: Mutex<Vec<Option<ItemEmbeddings>>>,
    tally: Mutex<CacheTally>,
    error: Mutex<Option<Error>>,
    counter: Counter,
    sampling: VideoSampling,
    element_common: CommonArgs,
}

impl Shared<'_> {
    fn failed(&self) -> bool {
        self.error.lock().unwrap().is_some()
    }

    /// One file: from the cache, else embedded and added to it.
    fn one(&self, i: usize, engine: &mut Option<Engine>, common: &CommonArgs) -> Result<(), Error> {
        let path = &self.files[i];
        let kind = kind_of_file(path);
        let hash = index::file_sha256(path).map_err(|e| Error::Input {
            input: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if let Some(cache) = &self.cache {
            let mut set = cache.lock().unwrap();
            if let Some(item) = embed_cache::cached(&mut **set, &hash, kind, &self.sampling)? {
                drop(set);
                self.tally.lock().unwrap().cached += 1;
                self.out.lock().unwrap()[i] = Some(item);
                return Ok(());
            }
        }
        let item = match kind {
            Kind::Image => {
                if engine.is_none() {
                    *engine = Some(SharedModel::load(common)?.into_engine());
                }
                embed_cache::embed_image(engine.as_mut().expect("loaded above"), path)?
            }
            Kind::Video => embed_cache::embed_video(path, &self.element_common, &self.sampling)?,
        };
        if let Some(cache) = &self.cache {
            let mut set = cache.lock().unwrap();
            embed_cache::store(&mut **set, path, &hash, &item, &self.sampling)?;
        }
        self.tally.lock().unwrap().embedded += 1;
        self.out.lock().unwrap()[i] = Some(item);
        Ok(())
    }

    fn work(&self, mut engine: Option<Engine>, common: &CommonArgs) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.files.len() || self.failed() {
                return;
            }
            self.counter.message(self.files[i].display().to_string());
            if let Err(e) = self.one(i, &mut engine, common) {
                self.error.lock().unwrap().get_or_insert(e);
                return;
            }
            self.counter.inc(1);
        }
    }
}

/// Embeds `files` (each once: the caller gives each file once) on
/// `workers` threads, each with its own model for images (loaded when the
/// first image needs it; videos run the `dreamsim` element, whose model the
/// process keeps). The first failure stops the run and is returned; what
/// was done until then stays in the cache.
pub fn embed(
    files: &[PathBuf],
    common: &CommonArgs,
    sampling: &VideoSampling,
    cache: Option<&str>,
    workers: usize,
) -> Result<Embedded, Error> {
    let model = SharedModel::load(common)?;
    let identity = model.identity().clone();
    let element_common = model.element_options().clone();
    let engine = model.into_engine();
    let cache = match cache {
        Some(location) => Some(Mutex::new(index::open(
            location,
            Some(&identity),
            &IndexOptions {
                create: true,
                quantization: Quantization::F32,
                ..IndexOptions::default()
            },
        )?)),
        None => None,
    };
    let shared = Shared {
        files,
        next: AtomicUsize::new(0),
        cache,
        out: Mutex::new(vec![None; files.len()]),
        tally: Mutex::new(CacheTally::default()),
        error: Mutex::new(None),
        counter: Counter::new("embed", files.len() as u64, !common.quiet),
        sampling: *sampling,
        element_common: element_common.clone(),
    };
    let workers = workers.clamp(1, files.len().max(1));
    std::thread::scope(|scope| {
        let shared = &shared;
        let element_common = &element_common;
        for _ in 1..workers {
            scope.spawn(move || shared.work(None, element_common));
        }
        shared.work(Some(engine), element_common);
    });
    shared.counter.finish();
    if let Some(e) = shared.error.into_inner().unwrap() {
        return Err(e);
    }
    let files = shared
        .out
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|f| f.expect("every file done when no worker failed"))
        .collect();
    Ok(Embedded {
        files,
        tally: shared.tally.into_inner().unwrap(),
        identity,
    })
}
