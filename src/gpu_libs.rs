//! The NVIDIA libraries the GPU providers of ONNX Runtime need, where
//! `tools/get_onnxruntime.sh --build gpu` installs them, and their preloading.
//!
//! onnxruntime-gpu's provider libraries find the CUDA runtime, cuBLAS,
//! cuDNN and TensorRT through the dynamic linker (`libonnxruntime_providers_cuda.so`
//! has no RUNPATH, and loads cuDNN and cuFFT with `dlopen` by name). The
//! install script unpacks NVIDIA's PyPI wheels into a `nvidia/` folder beside
//! `libonnxruntime.so`, keeping the wheels' own layout (`cu13/lib`,
//! `cudnn/lib`, `tensorrt_libs`) so their RUNPATHs (`$ORIGIN/../../cu13/lib`)
//! still hold. [`preload`] opens those files with `RTLD_GLOBAL`, in dependency
//! order, before any provider is registered: a later `dlopen("libcudnn.so.9")`
//! or a provider's `DT_NEEDED` entry is then answered by the library already
//! loaded (glibc matches loaded libraries by soname), so nothing needs
//! `LD_LIBRARY_PATH`. The driver's `libcuda.so.1` is the one library never
//! installed: it must match the kernel module.
//!
//! [`GPU_LIBRARIES`] is the one list of that stack: the preload order, what
//! `gst-dreamsim doctor` reports, and what the install test checks.

use std::ffi::{c_char, c_int};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The folder, beside `libonnxruntime.so`, that holds the NVIDIA libraries.
pub const NVIDIA_FOLDER: &str = "nvidia";

/// The driver's library: never installed by the project.
pub const DRIVER_LIBRARY: &str = "libcuda.so.1";

/// The oldest driver branch that runs CUDA 13 (what onnxruntime-gpu 1.31 is built for).
pub const MINIMUM_DRIVER: &str = "580";

/// The command that installs the GPU runtime (everything but the driver).
pub const INSTALL_COMMAND: &str = "tools/get_onnxruntime.sh --build gpu";

/// The same with TensorRT's libraries.
pub const INSTALL_TENSORRT_COMMAND: &str = "tools/get_onnxruntime.sh --build gpu --tensorrt";

/// Which GPU provider needs a library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeededBy {
    /// The CUDA provider (and so TensorRT's, which runs on it).
    Cuda,
    /// Only the TensorRT provider.
    TensorRt,
}

