//! The CUDA C source of the preprocessing kernels and their NVRTC build.
//!
//! The source is compiled once per process and compute capability, and
//! loaded once per device (into the primary context, which ONNX Runtime's
//! CUDA and TensorRT providers use too).
//!
//! NVRTC first builds machine code (CUBIN) for the device's exact
//! architecture: the driver loads it as is, even when NVRTC is newer than the
//! driver (CUDA's minor-version compatibility). PTX for the device's virtual
//! architecture, then for NVRTC's default one, are the fallbacks; the driver
//! compiles PTX itself, which needs a driver at least as new as NVRTC.

use std::collections::HashMap;
use std::ffi::{c_char, CStr, CString};
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule};
use cudarc::nvrtc::{result as nvrtc, sys as nvrtc_sys, Ptx};

use super::plan::Kernel;
use super::CudaError;

/// `kernels.cu`: the kernels, their argument structs and the exactness rules.
pub const SOURCE: &str = include_str!("kernels.cu");

/// What NVRTC produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Machine code for `sm_<major><minor>`.
    Cubin(i32, i32),
    /// PTX for `compute_<major><minor>`.
    Ptx(i32, i32),
    /// PTX for NVRTC's default virtual architecture.
    PtxDefault,
}

impl Target {
    /// The targets to try for a device of compute capability `major.minor`, in order.
    pub fn candidates(major: i32, minor: i32) -> [Target; 3] {
        [
            Target::Cubin(major, minor),
            Target::Ptx(major, minor),
            Target::PtxDefault,
        ]
    }
}

/// The NVRTC options for `target`.
///
/// `--fmad=false` keeps every float multiply and add rounded on its own, as
/// the CPU path computes them; the kernels also spell the rounding out with
/// `__dmul_rn` and friends, so this is a second guard, not the only one.
pub fn compile_options(target: Target) -> Vec<String> {
    let mut options = vec![
        "--fmad=false".to_string(),
        "--prec-div=true".to_string(),
        "--ftz=false".to_string(),
        "--std=c++14".to_string(),
    ];
    match target {
        Target::Cubin(major, minor) => {
            options.push(format!("--gpu-architecture=sm_{major}{minor}"))
        }
        Target::Ptx(major, minor) => {
            options.push(format!("--gpu-architecture=compute_{major}{minor}"))
        }
        Target::PtxDefault => {}
    }
    options
}

/// Whether `libnvrtc` loads (NVRTC calls panic without it).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to load the library.
    unsafe { nvrtc_sys::is_culib_present() }
}

/// NVRTC's version, `(major, minor)`.
pub fn nvrtc_version() -> Result<(i32, i32), CudaError> {
    if !nvrtc_present() {
        return Err(CudaError::NoNvrtc);
    }
    super::catch_panics(|| {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: two valid out-pointers.
        unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) }
            .result()
            .map_err(|e| CudaError::Compile(format!("nvrtcVersion: {e:?}")))?;
        Ok((major, minor))
    })
}

/// A compiled module: CUBIN bytes or PTX text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compiled {
    /// Machine code for one architecture.
    Cubin(Vec<u8>),
    /// PTX text (without the trailing NUL).
    Ptx(String),
}

impl Compiled {
    fn into_ptx(self) -> Ptx {
        match self {
            Compiled::Cubin(bytes) => Ptx::from_binary(bytes),
            Compiled::Ptx(text) => Ptx::from_src(text),
        }
    }
}

/// Runs NVRTC on [`SOURCE`] for `target`. Needs `libnvrtc` only (no GPU, no
/// driver), so the kernels' compilation can be checked on any machine that
/// has NVRTC.
pub fn compile(target: Target) -> Result<Compiled, CudaError> {
    if !nvrtc_present() {
        return Err(CudaError::NoNvrtc);
    }
    super::catch_panics(|| {
        let src = CString::new(SOURCE).expect("kernels.cu has no NUL byte");
        let name = c"dreamsim_preprocess.cu";
        let program = nvrtc::create_program(&src, Some(name))
            .map_err(|e| CudaError::Compile(format!("nvrtcCreateProgram: {e}")))?;
        let result = compile_program(program, target);
        // SAFETY: `program` was created above and is destroyed once.
        let _ = unsafe { nvrtc::destroy_program(program) };
        result
    })
}

