//! The `dreamsim` plugin as GStreamer sees it: what `gst-inspect-1.0
//! dreamsim` and `gst-inspect-1.0 -b` would say, through the registry API.
//!
//! This tool runs the elements built into it; pipelines of
//! `gst-launch-1.0` or of an application load `libgstdreamsim.so` from
//! GStreamer's plugin path instead. That file is what this module reports.

use std::path::{Path, PathBuf};

use gst::prelude::*;
use serde::Serialize;

/// The plugin's name in the registry.
const PLUGIN: &str = "dreamsim";
/// The file name the plugin crate builds.
const PLUGIN_FILE: &str = "libgstdreamsim.so";

/// What GStreamer's registry holds for the plugin.
#[derive(Debug, Serialize)]
pub struct PluginReport {
    /// The registry cache file (`GST_REGISTRY_1_0`, `GST_REGISTRY`, or the
    /// user's cache folder).
    pub registry: PathBuf,
    /// `GST_PLUGIN_PATH`, when set.
    pub plugin_path: Option<String>,
    /// `GST_PLUGIN_SYSTEM_PATH`, when set.
    pub system_path: Option<String>,
    /// Every `libgstdreamsim.so` the registry knows, loadable or blacklisted.
    pub files: Vec<PluginFile>,
    /// The version of the elements built into this tool.
    pub builtin_version: String,
    /// The commit they were built from.
    pub builtin_commit: String,
}

/// One plugin file in the registry.
#[derive(Debug, Serialize)]
pub struct PluginFile {
    pub path: PathBuf,
    /// The version the plugin declares (`x.y.z-commit` from the build).
    pub version: Option<String>,
    /// The build's date (`gst-plugin-version-helper`).
    pub release: Option<String>,
    /// GStreamer failed to load it at a scan and will not try again until
    /// the file changes or the registry is deleted.
    pub blacklisted: bool,
    /// Why it does not load, as the dynamic linker says, for a blacklisted file.
    pub reason: Option<String>,
    /// The element factories it provides (empty when blacklisted).
    pub elements: Vec<String>,
}

/// GStreamer's registry cache file, as `gst_init` computes it.
fn registry_file() -> PathBuf {
    for var in ["GST_REGISTRY_1_0", "GST_REGISTRY"] {
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache
        .join("gstreamer-1.0")
        .join(format!("registry.{}.bin", std::env::consts::ARCH))
}

/// Reads the registry; call after `gst::init`. The tool's own statically
/// registered plugin has no file and is reported apart.
pub fn inspect() -> PluginReport {
    let registry = gst::Registry::get();
    let mut files = Vec::new();
    let mut builtin_version = String::new();
    for plugin in registry.plugins() {
        let filename = plugin.filename();
        let is_ours = plugin.plugin_name() == PLUGIN
            || filename
                .as_ref()
                .and_then(|f| f.file_name())
                .is_some_and(|n| n == PLUGIN_FILE);
        if !is_ours {
            continue;
        }
        let Some(path) = filename else {
            builtin_version = plugin.version().to_string();
            continue;
        };
        let blacklisted = plugin
            .plugin_flags()
            .contains(gst::PluginFlags::BLACKLISTED);
        let elements = if blacklisted {
            Vec::new()
        } else {
            registry
                .features_by_plugin(PLUGIN)
                .into_iter()
                .filter(|f| f.is::<gst::ElementFactory>())
                .map(|f| f.name().to_string())
                .collect()
        };
        files.push(PluginFile {
            reason: blacklisted.then(|| load_failure(&path)),
            version: (!blacklisted).then(|| plugin.version().to_string()),
            release: plugin.release_date_string().map(|s| s.to_string()),
            path,
            blacklisted,
            elements,
        });
    }
    if builtin_version.is_empty() {
        builtin_version = env!("CARGO_PKG_VERSION").to_owned();
    }
    PluginReport {
        registry: registry_file(),
        plugin_path: std::env::var("GST_PLUGIN_PATH").ok(),
        system_path: std::env::var("GST_PLUGIN_SYSTEM_PATH").ok(),
        files,
        builtin_version,
        builtin_commit: dreamsim::BUILD_VERSION
            .split_once('+')
            .map(|(_, c)| c.to_owned())
            .unwrap_or_default(),
    }
}

/// Why a plugin file does not load: opened here as GStreamer's scanner
/// opens it (all symbols resolved, nothing run but the dynamic linker), so
/// the missing library or symbol is named. A file that opens fine was
/// blacklisted by an earlier failure that is gone now: the registry keeps
/// the verdict until it is deleted.
fn load_failure(path: &Path) -> String {
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
    // SAFETY: the plugin has no load-time constructors; it is closed again
    // at once, and its plugin_init is never called.
    match unsafe { libloading::os::unix::Library::open(Some(path), flags) } {
        Err(e) => dreamsim::gpu_libs::dl_error(&e),
        Ok(lib) => {
            // SAFETY: only the symbol's presence is checked.
            let has_desc = unsafe {
                lib.get::<*const ()>(b"gst_plugin_dreamsim_get_desc")
                    .is_ok()
            };
            if has_desc {
                format!(
                    "it loads now: an earlier scan failed and the registry kept that; delete {} \
                     to make GStreamer scan it again",
                    registry_file().display()
                )
            } else {
                "it is not a GStreamer plugin named dreamsim (no gst_plugin_dreamsim_get_desc)"
                    .into()
            }
        }
    }
}