/// How a library reports its own version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionCall {
    /// `int f(int *version)`, 1000 * major + 10 * minor (`cudaRuntimeGetVersion`).
    CudartOut(&'static str),
    /// `int f(int *version)`, 1000 * major + 100 * minor + patch (cuRAND, cuFFT).
    Mmp1000Out(&'static str),
    /// `size_t f(void)`, 10000 * major + 100 * minor + patch (cuBLASLt, cuDNN).
    Mmp10000Ret(&'static str),
    /// `int32_t f(void)`, 10000 * major + 100 * minor + patch (TensorRT 10).
    Mmp10000Ret32(&'static str),
    /// `int f(int *major, int *minor)` (NVRTC).
    MajorMinorOut(&'static str),
    /// No version function.
    None,
}

/// One library of the GPU stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuLibrary {
    /// The name it is linked and opened by.
    pub soname: &'static str,
    /// What it is, in the user's words.
    pub what: &'static str,
    /// The PyPI package `tools/get_onnxruntime.sh` takes it from.
    pub package: &'static str,
    /// Its folder under [`NVIDIA_FOLDER`], as the wheel lays it out.
    pub folder: &'static str,
    /// Which provider needs it.
    pub needed_by: NeededBy,
    /// How to ask it for its version.
    pub version: VersionCall,
}

const fn lib(
    soname: &'static str,
    what: &'static str,
    package: &'static str,
    folder: &'static str,
    needed_by: NeededBy,
    version: VersionCall,
) -> GpuLibrary {
    GpuLibrary {
        soname,
        what,
        package,
        folder,
        needed_by,
        version,
    }
}

/// The libraries of onnxruntime-gpu 1.31's CUDA and TensorRT providers
/// (their `DT_NEEDED` entries and the names they `dlopen`), in the order
/// they are preloaded: each after the libraries it links to.
pub const GPU_LIBRARIES: &[GpuLibrary] = &[
    lib(
        "libcudart.so.13",
        "CUDA runtime",
        "nvidia-cuda-runtime",
        "cu13/lib",
        NeededBy::Cuda,
        VersionCall::CudartOut("cudaRuntimeGetVersion"),
    ),
    lib(
        "libcublasLt.so.13",
        "cuBLASLt",
        "nvidia-cublas",
        "cu13/lib",
        NeededBy::Cuda,
        VersionCall::Mmp10000Ret("cublasLtGetVersion"),
    ),
    lib(
        "libcublas.so.13",
        "cuBLAS",
        "nvidia-cublas",
        "cu13/lib",
        NeededBy::Cuda,
        VersionCall::None,
    ),
    lib(
        "libcurand.so.10",
        "cuRAND",
        "nvidia-curand",
        "cu13/lib",
        NeededBy::Cuda,
        VersionCall::Mmp1000Out("curandGetVersion"),
    ),
    lib(
        "libnvJitLink.so.13",
        "nvJitLink (cuFFT's JIT linker)",
        "nvidia-nvjitlink",
        "cu13/lib",
        NeededBy::Cuda,
        VersionCall::MajorMinorOut("nvJitLinkVersion"),
    ),
    lib(
        "libcufft.so.12",
        "cuFFT",
        "nvidia-cufft",
        "cu13/lib",
        NeededBy::Cuda,
        VersionCall::Mmp1000Out("cufftGetVersion"),
    ),
    lib(
        "libnvrtc.so.13",
        "NVRTC",
        "nvidia-cuda-nvrtc",
        "cu13/lib",
        NeededBy::Cuda,
        VersionCall::MajorMinorOut("nvrtcVersion"),
    ),
    lib(
        "libcudnn.so.9",
        "cuDNN",
        "nvidia-cudnn-cu13",
        "cudnn/lib",
        NeededBy::Cuda,
        VersionCall::Mmp10000Ret("cudnnGetVersion"),
    ),
    lib(
        "libnvinfer.so.10",
        "TensorRT",
        "tensorrt-cu13-libs",
        "tensorrt_libs",
        NeededBy::TensorRt,
        VersionCall::Mmp10000Ret32("getInferLibVersion"),
    ),
    lib(
        "libnvinfer_plugin.so.10",
        "TensorRT plugins",
        "tensorrt-cu13-libs",
        "tensorrt_libs",
        NeededBy::TensorRt,
        VersionCall::None,
    ),
    lib(
        "libnvonnxparser.so.10",
        "TensorRT ONNX parser",
        "tensorrt-cu13-libs",
        "tensorrt_libs",
        NeededBy::TensorRt,
        VersionCall::Mmp10000Ret32("getNvOnnxParserVersion"),
    ),
];

/// The `nvidia/` folder beside an ONNX Runtime library file.
pub fn nvidia_dir(runtime_library: &Path) -> Option<PathBuf> {
    Some(runtime_library.parent()?.join(NVIDIA_FOLDER))
}

/// Where `lib` is installed under `nvidia_dir`, if it is.
pub fn installed_path(nvidia_dir: &Path, lib: &GpuLibrary) -> Option<PathBuf> {
    let path = nvidia_dir.join(lib.folder).join(lib.soname);
    path.is_file().then_some(path)
}

/// What [`preload`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preload {
    /// The `nvidia/` folder it looked in.
    pub folder: Option<PathBuf>,
    /// Libraries opened, with their files.
    pub loaded: Vec<(&'static str, PathBuf)>,
    /// Libraries present that did not open, with the dynamic linker's reason
    /// (a missing driver shows up here for a library that links `libcuda.so.1`).
    pub failed: Vec<(&'static str, String)>,
}

/// The dynamic linker's own message for a failed `dlopen`/`dlsym` (which
/// names the missing library or symbol), not just "dlopen failed".
pub fn dl_error(e: &libloading::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => e.to_string(),
    }
}

static KEPT: Mutex<Vec<libloading::os::unix::Library>> = Mutex::new(Vec::new());

/// Opens, with `RTLD_NOW | RTLD_GLOBAL`, every library of [`GPU_LIBRARIES`]
/// installed under `nvidia_dir`, in that order, and keeps them loaded for the
/// life of the process. Libraries not installed there are left to the
/// dynamic linker's own search when a provider needs them. Does nothing when
/// the folder does not exist (a CPU or OpenVINO build).
pub fn preload(nvidia_dir: &Path) -> Preload {
    let mut report = Preload::default();
    if !nvidia_dir.is_dir() {
        return report;
    }
    report.folder = Some(nvidia_dir.to_path_buf());
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    for lib in GPU_LIBRARIES {
        let Some(path) = installed_path(nvidia_dir, lib) else {
            continue;
        };
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
        // SAFETY: NVIDIA's libraries run no initialisation that depends on
        // the caller; they stay loaded (kept below) for the process's life.
        match unsafe { libloading::os::unix::Library::open(Some(&path), flags) } {
            Ok(handle) => {
                kept.push(handle);
                report.loaded.push((lib.soname, path));
            }
            Err(e) => report.failed.push((lib.soname, dl_error(&e))),
        }
    }
    report
}

/// A library of the stack as found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLibrary {
    /// The library.
    pub library: GpuLibrary,
    /// The file, when known: the data folder's copy, or what the dynamic
    /// linker resolved the soname to.
    pub path: Option<PathBuf>,
    /// The version the library reports, when it has a version function.
    pub version: Option<String>,
    /// Why it could not be opened, when it could not.
    pub error: Option<String>,
}

impl FoundLibrary {
    /// Whether the library opened.
    pub fn found(&self) -> bool {
        self.error.is_none()
    }
}

/// Looks `lib` up: in `nvidia_dir` first, else through the dynamic linker's
/// search (`LD_LIBRARY_PATH`, `ldconfig`), and asks it for its version.
pub fn find(lib: &GpuLibrary, nvidia_dir: Option<&Path>) -> FoundLibrary {
    let local = nvidia_dir.and_then(|d| installed_path(d, lib));
    let target: &std::ffi::OsStr = match &local {
        Some(p) => p.as_os_str(),
        None => lib.soname.as_ref(),
    };
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
    // SAFETY: as in `preload`; the handle is dropped after the version call,
    // which leaves a library opened elsewhere (the preload) loaded.
    let handle = match unsafe { libloading::os::unix::Library::open(Some(target), flags) } {
        Ok(h) => h,
        Err(e) => {
            return FoundLibrary {
                library: *lib,
                path: local,
                version: None,
                error: Some(dl_error(&e)),
            }
        }
    };
    let version = unsafe { version_of(&handle, lib.version) };
    let path = local.or_else(|| loaded_path(lib.soname));
    FoundLibrary {
        library: *lib,
        path,
        version,
        error: None,
    }
}

/// Calls the version function of an opened library.
///
/// # Safety
/// `handle` must be the library the [`VersionCall`] belongs to (the symbol's
/// signature is taken from NVIDIA's headers).
unsafe fn version_of(handle: &libloading::os::unix::Library, call: VersionCall) -> Option<String> {
    use libloading::os::unix::Symbol;
    let mmp = |v: i64, major: i64| format!("{}.{}.{}", v / major, (v % major) / 100, v % 100);
    unsafe {
        match call {
            VersionCall::None => None,
            VersionCall::CudartOut(name) => {
                let f: Symbol<unsafe extern "C" fn(*mut c_int) -> c_int> =
                    handle.get(name.as_bytes()).ok()?;
                let mut v = 0;
                (f(&mut v) == 0).then(|| format!("{}.{}", v / 1000, (v % 1000) / 10))
            }
            VersionCall::Mmp1000Out(name) => {
                let f: Symbol<unsafe extern "C" fn(*mut c_int) -> c_int> =
                    handle.get(name.as_bytes()).ok()?;
                let mut v = 0;
                (f(&mut v) == 0).then(|| mmp(v as i64, 1000))
            }
            VersionCall::Mmp10000Ret(name) => {
                let f: Symbol<unsafe extern "C" fn() -> usize> =
                    handle.get(name.as_bytes()).ok()?;
                Some(mmp(f() as i64, 10000))
            }
            VersionCall::Mmp10000Ret32(name) => {
                let f: Symbol<unsafe extern "C" fn() -> i32> = handle.get(name.as_bytes()).ok()?;
                Some(mmp(f() as i64, 10000))
            }
            VersionCall::MajorMinorOut(name) => {
                let f: Symbol<unsafe extern "C" fn(*mut c_int, *mut c_int) -> c_int> =
                    handle.get(name.as_bytes()).ok()?;
                let (mut major, mut minor) = (0, 0);
                (f(&mut major, &mut minor) == 0).then(|| format!("{major}.{minor}"))
            }
        }
    }
}

/// The file a loaded library's soname maps to in this process, from
/// `/proc/self/maps` (the first mapping whose file name starts with it).
pub fn loaded_path(soname: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            Path::new(p)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(soname))
        })
        .map(PathBuf::from)
}

