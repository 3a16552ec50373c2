//! The GPU: the driver and its devices, and the NVIDIA libraries the GPU
//! providers need (found where, which version, or what installs them).

use std::path::PathBuf;

use dreamsim::gpu_libs::{self, NeededBy, GPU_LIBRARIES};
use serde::Serialize;

/// The driver, the devices and the libraries.
#[derive(Debug, Serialize)]
pub struct GpuReport {
    pub driver: DriverReport,
    /// The `nvidia/` folder beside the loaded runtime, when it has one.
    pub data_folder: Option<PathBuf>,
    pub libraries: Vec<LibraryReport>,
}

/// The NVIDIA driver.
#[derive(Debug, Serialize)]
pub struct DriverReport {
    pub library: Option<PathBuf>,
    /// The newest CUDA the driver runs.
    pub cuda_version: Option<String>,
    pub devices: Vec<DeviceReport>,
    /// Why the GPU cannot be used, when it cannot.
    pub error: Option<String>,
    /// What to install, when the driver is missing.
    pub install: Option<String>,
}

/// One GPU.
#[derive(Debug, Serialize)]
pub struct DeviceReport {
    pub device_id: i32,
    pub name: String,
    pub memory_mib: u64,
    pub compute_capability: String,
}

/// One library of the GPU stack.
#[derive(Debug, Serialize)]
pub struct LibraryReport {
    pub soname: &'static str,
    pub what: &'static str,
    /// `cuda` (both GPU providers) or `tensorrt` (only that one).
    pub needed_by: &'static str,
    pub found: bool,
    pub path: Option<PathBuf>,
    pub version: Option<String>,
    /// Why it did not load.
    pub error: Option<String>,
    /// The command that installs it, when it is missing.
    pub install: Option<String>,
}

/// The text that says what installs the driver.
pub fn driver_install() -> String {
    format!(
        "the NVIDIA driver, {} or newer (it provides {}): the distribution's nvidia-driver \
         package or NVIDIA's installer; it is the one piece tools/get_onnxruntime.sh does not \
         install",
        gpu_libs::MINIMUM_DRIVER,
        gpu_libs::DRIVER_LIBRARY
    )
}

/// Asks the driver and looks for every library, in the runtime's `nvidia/`
/// folder first (`runtime_library` is the loaded libonnxruntime), else on
/// the dynamic linker's path.
pub fn inspect(runtime_library: Option<&std::path::Path>) -> GpuReport {
    let driver = gpu_libs::driver();
    let data_folder = runtime_library
        .and_then(gpu_libs::nvidia_dir)
        .filter(|d| d.is_dir());
    let libraries = GPU_LIBRARIES
        .iter()
        .map(|lib| {
            let found = gpu_libs::find(lib, data_folder.as_deref());
            let install = (!found.found()).then(|| {
                let command = match lib.needed_by {
                    NeededBy::Cuda => gpu_libs::INSTALL_COMMAND,
                    NeededBy::TensorRt => gpu_libs::INSTALL_TENSORRT_COMMAND,
                };
                format!("{command} (PyPI package {})", lib.package)
            });
            LibraryReport {
                soname: lib.soname,
                what: lib.what,
                needed_by: match lib.needed_by {
                    NeededBy::Cuda => "cuda",
                    NeededBy::TensorRt => "tensorrt",
                },
                found: found.found(),
                path: found.path,
                version: found.version,
                error: found.error,
                install,
            }
        })
        .collect();
    let missing = driver.library.is_none() && driver.error.is_some();
    GpuReport {
        driver: DriverReport {
            library: driver.library,
            cuda_version: driver.cuda_version,
            devices: driver
                .devices
                .into_iter()
                .map(|d| DeviceReport {
                    device_id: d.ordinal,
                    name: d.name,
                    memory_mib: d.memory_bytes / (1024 * 1024),
                    compute_capability: d.compute_capability,
                })
                .collect(),
            error: driver.error,
            install: missing.then(driver_install),
        },
        data_folder,
        libraries,
    }
}
