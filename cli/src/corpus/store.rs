//! The corpus's list of complete videos, beside the index.
//!
//! The index holds the frames (`Source::VideoFrame`, content hash
//! `<video sha256>@<timestamp ns>`); this list holds one record per video
//! whose frames are all in the index: id (the file's sha256), path,
//! duration, number of sampled frames. A video's frames go into the index
//! in one `add` call (all or nothing), and its record is written only after
//! that call returned: a video whose record is missing is invisible to
//! `corpus match`, and `corpus add` run again fingerprints it again (its
//! frames, already there, are not added twice).
//!
//! For an embedded index the list is a JSON file `<index>.videos.json`,
//! replaced atomically (temporary file, fsync, rename) on every change: a
//! crash leaves the previous list or the new one. For a PostgreSQL index it
//! is a table beside the index's ([`super::pgjobs`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::untrusted::{self, ListFile};
use crate::Error;

pub use crate::untrusted::VideoRecord;

/// The list of complete videos of one index.
pub struct VideoList {
    path: PathBuf,
    list: ListFile,
    pg: Option<super::pgjobs::PgCorpus>,
}

/// Where the list of `index` lives.
pub fn list_path(index: &str) -> PathBuf {
    PathBuf::from(format!("{index}.videos.json"))
}

impl VideoList {
    /// Reads the list of the index at `index` (an empty list when there is none).
    pub fn open(index: &str) -> Result<Self, Error> {
        if dreamsim_index::is_postgres_location(index) {
            let mut pg = super::pgjobs::PgCorpus::connect(index)?;
            let videos = pg
                .videos()?
                .into_iter()
                .map(|v| (v.id.clone(), v))
                .collect();
            return Ok(Self {
                path: PathBuf::new(),
                list: ListFile { videos },
                pg: Some(pg),
            });
        }
        // Another program may have written the list (a shared folder, a
        // copy): read as untrusted, every record checked.
        let path = list_path(index);
        let read = untrusted::read_capped(
            &path,
            "a corpus list of videos",
            untrusted::MAX_VIDEO_LIST_BYTES,
        );
        let list = match read {
            Ok(bytes) => {
                untrusted::parse_video_list(&bytes).map_err(|e| Error::untrusted_parse(&path, e))?
            }
            Err(untrusted::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                ListFile::default()
            }
            Err(e) => return Err(Error::untrusted_read(&path, e)),
        };
        Ok(Self {
            path,
            list,
            pg: None,
        })
    }

    /// The record of the video with this id.
    pub fn get(&self, id: &str) -> Option<&VideoRecord> {
        self.list.videos.get(id)
    }

    /// Every record, by id.
    pub fn videos(&self) -> impl Iterator<Item = &VideoRecord> {
        self.list.videos.values()
    }

    /// Number of videos.
    pub fn len(&self) -> usize {
        self.list.videos.len()
    }

    /// The PostgreSQL side (job table), when the index is on PostgreSQL.
    pub fn pg(&mut self) -> Option<&mut super::pgjobs::PgCorpus> {
        self.pg.as_mut()
    }

    /// Records a complete video (and, on PostgreSQL, marks its job done).
    pub fn record(&mut self, video: VideoRecord) -> Result<(), Error> {
        if let Some(pg) = &mut self.pg {
            pg.record(&video)?;
            self.list.videos.insert(video.id.clone(), video);
            return Ok(());
        }
        self.list.videos.insert(video.id.clone(), video);
        self.write()
    }

    fn write(&self) -> Result<(), Error> {
        let err = |source| Error::File {
            path: self.path.clone(),
            source,
        };
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        serde_json::to_writer_pretty(&mut tmp, &self.list)
            .map_err(|e| err(std::io::Error::other(e)))?;
        tmp.write_all(b"\n").map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&self.path).map_err(|e| err(e.error))?;
        Ok(())
    }
}

/// The content hash of a frame: `<video sha256>@<timestamp ns>`.
pub fn frame_hash(video: &str, timestamp_ns: u64) -> String {
    format!("{video}@{timestamp_ns}")
}

/// The video id in a frame's content hash.
pub fn video_of(frame_hash: &str) -> Option<&str> {
    frame_hash.split_once('@').map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_hashes_name_their_video() {
        let h = frame_hash("abc", 40_000_000);
        assert_eq!(h, "abc@40000000");
        assert_eq!(video_of(&h), Some("abc"));
        assert_eq!(video_of("plain"), None);
    }

    #[test]
    fn the_list_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("c.dsindex");
        let index = index.to_str().unwrap();
        let mut list = VideoList::open(index).unwrap();
        assert_eq!(list.len(), 0);
        let v = VideoRecord {
            id: "a".repeat(64),
            path: "a.mp4".into(),
            duration_ns: 10,
            frames: 3,
        };
        list.record(v.clone()).unwrap();
        let again = VideoList::open(index).unwrap();
        assert_eq!(again.get(&"a".repeat(64)), Some(&v));
    }
}