/// The NVIDIA driver as the driver API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Driver {
    /// Where `libcuda.so.1` was found.
    pub library: Option<PathBuf>,
    /// The CUDA version the driver supports (`cuDriverGetVersion`), e.g. `13.0`.
    pub cuda_version: Option<String>,
    /// The GPUs it sees.
    pub devices: Vec<Device>,
    /// Why the driver is unusable, when it is (not installed, `cuInit` failed).
    pub error: Option<String>,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The CUDA device ordinal (`device-id`).
    pub ordinal: i32,
    /// The device's name.
    pub name: String,
    /// Its memory in bytes.
    pub memory_bytes: u64,
    /// Compute capability, `major.minor`.
    pub compute_capability: String,
}

/// Opens the driver's `libcuda.so.1` and asks it for its version and devices.
///
/// Uses the driver API directly (a few functions through `dlopen`), so it
/// works in a build without the `cuda` feature and never panics where the
/// driver is absent.
pub fn driver() -> Driver {
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
    // SAFETY: the driver library runs no initialisation before cuInit.
    let handle = match unsafe { libloading::os::unix::Library::open(Some(DRIVER_LIBRARY), flags) } {
        Ok(h) => h,
        Err(e) => {
            return Driver {
                error: Some(format!(
                    "the NVIDIA driver's {DRIVER_LIBRARY} is not installed ({})",
                    dl_error(&e)
                )),
                ..Driver::default()
            }
        }
    };
    let mut driver = Driver {
        library: loaded_path(DRIVER_LIBRARY),
        ..Driver::default()
    };
    // SAFETY: signatures from cuda.h (CUresult is an int, CUdevice an int).
    unsafe {
        use libloading::os::unix::Symbol;
        type IntFn = unsafe extern "C" fn(*mut c_int) -> c_int;
        let get = |name: &str| -> Option<Symbol<IntFn>> { handle.get(name.as_bytes()).ok() };
        let Some(init): Option<Symbol<unsafe extern "C" fn(u32) -> c_int>> =
            handle.get(b"cuInit").ok()
        else {
            driver.error = Some(format!("{DRIVER_LIBRARY} has no cuInit"));
            return driver;
        };
        if let Some(version) = get("cuDriverGetVersion") {
            let mut v = 0;
            if version(&mut v) == 0 {
                driver.cuda_version = Some(format!("{}.{}", v / 1000, (v % 1000) / 10));
            }
        }
        let status = init(0);
        if status != 0 {
            driver.error = Some(format!(
                "cuInit failed with CUresult {status} (100: no CUDA-capable device; 999: the \
                 kernel module and the driver library do not match)"
            ));
            return driver;
        }
        let mut count = 0;
        if let Some(f) = get("cuDeviceGetCount") {
            f(&mut count);
        }
        let name_fn: Option<Symbol<unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int>> =
            handle.get(b"cuDeviceGetName").ok();
        let mem_fn: Option<Symbol<unsafe extern "C" fn(*mut usize, c_int) -> c_int>> =
            handle.get(b"cuDeviceTotalMem_v2").ok();
        let attr_fn: Option<Symbol<unsafe extern "C" fn(*mut c_int, c_int, c_int) -> c_int>> =
            handle.get(b"cuDeviceGetAttribute").ok();
        for ordinal in 0..count {
            let mut name = [0 as c_char; 256];
            if let Some(f) = &name_fn {
                f(name.as_mut_ptr(), name.len() as c_int, ordinal);
            }
            let mut memory = 0usize;
            if let Some(f) = &mem_fn {
                f(&mut memory, ordinal);
            }
            // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76.
            let (mut major, mut minor) = (0, 0);
            if let Some(f) = &attr_fn {
                f(&mut major, 75, ordinal);
                f(&mut minor, 76, ordinal);
            }
            driver.devices.push(Device {
                ordinal,
                name: std::ffi::CStr::from_ptr(name.as_ptr())
                    .to_string_lossy()
                    .into_owned(),
                memory_bytes: memory as u64,
                compute_capability: format!("{major}.{minor}"),
            });
        }
        if count == 0 {
            driver.error = Some("the driver sees no GPU".into());
        }
    }
    driver
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_library_comes_after_those_it_links_to() {
        let pos = |s: &str| GPU_LIBRARIES.iter().position(|l| l.soname == s).unwrap();
        assert!(pos("libcublasLt.so.13") < pos("libcublas.so.13"));
        assert!(pos("libcudart.so.13") < pos("libcudnn.so.9"));
        assert!(pos("libcudnn.so.9") < pos("libnvinfer.so.10"));
        assert!(pos("libnvinfer.so.10") < pos("libnvonnxparser.so.10"));
    }

    #[test]
    fn preload_of_a_missing_folder_does_nothing() {
        let report = preload(Path::new("/nonexistent/nvidia"));
        assert_eq!(report, Preload::default());
    }

    #[test]
    fn a_library_that_is_not_there_says_why() {
        let missing = GpuLibrary {
            soname: "libdreamsim-does-not-exist.so.1",
            ..GPU_LIBRARIES[0]
        };
        let found = find(&missing, None);
        assert!(!found.found());
        assert!(found
            .error
            .unwrap()
            .contains("libdreamsim-does-not-exist.so.1"));
    }
}