fn compile_program(
    program: nvrtc_sys::nvrtcProgram,
    target: Target,
) -> Result<Compiled, CudaError> {
    let options = compile_options(target);
    // SAFETY: `program` is a live program from create_program.
    if let Err(e) = unsafe { nvrtc::compile_program(program, &options) } {
        // SAFETY: as above.
        let log = unsafe { nvrtc::get_program_log(program) }
            .map(|raw| {
                // SAFETY: NVRTC returns a NUL-terminated log.
                unsafe { CStr::from_ptr(raw.as_ptr()) }
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        return Err(CudaError::Compile(format!(
            "{e} with {}: {}",
            options.join(" "),
            log.trim()
        )));
    }
    match target {
        Target::Cubin(..) => {
            let mut size = 0usize;
            // SAFETY: `program` compiled for a real architecture; the buffer
            // has the size NVRTC reports.
            unsafe {
                nvrtc_sys::nvrtcGetCUBINSize(program, &mut size)
                    .result()
                    .map_err(|e| CudaError::Compile(format!("nvrtcGetCUBINSize: {e}")))?;
                let mut cubin = vec![0u8; size];
                nvrtc_sys::nvrtcGetCUBIN(program, cubin.as_mut_ptr().cast::<c_char>())
                    .result()
                    .map_err(|e| CudaError::Compile(format!("nvrtcGetCUBIN: {e}")))?;
                Ok(Compiled::Cubin(cubin))
            }
        }
        Target::Ptx(..) | Target::PtxDefault => {
            // SAFETY: `program` compiled successfully.
            let raw = unsafe { nvrtc::get_ptx(program) }
                .map_err(|e| CudaError::Compile(format!("nvrtcGetPTX: {e}")))?;
            // SAFETY: NVRTC's PTX is NUL-terminated.
            let text = unsafe { CStr::from_ptr(raw.as_ptr()) };
            Ok(Compiled::Ptx(text.to_string_lossy().into_owned()))
        }
    }
}

/// The kernels loaded on one device.
#[derive(Debug)]
pub(crate) struct Kernels {
    _module: Arc<CudaModule>,
    functions: Vec<CudaFunction>,
    target: Target,
}

impl Kernels {
    /// The loaded function of `kernel`.
    pub(crate) fn function(&self, kernel: Kernel) -> &CudaFunction {
        &self.functions[kernel.index()]
    }

    /// What was loaded.
    pub(crate) fn target(&self) -> Target {
        self.target
    }
}

type CompileCache = HashMap<Target, Result<Compiled, String>>;
static COMPILED: Mutex<Option<CompileCache>> = Mutex::new(None);
static LOADED: Mutex<Option<HashMap<usize, Arc<Kernels>>>> = Mutex::new(None);

/// [`compile`], once per process and target.
fn compile_cached(target: Target) -> Result<Compiled, CudaError> {
    let mut cache = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(result) = cache.get(&target) {
        return result.clone().map_err(CudaError::Compile);
    }
    let result = compile(target);
    if let Err(CudaError::NoNvrtc) = result {
        // Not cached: the library may be installed while the process runs.
        return result;
    }
    cache.insert(
        target,
        result.as_ref().map(Clone::clone).map_err(|e| e.to_string()),
    );
    result
}

/// The kernels on `ctx`'s device, compiled and loaded on first use.
pub(crate) fn kernels_for(ctx: &Arc<CudaContext>) -> Result<Arc<Kernels>, CudaError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    let loaded = loaded.get_or_insert_with(HashMap::new);
    if let Some(k) = loaded.get(&ctx.ordinal()) {
        return Ok(k.clone());
    }
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| CudaError::driver("reading the compute capability", e))?;
    let mut failures = Vec::new();
    for target in Target::candidates(major, minor) {
        let module = match compile_cached(target) {
            Ok(compiled) => ctx.load_module(compiled.into_ptx()),
            Err(CudaError::NoNvrtc) => return Err(CudaError::NoNvrtc),
            Err(e) => {
                failures.push(format!("{target:?}: {e}"));
                continue;
            }
        };
        let module = match module {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{target:?}: the driver refused it: {e}"));
                continue;
            }
        };
        let functions = Kernel::ALL
            .iter()
            .map(|k| {
                module
                    .load_function(k.name())
                    .map_err(|e| CudaError::driver("finding a kernel in the module", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let kernels = Arc::new(Kernels {
            _module: module,
            functions,
            target,
        });
        loaded.insert(ctx.ordinal(), kernels.clone());
        return Ok(kernels);
    }
    Err(CudaError::Compile(failures.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_is_in_the_source() {
        for k in Kernel::ALL {
            assert!(
                SOURCE.contains(&format!("extern \"C\" __global__ void {}(", k.name())),
                "{} missing from kernels.cu",
                k.name()
            );
            assert_eq!(Kernel::ALL[k.index()], k);
        }
    }

    #[test]
    fn options_forbid_contraction_and_name_the_architecture() {
        let o = compile_options(Target::Cubin(9, 0));
        assert!(o.iter().any(|s| s == "--fmad=false"));
        assert!(o.iter().any(|s| s == "--gpu-architecture=sm_90"));
        assert!(!o
            .iter()
            .any(|s| s.contains("fast-math") || s.contains("fast_math")));
        assert!(compile_options(Target::Ptx(8, 6))
            .iter()
            .any(|s| s == "--gpu-architecture=compute_86"));
        assert!(!compile_options(Target::PtxDefault)
            .iter()
            .any(|s| s.starts_with("--gpu-architecture")));
        assert_eq!(Target::candidates(9, 0)[0], Target::Cubin(9, 0));
    }
}
