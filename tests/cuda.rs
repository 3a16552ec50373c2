//! The GPU preprocessing (crate feature `cuda`) against the CPU path, which
//! is itself checked against Pillow in tests/engine.rs.
//!
//! Three ways to run the kernels of src/cuda/kernels.cu:
//! - on a CUDA device, through [`GpuPreprocessor`]: those tests are
//!   `#[ignore]`d (CI has no GPU); tools/gpu_check.sh runs them with
//!   `--include-ignored` on a GPU machine;
//! - on the CPU, through a small grid emulator that compiles kernels.cu as
//!   C++ (g++, which tools/install_deps.sh installs). It runs the exact launch
//!   sequence, arguments and tables the GPU path builds (`dreamsim::cuda::plan`),
//!   so the kernels' arithmetic and indexing are checked on every machine;
//! - through NVRTC alone (no GPU needed, but libnvrtc: ignored by default
//!   too), checking that the source compiles for the device and that no
//!   multiply-add got fused.
//!
//! Real frames: bikes.mp4 (.cache/media, from tools/fetch_test_media.sh)
//! decoded by a gst-launch-1.0 subprocess to raw RGBA, NV12 and I420, at its
//! own size, 1080p and 2160p; the PNG fixtures otherwise.

use dreamsim_testsupport as common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use dreamsim::cuda::batch::{DeviceStages, StageFrame};
use dreamsim::cuda::kernels::{self, Compiled, Target};
use dreamsim::cuda::plan::{
    launches, planar_launch, rgb_len, DeviceFrame, DevicePlane, HorizontalArgs, InputLayout,
    Launch, PackedImage, PlanarArgs, ResizeTables, VerticalArgs, WorkBuffers, YuvArgs,
};
use dreamsim::cuda::{self as gpu, CudaError, GpuPreprocessor};
use dreamsim::{
    runtime, Colorimetry, Engine, ExecutionProvider, Frame, Model, ModelOptions, PixelFormat,
    Plane, PreprocessingDevice, Preprocessor, YuvMatrix, YuvRange,
};

const SIZE: usize = 224;

/// The repository: the current directory when it is one (tools/gpu_check.sh
/// runs a test binary built elsewhere from the root of a copy), else the
/// one this file was compiled in.
fn root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    if cwd.join("tests/fixtures/goldens.json").exists() {
        cwd
    } else {
        repo_root()
    }
}

fn fixture_path(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// Scratch space for decoded frames and the emulator: the target's tmp dir
/// where it exists (a build here), else the system's.
fn scratch_dir() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if target.is_dir() {
        target
    } else {
        let dir = std::env::temp_dir().join("dreamsim-cuda-tests");
        let _ = std::fs::create_dir_all(&dir);
        dir
    }
}

/// A test that cannot do its work here fails and says why: one that needs
/// hardware this machine lacks is `#[ignore]`d instead (run on a GPU
/// machine with `--include-ignored`, as tools/gpu_check.sh does), so a green
/// run never hides what did not run.
fn unavailable(test: &str, why: impl std::fmt::Display) -> ! {
    panic!("{test} cannot run here: {why}");
}

// ---------------------------------------------------------------- frames

/// A frame that owns its planes.
struct OwnedFrame {
    format: PixelFormat,
    width: usize,
    height: usize,
    planes: Vec<(Vec<u8>, usize)>,
    colorimetry: Colorimetry,
    label: String,
}

impl OwnedFrame {
    fn frame(&self) -> Frame<'_> {
        let planes: Vec<Plane> = self
            .planes
            .iter()
            .map(|(data, stride)| Plane {
                data,
                stride: *stride,
            })
            .collect();
        Frame::new(
            self.format,
            self.width,
            self.height,
            &planes,
            self.colorimetry,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", self.label))
    }
}

const RGB_FAMILY: [PixelFormat; 10] = [
    PixelFormat::Rgb,
    PixelFormat::Bgr,
    PixelFormat::Rgba,
    PixelFormat::Bgra,
    PixelFormat::Argb,
    PixelFormat::Abgr,
    PixelFormat::Rgbx,
    PixelFormat::Bgrx,
    PixelFormat::Xrgb,
    PixelFormat::Xbgr,
];

const YUV: [PixelFormat; 4] = [
    PixelFormat::I420,
    PixelFormat::Yv12,
    PixelFormat::Nv12,
    PixelFormat::Nv21,
];

fn all_formats() -> Vec<PixelFormat> {
    let mut v = RGB_FAMILY.to_vec();
    v.push(PixelFormat::Gray8);
    v.extend(YUV);
    v
}

/// (width in bytes, rows) of plane `i`, as Frame::new checks it.
fn extent(format: PixelFormat, i: usize, w: usize, h: usize) -> (usize, usize) {
    format.plane_extent(i, w, h)
}

/// A frame of `format` built from packed RGB `rgb` (RGB family and GRAY8:
/// the pixels themselves; YUV: the RGB bytes reused as Y, U, V samples, which
/// is content enough for a conversion test). Rows get `pad` junk bytes.
fn frame_from_rgb(
    rgb: &[u8],
    w: usize,
    h: usize,
    format: PixelFormat,
    pad: usize,
    colorimetry: Colorimetry,
    label: &str,
) -> OwnedFrame {
    let mut planes = Vec::new();
    for i in 0..format.n_planes() {
        let (row_bytes, rows) = extent(format, i, w, h);
        let stride = row_bytes + pad;
        let mut data = vec![0xA5u8; stride * rows];
        for y in 0..rows {
            let row = &mut data[y * stride..][..row_bytes];
            match format.packed_rgb_layout() {
                Some((bpp, offsets)) => {
                    for x in 0..w {
                        for c in 0..3 {
                            row[x * bpp + offsets[c]] = rgb[(y * w + x) * 3 + c];
                        }
                    }
                }
                None => {
                    // GRAY8 and YUV planes: bytes of the pattern, a different
                    // channel per plane.
                    for (x, b) in row.iter_mut().enumerate() {
                        let (sx, sy) = ((x % w), (y * h / rows) % h);
                        *b = rgb[(sy * w + sx) * 3 + i % 3] ^ (x as u8 & 0x10);
                    }
                }
            }
        }
        planes.push((data, stride));
    }
    OwnedFrame {
        format,
        width: w,
        height: h,
        planes,
        colorimetry,
        label: format!("{label} {w}x{h} {format:?} pad {pad}"),
    }
}

/// Deterministic noise with hard 0/255 runs (the content most likely to show
/// a wrong tap or clip).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let v = (s >> 33) as u8;
            if (i / 7) % 3 == 0 {
                if v & 1 == 0 {
                    0
                } else {
                    255
                }
            } else {
                v
            }
        })
        .collect()
}

/// Sizes that exercise every pass order, odd and extreme sizes, upscales and
/// the same-size copy.
const SIZES: &[(usize, usize)] = &[
    (1, 1),
    (2, 2),
    (3, 1),
    (1, 3),
    (7, 5),
    (17, 9),
    (224, 224),
    (225, 224),
    (224, 225),
    (224, 300),
    (300, 224),
    (223, 225),
    (641, 359),
    (720, 1280),
    (1280, 720),
    (1920, 1080),
    (3001, 5),
    (5, 3001),
    (1000, 999),
];

const COLORIMETRIES: [Colorimetry; 4] = [
    Colorimetry {
        matrix: YuvMatrix::Bt601,
        range: YuvRange::Limited,
    },
    Colorimetry {
        matrix: YuvMatrix::Bt709,
        range: YuvRange::Full,
    },
    Colorimetry {
        matrix: YuvMatrix::Bt2020,
        range: YuvRange::Limited,
    },
    Colorimetry {
        matrix: YuvMatrix::Smpte240m,
        range: YuvRange::Full,
    },
];

/// Every format at every size of [`SIZES`], pattern or noise content,
/// with varying stride padding and colorimetry.
fn synthetic_frames(mut visit: impl FnMut(&OwnedFrame)) {
    for (n, &(w, h)) in SIZES.iter().enumerate() {
        let rgb = if n % 2 == 0 {
            pattern_rgb(w, h, n as u64, 0, 0)
        } else {
            noise(w * h * 3, n as u64)
        };
        for (k, format) in all_formats().into_iter().enumerate() {
            let pad = (n + k) % 4 * 3;
            let colorimetry = COLORIMETRIES[(n + k) % COLORIMETRIES.len()];
            visit(&frame_from_rgb(
                &rgb,
                w,
                h,
                format,
                pad,
                colorimetry,
                "synthetic",
            ));
        }
    }
}

/// The PNG fixtures as RGB-family, GRAY8 and YUV frames.
fn fixture_frames(mut visit: impl FnMut(&OwnedFrame)) {
    for dir in ["resize", "yuv"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(fixture_path(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .collect();
        paths.sort();
        for (i, path) in paths.iter().enumerate() {
            let (w, h, rgb) = png_rgb(path);
            let name = path.file_name().unwrap().to_string_lossy();
            for format in [
                PixelFormat::Rgba,
                PixelFormat::Bgrx,
                PixelFormat::Rgb,
                PixelFormat::Gray8,
                PixelFormat::Nv12,
                PixelFormat::I420,
            ] {
                visit(&frame_from_rgb(
                    &rgb,
                    w,
                    h,
                    format,
                    i % 3,
                    COLORIMETRIES[i % 4],
                    &name,
                ));
            }
        }
    }
}

/// GStreamer's default layout of a raw frame: (plane offset, stride) per
/// plane and the frame size, for the formats decoded here.
fn gst_layout(format: PixelFormat, w: usize, h: usize) -> (Vec<(usize, usize)>, usize) {
    let up4 = |v: usize| v.next_multiple_of(4);
    let up2 = |v: usize| v.next_multiple_of(2);
    match format {
        PixelFormat::Rgba => (vec![(0, w * 4)], w * 4 * h),
        PixelFormat::Nv12 => {
            let s = up4(w);
            let o1 = s * up2(h);
            (vec![(0, s), (o1, s)], o1 + s * up2(h) / 2)
        }
        PixelFormat::I420 => {
            let s0 = up4(w);
            let s1 = up4(up2(w) / 2);
            let o1 = s0 * up2(h);
            let o2 = o1 + s1 * up2(h) / 2;
            (vec![(0, s0), (o1, s1), (o2, s1)], o2 + s1 * up2(h) / 2)
        }
        other => unreachable!("{other:?}"),
    }
}

fn bikes() -> Option<PathBuf> {
    let path = root().join(".cache/media/bikes.mp4");
    path.exists().then_some(path)
}

/// `count` frames of bikes.mp4 as `format` at `w` x `h`, decoded by
/// gst-launch-1.0 (cached in the target's tmp dir), or why not.
fn decode_bikes(
    format: PixelFormat,
    w: usize,
    h: usize,
    count: usize,
) -> Result<Vec<OwnedFrame>, String> {
    let caps_format = match format {
        PixelFormat::Rgba => "RGBA",
        PixelFormat::Nv12 => "NV12",
        PixelFormat::I420 => "I420",
        other => unreachable!("{other:?}"),
    };
    let (planes, frame_len) = gst_layout(format, w, h);
    let name = format!("bikes_{caps_format}_{w}x{h}_{count}.raw");
    // Frames decoded elsewhere (tools/gpu_check.sh --bundle carries some to
    // machines without GStreamer), else the scratch dir's.
    let carried = std::env::var_os("DREAMSIM_TEST_FRAMES").map(|d| PathBuf::from(d).join(&name));
    let out = carried
        .filter(|p| p.exists())
        .unwrap_or_else(|| scratch_dir().join(&name));
    // identity's eos-after=N ends the stream in place of the Nth buffer.
    let ready = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| {
            let len = m.len() as usize;
            len >= frame_len * count && len.is_multiple_of(frame_len)
        })
    };
    if !ready(&out) {
        let video = bikes().ok_or("no .cache/media/bikes.mp4 (tools/fetch_test_media.sh)")?;
        // Two frames a second over the clip, so the frames come from
        // different scenes.
        let pipeline = format!(
            "filesrc location={} ! decodebin ! videoconvert ! videoscale ! videorate drop-only=true \
             ! video/x-raw,format={caps_format},width={w},height={h},pixel-aspect-ratio=1/1,framerate=2/1 \
             ! identity eos-after={} ! filesink location={}",
            video.display(),
            count + 1,
            out.display()
        );
        let status = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(pipeline.split_whitespace())
            .status()
            .map_err(|e| format!("gst-launch-1.0 cannot run: {e}"))?;
        if !status.success() || !ready(&out) {
            return Err(format!(
                "gst-launch-1.0 did not decode {caps_format} {w}x{h} ({status})"
            ));
        }
    }
    let bytes = std::fs::read(&out).map_err(|e| e.to_string())?;
    Ok(bytes
        .chunks_exact(frame_len)
        .take(count)
        .enumerate()
        .map(|(n, f)| OwnedFrame {
            format,
            width: w,
            height: h,
            planes: planes
                .iter()
                .enumerate()
                .map(|(i, &(offset, stride))| {
                    let rows = extent(format, i, w, h).1;
                    (f[offset..offset + stride * rows].to_vec(), stride)
                })
                .collect(),
            colorimetry: Colorimetry {
                matrix: if h >= 720 {
                    YuvMatrix::Bt709
                } else {
                    YuvMatrix::Bt601
                },
                range: YuvRange::Limited,
            },
            label: format!("bikes frame {n} {caps_format} {w}x{h}"),
        })
        .collect())
}

/// Real frames: bikes.mp4 at its own size and scaled to 1080p, 2160p and an
/// odd size, in RGBA, NV12 and I420; the count, or why there are none. A size
/// that cannot be had is reported and the others still run.
fn real_frames(mut visit: impl FnMut(&OwnedFrame)) -> Result<usize, String> {
    let mut seen = 0;
    let mut missing = Vec::new();
    for (w, h, count) in [
        (640, 272, 3),
        (1920, 1080, 2),
        (3840, 2160, 1),
        (641, 359, 1),
    ] {
        for format in [PixelFormat::Rgba, PixelFormat::Nv12, PixelFormat::I420] {
            match decode_bikes(format, w, h, count) {
                Ok(frames) => {
                    for f in frames {
                        visit(&f);
                        seen += 1;
                    }
                }
                Err(why) => missing.push(format!("{format:?} {w}x{h}: {why}")),
            }
        }
    }
    if !missing.is_empty() {
        Err(missing.join("; "))
    } else {
        Ok(seen)
    }
}

// ---------------------------------------------------------------- reference and comparison

/// The CPU path's resized image and model input.
fn cpu_reference(pre: &mut Preprocessor, frame: &Frame<'_>) -> (Vec<u8>, Vec<f32>) {
    let resized = pre.resize(frame).unwrap().to_vec();
    let mut input = vec![0f32; 3 * SIZE * SIZE];
    pre.process(frame, &mut input).unwrap();
    (resized, input)
}

fn assert_same(got: &(Vec<u8>, Vec<f32>), want: &(Vec<u8>, Vec<f32>), what: &str) {
    if got.0 != want.0 {
        let diffs = got.0.iter().zip(&want.0).filter(|(a, b)| a != b).count();
        let first = got.0.iter().zip(&want.0).position(|(a, b)| a != b).unwrap();
        let max = got
            .0
            .iter()
            .zip(&want.0)
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .max()
            .unwrap();
        panic!(
            "{what}: resized image differs from the CPU's: {diffs} bytes, first at pixel ({}, {}) \
             channel {} ({} vs {}), max |diff| {max}",
            first / 3 % SIZE,
            first / 3 / SIZE,
            first % 3,
            got.0[first],
            want.0[first]
        );
    }
    let same_bits = got.1.len() == want.1.len()
        && got
            .1
            .iter()
            .zip(&want.1)
            .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(same_bits, "{what}: model input differs from the CPU's");
}

// ---------------------------------------------------------------- the CPU emulator

/// Runs kernels.cu as C++ on the CPU: every block and thread of a launch,
/// one after the other, with the CUDA built-ins as globals and the rounding
/// intrinsics as plain IEEE operations (no contraction, no fast math).
const EMULATOR_CPP: &str = r#"
#include <cmath>
#include <cstddef>
#include <cstring>
typedef unsigned char u8;
typedef int i32;
typedef long long i64;
typedef unsigned long long u64;
struct Dim3 { unsigned x, y, z; };
// Per host thread: the tests run launches from several threads at once.
static thread_local Dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
using std::floor;
#include KERNELS_CU

template <class A>
static void grid(void (*kernel)(const A), const unsigned* g, const unsigned* b, const void* args) {
    A a;
    std::memcpy(&a, args, sizeof(A));
    gridDim = Dim3{g[0], g[1], g[2]};
    blockDim = Dim3{b[0], b[1], b[2]};
    for (unsigned bz = 0; bz < g[2]; ++bz)
    for (unsigned by = 0; by < g[1]; ++by)
    for (unsigned bx = 0; bx < g[0]; ++bx)
    for (unsigned tz = 0; tz < b[2]; ++tz)
    for (unsigned ty = 0; ty < b[1]; ++ty)
    for (unsigned tx = 0; tx < b[0]; ++tx) {
        blockIdx = Dim3{bx, by, bz};
        threadIdx = Dim3{tx, ty, tz};
        kernel(a);
    }
}

extern "C" int dreamsim_emulate(const char* name, const unsigned* g, const unsigned* b,
                                const void* args, size_t len) {
#define KERNEL(fn, A) \
    if (!std::strcmp(name, #fn)) { if (len != sizeof(A)) return 2; grid<A>(fn, g, b, args); return 0; }
    KERNEL(dreamsim_yuv420_to_rgb, YuvArgs)
    KERNEL(dreamsim_resample_horizontal, HorizontalArgs)
    KERNEL(dreamsim_resample_vertical, VerticalArgs)
    KERNEL(dreamsim_to_planar, PlanarArgs)
    return 1;
}

extern "C" void dreamsim_layout(u64* out) {
    out[0] = sizeof(PackedImage); out[1] = offsetof(PackedImage, offsets);
    out[2] = sizeof(YuvArgs); out[3] = offsetof(YuvArgs, dst_stride); out[4] = offsetof(YuvArgs, g_div);
    out[5] = sizeof(HorizontalArgs); out[6] = offsetof(HorizontalArgs, first_row); out[7] = offsetof(HorizontalArgs, ksize);
    out[8] = sizeof(VerticalArgs); out[9] = offsetof(VerticalArgs, row_offset); out[10] = offsetof(VerticalArgs, ksize);
    out[11] = sizeof(PlanarArgs); out[12] = offsetof(PlanarArgs, packed); out[13] = offsetof(PlanarArgs, planar);
}
"#;

type EmulateFn =
    unsafe extern "C" fn(*const std::ffi::c_char, *const u32, *const u32, *const u8, usize) -> i32;

struct Emulator {
    library: libloading::Library,
}

impl Emulator {
    fn launch(&self, launch: &Launch) {
        let dims = launch.dims().expect("grid fits");
        let grid = [dims.grid.0, dims.grid.1, dims.grid.2];
        let block = [dims.block.0, dims.block.1, dims.block.2];
        let name = std::ffi::CString::new(launch.kernel().name()).unwrap();
        let args = launch.arg_bytes();
        // SAFETY: the symbol has this signature (EMULATOR_CPP); every address
        // in the arguments points into a live buffer of the caller.
        let rc = unsafe {
            let f: libloading::Symbol<EmulateFn> = self.library.get(b"dreamsim_emulate").unwrap();
            f(
                name.as_ptr(),
                grid.as_ptr(),
                block.as_ptr(),
                args.as_ptr(),
                args.len(),
            )
        };
        assert_eq!(rc, 0, "emulator refused {}", launch.kernel().name());
    }

    fn layout(&self) -> [u64; 14] {
        let mut out = [0u64; 14];
        // SAFETY: writes 14 values.
        unsafe {
            let f: libloading::Symbol<unsafe extern "C" fn(*mut u64)> =
                self.library.get(b"dreamsim_layout").unwrap();
            f(out.as_mut_ptr());
        }
        out
    }

    /// The GPU path's launches for `frame`, run on host buffers: the same
    /// staging layout, tables, work buffers and arguments as GpuPreprocessor.
    fn preprocess(&self, frame: &Frame<'_>) -> (Vec<u8>, Vec<f32>) {
        let layout = InputLayout::of(frame);
        let mut input = vec![0u8; layout.total_len()];
        layout.fill(frame, &mut input);
        let (w, h) = (frame.width(), frame.height());
        let tables = ResizeTables::new(w, h, SIZE);
        let packed = tables.packed().to_vec();
        // Poisoned, so that an unwritten output shows.
        let mut rgb = vec![0xEEu8; rgb_len(frame.format(), w, h)];
        let mut intermediate = vec![0xEEu8; tables.intermediate_len()];
        let mut resized = vec![0xEEu8; 3 * SIZE * SIZE];
        let mut planar = vec![f32::NAN; 3 * SIZE * SIZE];
        let addr = |v: &mut [u8]| {
            if v.is_empty() {
                0
            } else {
                v.as_mut_ptr() as u64
            }
        };
        let work = WorkBuffers {
            tables: if packed.is_empty() {
                0
            } else {
                packed.as_ptr() as u64
            },
            rgb: addr(&mut rgb),
            intermediate: addr(&mut intermediate),
            resized: addr(&mut resized),
        };
        let device = layout.device_frame(frame, input.as_ptr() as u64);
        for launch in launches(&device, &tables, &work, planar.as_mut_ptr() as u64).iter() {
            self.launch(launch);
        }
        (resized, planar)
    }
}

/// The emulator, compiled once per test process, or why there is none.
fn emulator() -> Result<&'static Emulator, String> {
    static EMULATOR: OnceLock<Result<Emulator, String>> = OnceLock::new();
    EMULATOR
        .get_or_init(|| {
            let dir = scratch_dir();
            let cpp = dir.join("dreamsim_cuda_emulator.cpp");
            let lib = dir.join(format!(
                "libdreamsim_cuda_emulator_{}.so",
                std::process::id()
            ));
            std::fs::write(&cpp, EMULATOR_CPP).map_err(|e| e.to_string())?;
            let kernels = root().join("src/cuda/kernels.cu");
            let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
            let output = Command::new(&cxx)
                .args([
                    "-std=c++17",
                    "-O2",
                    "-ffp-contract=off",
                    "-fno-fast-math",
                    "-Wall",
                ])
                .args(["-Wno-unused-function", "-shared", "-fPIC", "-o"])
                .arg(&lib)
                .arg(format!("-DKERNELS_CU=\"{}\"", kernels.display()))
                .arg(&cpp)
                .output()
                .map_err(|e| format!("no C++ compiler ({cxx}: {e})"))?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                // An incomplete toolchain fails the test with its reason; a compiler
                // that rejects kernels.cu is a failure.
                if stderr.contains("cannot execute") || stderr.contains("cannot find -l") {
                    return Err(format!(
                        "the C++ toolchain is incomplete: {}",
                        stderr.trim()
                    ));
                }
                panic!("{cxx} rejected kernels.cu in the emulator:\n{stderr}");
            }
            // SAFETY: a library we just built, with no initialisers.
            let library = unsafe { libloading::Library::new(&lib) }.map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(&lib);
            Ok(Emulator { library })
        })
        .as_ref()
        .map_err(Clone::clone)
}

// ---------------------------------------------------------------- the GPU

fn gpu_preprocessor(test: &str) -> GpuPreprocessor {
    match GpuPreprocessor::new(0, SIZE) {
        Ok(p) => {
            println!(
                "{test}: CUDA device 0 is {} (kernels loaded as {:?})",
                p.device_name(),
                p.kernel_target()
            );
            p
        }
        Err(e) => unavailable(test, format!("no usable CUDA device: {e}")),
    }
}

fn gpu_process(gpu: &mut GpuPreprocessor, frame: &Frame<'_>) -> (Vec<u8>, Vec<f32>) {
    gpu.process(frame).unwrap();
    let mut resized = Vec::new();
    gpu.download_resized(&mut resized).unwrap();
    let mut planar = Vec::new();
    gpu.download_output(&mut planar).unwrap();
    (resized, planar)
}

// ---------------------------------------------------------------- tests: no GPU needed

#[test]
fn kernel_argument_structs_have_the_same_layout_in_c_and_rust() {
    use std::mem::{offset_of, size_of};
    let emu = match emulator() {
        Ok(e) => e,
        Err(why) => unavailable("layout", why),
    };
    let rust = [
        size_of::<PackedImage>(),
        offset_of!(PackedImage, offsets),
        size_of::<YuvArgs>(),
        offset_of!(YuvArgs, dst_stride),
        offset_of!(YuvArgs, g_div),
        size_of::<HorizontalArgs>(),
        offset_of!(HorizontalArgs, first_row),
        offset_of!(HorizontalArgs, ksize),
        size_of::<VerticalArgs>(),
        offset_of!(VerticalArgs, row_offset),
        offset_of!(VerticalArgs, ksize),
        size_of::<PlanarArgs>(),
        offset_of!(PlanarArgs, packed),
        offset_of!(PlanarArgs, planar),
    ]
    .map(|v| v as u64);
    assert_eq!(emu.layout(), rust);
}

#[test]
fn emulated_kernels_equal_the_cpu_for_every_format_and_size() {
    let emu = match emulator() {
        Ok(e) => e,
        Err(why) => unavailable("emulated synthetic frames", why),
    };
    let mut cpu = Preprocessor::new(SIZE);
    let mut count = 0;
    synthetic_frames(|f| {
        let frame = f.frame();
        assert_same(
            &emu.preprocess(&frame),
            &cpu_reference(&mut cpu, &frame),
            &f.label,
        );
        count += 1;
    });
    fixture_frames(|f| {
        let frame = f.frame();
        assert_same(
            &emu.preprocess(&frame),
            &cpu_reference(&mut cpu, &frame),
            &f.label,
        );
        count += 1;
    });
    println!("emulated kernels: {count} frames byte-identical to the CPU path");
}

#[test]
fn emulated_kernels_equal_the_cpu_on_real_frames() {
    let emu = match emulator() {
        Ok(e) => e,
        Err(why) => unavailable("emulated real frames", why),
    };
    let mut cpu = Preprocessor::new(SIZE);
    match real_frames(|f| {
        let frame = f.frame();
        assert_same(
            &emu.preprocess(&frame),
            &cpu_reference(&mut cpu, &frame),
            &f.label,
        );
    }) {
        Ok(n) => println!("emulated kernels: {n} bikes.mp4 frames byte-identical to the CPU path"),
        Err(why) => unavailable("emulated real frames", why),
    }
}

#[test]
#[ignore = "needs libnvrtc from CUDA 13 (tools/gpu_check.sh runs it)"]
fn nvrtc_compiles_the_kernels_without_fused_multiply_adds() {
    if !kernels::nvrtc_present() {
        unavailable(
            "nvrtc",
            "libnvrtc.so not loadable (put the CUDA 13 nvidia-cuda-nvrtc lib folder on LD_LIBRARY_PATH)",
        );
    }
    let version = kernels::nvrtc_version().unwrap();
    let archs = [(7, 5), (8, 0), (8, 6), (8, 9), (9, 0)];
    for (major, minor) in archs {
        match kernels::compile(Target::Ptx(major, minor)).unwrap() {
            Compiled::Ptx(ptx) => {
                for kernel in dreamsim::cuda::plan::Kernel::ALL {
                    assert!(
                        ptx.contains(&format!(".entry {}(", kernel.name())),
                        "sm_{major}{minor}: {} missing",
                        kernel.name()
                    );
                }
                // A fused multiply-add would round once where the CPU rounds
                // twice: the YUV conversion and the /255 must have none.
                for fused in ["fma.rn.f64", "fma.rn.f32", "mad.rn.f32", "fma.rn.ftz"] {
                    assert!(!ptx.contains(fused), "sm_{major}{minor}: PTX has {fused}");
                }
                assert!(ptx.contains("div.rn.f64") && ptx.contains("div.rn.f32"));
            }
            other => panic!("expected PTX, got {other:?}"),
        }
        match kernels::compile(Target::Cubin(major, minor)).unwrap() {
            Compiled::Cubin(bytes) => assert_eq!(&bytes[..4], b"\x7fELF"),
            other => panic!("expected a CUBIN, got {other:?}"),
        }
    }
    println!(
        "NVRTC {}.{} compiled the kernels for sm_75 to sm_90 (PTX with no fused multiply-add, and CUBIN)",
        version.0, version.1
    );
}

#[test]
fn without_a_gpu_provider_the_engine_preprocesses_on_the_cpu() {
    let options = ModelOptions {
        provider: ExecutionProvider::Cpu,
        threads: 1,
        ..ModelOptions::default()
    };
    let rt = runtime(None).expect("ONNX Runtime (tools/get_onnxruntime.sh)");
    let model = Model::load(rt, &fixture_path("tiny_dino.onnx"), &options).unwrap();
    let mut engine = Engine::new(model);
    assert_eq!(engine.preprocessing_device(), PreprocessingDevice::Cpu);
    let reason = engine.cpu_preprocessing_reason().unwrap();
    assert!(reason.contains("cpu provider"), "{reason}");
    // Device frames are refused before any address is touched.
    let frame = DeviceFrame {
        format: PixelFormat::Nv12,
        width: 64,
        height: 64,
        planes: [DevicePlane {
            data: 0xdead_0000,
            stride: 64,
        }; 3],
        colorimetry: Colorimetry::default(),
    };
    // SAFETY: refused without reading the (invalid) planes.
    let err = unsafe { engine.embed_device_frames(&[frame]) }.unwrap_err();
    assert!(err.to_string().contains("GPU preprocessing"), "{err}");
    assert_eq!(
        PreprocessingDevice::Cuda { device_id: 1 }.to_string(),
        "cuda:1"
    );
}

#[test]
fn without_a_driver_the_gpu_path_says_why() {
    match gpu::driver_present() {
        // With a driver, the same call must succeed instead.
        Ok(()) => {
            GpuPreprocessor::new(0, SIZE).expect("libcuda is present: the GPU path starts");
        }
        Err(e) => {
            let message = GpuPreprocessor::new(0, SIZE).unwrap_err().to_string();
            assert!(message.contains("libcuda"), "{message}");
            assert!(gpu::device_count().is_err());
            println!("without a driver: {e}");
        }
    }
}

// ---------------------------------------------------------------- the engine's GPU branch, emulated

/// What the engine asked of its device stages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct StageCalls {
    resized_frames: usize,
    model_inputs: usize,
    runs: usize,
}

/// The GPU branch's device stages on host memory, the kernels run by the
/// emulator with the launches GpuStages queues on a device (the same
/// `launches` into a resized slot, the same `planar_launch`).
struct EmulatedStages {
    emu: &'static Emulator,
    resized: Vec<u8>,
    batch: Vec<f32>,
    calls: Arc<Mutex<StageCalls>>,
    /// Frames of more pixels fail as a full device does.
    max_pixels: usize,
}

impl std::fmt::Debug for EmulatedStages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatedStages").finish_non_exhaustive()
    }
}

impl EmulatedStages {
    fn new(test: &str, max_pixels: usize) -> (Self, Arc<Mutex<StageCalls>>) {
        let emu = match emulator() {
            Ok(e) => e,
            Err(why) => unavailable(test, why),
        };
        let calls = Arc::new(Mutex::new(StageCalls::default()));
        let stages = Self {
            emu,
            resized: Vec::new(),
            batch: Vec::new(),
            calls: Arc::clone(&calls),
            max_pixels,
        };
        (stages, calls)
    }
}

const PER_FRAME: usize = 3 * SIZE * SIZE;

impl DeviceStages for EmulatedStages {
    fn device_id(&self) -> usize {
        0
    }

    fn reserve(&mut self, frames: usize) -> Result<(), CudaError> {
        if self.resized.len() < frames * PER_FRAME {
            self.resized = vec![0xEE; frames * PER_FRAME];
            self.batch = vec![f32::NAN; frames * PER_FRAME];
        }
        Ok(())
    }

    unsafe fn resize(&mut self, frame: StageFrame<'_, '_>, slot: usize) -> Result<(), CudaError> {
        let StageFrame::Host(frame) = frame else {
            return Err(CudaError::Unsupported(
                "no device frames in the emulator".into(),
            ));
        };
        let (w, h) = (frame.width(), frame.height());
        if w * h > self.max_pixels {
            return Err(CudaError::out_of_device_memory("the staging buffer"));
        }
        let layout = InputLayout::of(frame);
        let mut input = vec![0u8; layout.total_len()];
        layout.fill(frame, &mut input);
        let tables = ResizeTables::new(w, h, SIZE);
        let packed = tables.packed().to_vec();
        let mut rgb = vec![0xEEu8; rgb_len(frame.format(), w, h)];
        let mut intermediate = vec![0xEEu8; tables.intermediate_len()];
        let addr = |v: &mut [u8]| {
            if v.is_empty() {
                0
            } else {
                v.as_mut_ptr() as u64
            }
        };
        let work = WorkBuffers {
            tables: if packed.is_empty() {
                0
            } else {
                packed.as_ptr() as u64
            },
            rgb: addr(&mut rgb),
            intermediate: addr(&mut intermediate),
            resized: self.resized[slot * PER_FRAME..].as_mut_ptr() as u64,
        };
        let device = layout.device_frame(frame, input.as_ptr() as u64);
        // What GpuPreprocessor::resize_into queues: no model input yet.
        for launch in launches(&device, &tables, &work, 0).iter() {
            assert!(!matches!(launch, Launch::Planar(a) if a.planar != 0));
            self.emu.launch(launch);
        }
        self.calls.lock().unwrap().resized_frames += 1;
        Ok(())
    }

    fn resized(&mut self, count: usize) -> Result<&[u8], CudaError> {
        Ok(&self.resized[..count * PER_FRAME])
    }

    fn to_model_input(&mut self, slot: usize, position: usize) -> Result<(), CudaError> {
        let resized = self.resized[slot * PER_FRAME..].as_ptr() as u64;
        let planar = self.batch[position * PER_FRAME..].as_mut_ptr() as u64;
        self.emu.launch(&planar_launch(resized, SIZE, planar));
        self.calls.lock().unwrap().model_inputs += 1;
        Ok(())
    }

    fn run(
        &mut self,
        model: &mut Model,
        count: usize,
    ) -> dreamsim::Result<Vec<dreamsim::Embedding>> {
        self.calls.lock().unwrap().runs += 1;
        let input = ndarray::ArrayView4::from_shape(
            (count, 3, SIZE, SIZE),
            &self.batch[..count * PER_FRAME],
        )
        .unwrap();
        model.embed(input)
    }
}

fn cpu_model(name: &str, max_batch: usize) -> Model {
    let rt = runtime(None).expect("ONNX Runtime (tools/get_onnxruntime.sh)");
    let options = ModelOptions {
        provider: ExecutionProvider::Cpu,
        threads: 1,
        max_batch,
        ..ModelOptions::default()
    };
    Model::load(rt, &fixture_path(name), &options).unwrap()
}

/// An engine whose GPU branch runs on the emulator, and its call counters.
fn emulated_engine(
    test: &str,
    name: &str,
    max_batch: usize,
    max_pixels: usize,
) -> (Engine, Arc<Mutex<StageCalls>>) {
    let (stages, calls) = EmulatedStages::new(test, max_pixels);
    let engine = Engine::with_device_stages(cpu_model(name, max_batch), Box::new(stages));
    assert_eq!(
        engine.preprocessing_device(),
        PreprocessingDevice::Cuda { device_id: 0 }
    );
    (engine, calls)
}

fn rgb_frame(data: &[u8], w: usize, h: usize) -> Frame<'_> {
    Frame::rgb(data, w, h, w * 3).unwrap()
}

#[test]
fn the_gpu_branch_reuses_exact_repeats_like_the_cpu_branch() {
    let test = "emulated repeats";
    let (mut gpu, calls) = emulated_engine(test, "tiny_dino.onnx", 8, usize::MAX);
    let mut cpu = Engine::new(cpu_model("tiny_dino.onnx", 8));
    let a = pattern_rgb(64, 48, 40, 0, 0);
    let b = pattern_rgb(64, 48, 41, 0, 0);
    // The same picture as BGRx: another frame, the same model input.
    let a_bgrx = frame_from_rgb(
        &a,
        64,
        48,
        PixelFormat::Bgrx,
        3,
        Colorimetry::default(),
        "a",
    );
    let (fa, fb) = (rgb_frame(&a, 64, 48), rgb_frame(&b, 64, 48));
    let first = [fa, a_bgrx.frame(), fb, fb];
    let second = [fb, fa];

    let got1 = gpu.embed_frames(&first).unwrap();
    let want1 = cpu.embed_frames(&first).unwrap();
    assert_eq!(
        got1, want1,
        "bit-identical input, same batches: same embeddings"
    );
    assert_eq!(gpu.stats().inferred_frames, 2);
    assert_eq!(
        *calls.lock().unwrap(),
        StageCalls {
            resized_frames: 4,
            model_inputs: 2,
            runs: 1
        }
    );
    assert_eq!(got1[0], got1[1]);
    assert_eq!(got1[2], got1[3]);

    // The next call starts with a repeat of the last frame of the previous.
    let got2 = gpu.embed_frames(&second).unwrap();
    let want2 = cpu.embed_frames(&second).unwrap();
    assert_eq!(got2, want2);
    assert_eq!(got2[0], got1[3]);
    assert_eq!(gpu.stats().inferred_frames, cpu.stats().inferred_frames);
    assert_eq!(gpu.stats().inferred_frames, 3);
    assert_eq!(calls.lock().unwrap().model_inputs, 3);

    // Only repeats: no model run at all.
    let runs = calls.lock().unwrap().runs;
    gpu.embed_frames(&[fa, fa]).unwrap();
    assert_eq!(calls.lock().unwrap().runs, runs);

    // Every pass order into a resized slot: a plain copy at 224 x 224, one
    // pass, two passes.
    let sizes = [(224, 224), (224, 300), (300, 224), (17, 9)];
    let images: Vec<Vec<u8>> = sizes
        .iter()
        .zip(90..)
        .map(|(&(w, h), seed)| pattern_rgb(w, h, seed, 0, 0))
        .collect();
    let frames: Vec<Frame> = images
        .iter()
        .zip(sizes)
        .map(|(d, (w, h))| rgb_frame(d, w, h))
        .collect();
    assert_eq!(
        gpu.embed_frames(&frames).unwrap(),
        cpu.embed_frames(&frames).unwrap()
    );
}

#[test]
fn reference_images_are_embedded_on_the_cpu_path() {
    let test = "emulated reference";
    let (mut gpu, calls) = emulated_engine(test, "tiny_dino.onnx", 8, usize::MAX);
    let reference = gpu
        .embed_image_file(&fixture_path("reference.png"))
        .unwrap();
    // The device stages were not used: no staging or device buffer grew
    // to the image's size.
    assert_eq!(*calls.lock().unwrap(), StageCalls::default());
    assert_eq!(gpu.stats().frames, 0);
    let mut cpu = Engine::new(cpu_model("tiny_dino.onnx", 8));
    assert_eq!(
        reference,
        cpu.embed_image_file(&fixture_path("reference.png"))
            .unwrap()
    );
    // Frames still go to the device stages.
    let a = pattern_rgb(64, 48, 40, 0, 0);
    gpu.embed_frame(&rgb_frame(&a, 64, 48)).unwrap();
    assert_eq!(calls.lock().unwrap().resized_frames, 1);
    assert_eq!(
        gpu.preprocessing_device(),
        PreprocessingDevice::Cuda { device_id: 0 }
    );
}

#[test]
fn a_failed_device_allocation_moves_preprocessing_to_the_cpu() {
    let test = "emulated allocation failure";
    // "Device memory" for frames up to 320 x 240.
    let (mut gpu, calls) = emulated_engine(test, "tiny_dino.onnx", 8, 320 * 240);
    let mut cpu = Engine::new(cpu_model("tiny_dino.onnx", 8));
    let small = pattern_rgb(64, 48, 40, 0, 0);
    let large = pattern_rgb(1280, 720, 12, 0, 0);
    let frames = [rgb_frame(&small, 64, 48), rgb_frame(&large, 1280, 720)];
    let got = gpu.embed_frames(&frames).unwrap();
    assert_eq!(got, cpu.embed_frames(&frames).unwrap());
    assert_eq!(gpu.preprocessing_device(), PreprocessingDevice::Cpu);
    let reason = gpu.cpu_preprocessing_reason().unwrap();
    assert!(
        reason.contains("GPU memory could not be allocated"),
        "{reason}"
    );
    // From now on the CPU preprocesses; nothing more reaches the stages.
    let before = *calls.lock().unwrap();
    assert_eq!(before.runs, 0);
    gpu.embed_frame(&frames[0]).unwrap();
    assert_eq!(*calls.lock().unwrap(), before);
}

#[test]
fn the_gpu_branch_splits_large_batches_and_pads_fixed_ones() {
    let test = "emulated batches";
    let images: Vec<Vec<u8>> = (0..5).map(|s| pattern_rgb(64, 48, 70 + s, 0, 0)).collect();
    let frames: Vec<Frame> = images.iter().map(|d| rgb_frame(d, 64, 48)).collect();

    let (mut gpu, calls) = emulated_engine(test, "tiny_dino.onnx", 2, usize::MAX);
    let mut cpu = Engine::new(cpu_model("tiny_dino.onnx", 2));
    assert_eq!(
        gpu.embed_frames(&frames).unwrap(),
        cpu.embed_frames(&frames).unwrap()
    );
    assert_eq!(calls.lock().unwrap().runs, 3);
    assert_eq!(gpu.stats().batches, 3);

    let (mut gpu, calls) = emulated_engine(test, "fixed_batch2.onnx", 8, usize::MAX);
    let mut cpu = Engine::new(cpu_model("fixed_batch2.onnx", 8));
    let got = gpu.embed_frames(&frames[..3]).unwrap();
    assert_eq!(got, cpu.embed_frames(&frames[..3]).unwrap());
    // 3 frames in batches of exactly 2: the last one padded.
    assert_eq!(
        *calls.lock().unwrap(),
        StageCalls {
            resized_frames: 3,
            model_inputs: 4,
            runs: 2
        }
    );
}

// ---------------------------------------------------------------- tests: on a GPU

#[test]
#[ignore = "needs an NVIDIA GPU and CUDA 13 (tools/gpu_check.sh runs it)"]
fn gpu_equals_the_cpu_for_every_format_and_size() {
    let test = "gpu synthetic frames";
    let mut gpu = gpu_preprocessor(test);
    let mut cpu = Preprocessor::new(SIZE);
    let mut count = 0;
    synthetic_frames(|f| {
        let frame = f.frame();
        assert_same(
            &gpu_process(&mut gpu, &frame),
            &cpu_reference(&mut cpu, &frame),
            &f.label,
        );
        count += 1;
    });
    fixture_frames(|f| {
        let frame = f.frame();
        assert_same(
            &gpu_process(&mut gpu, &frame),
            &cpu_reference(&mut cpu, &frame),
            &f.label,
        );
        count += 1;
    });
    println!("{test}: {count} frames byte-identical to the CPU path");
}

#[test]
#[ignore = "needs an NVIDIA GPU and CUDA 13 (tools/gpu_check.sh runs it)"]
fn gpu_equals_the_cpu_on_real_frames() {
    let test = "gpu real frames";
    let mut gpu = gpu_preprocessor(test);
    let mut cpu = Preprocessor::new(SIZE);
    match real_frames(|f| {
        let frame = f.frame();
        assert_same(
            &gpu_process(&mut gpu, &frame),
            &cpu_reference(&mut cpu, &frame),
            &f.label,
        );
    }) {
        Ok(n) => println!("{test}: {n} bikes.mp4 frames byte-identical to the CPU path"),
        Err(why) => unavailable(test, why),
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU and CUDA 13 (tools/gpu_check.sh runs it)"]
fn gpu_results_survive_size_changes_and_queued_frames() {
    let test = "gpu size changes";
    let mut gpu = gpu_preprocessor(test);
    let mut cpu = Preprocessor::new(SIZE);
    // Sizes that grow and shrink every buffer and switch the pass order,
    // with several frames queued before a single download.
    let sizes = [(1920, 1080), (17, 9), (720, 1280), (1920, 1080), (224, 224)];
    let frames: Vec<OwnedFrame> = sizes
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| {
            let format = [PixelFormat::Nv12, PixelFormat::Rgba, PixelFormat::Bgr][i % 3];
            frame_from_rgb(
                &noise(w * h * 3, i as u64 + 100),
                w,
                h,
                format,
                i,
                COLORIMETRIES[i % 4],
                "sizes",
            )
        })
        .collect();
    for f in &frames {
        gpu.process(&f.frame()).unwrap();
    }
    // Only the last frame's output is kept; it must be the last frame's.
    let last = frames.last().unwrap().frame();
    let mut planar = Vec::new();
    gpu.download_output(&mut planar).unwrap();
    let mut resized = Vec::new();
    gpu.download_resized(&mut resized).unwrap();
    assert_same(&(resized, planar), &cpu_reference(&mut cpu, &last), test);
    for f in &frames {
        let frame = f.frame();
        assert_same(
            &gpu_process(&mut gpu, &frame),
            &cpu_reference(&mut cpu, &frame),
            &f.label,
        );
    }
}

/// Loads `name` on `provider`; `None` (with a printed reason) when the
/// provider cannot start here.
fn load_on(name: &str, provider: ExecutionProvider, test: &str) -> Option<Model> {
    let rt = match runtime(None) {
        Ok(rt) => rt,
        Err(e) => unavailable(test, e),
    };
    let options = ModelOptions {
        provider,
        threads: 1,
        max_batch: 4,
        ..ModelOptions::default()
    };
    match Model::load(rt, &fixture_path(name), &options) {
        Ok(m) => Some(m),
        Err(e) => {
            println!("{test}: {provider} cannot start: {e}");
            None
        }
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU and onnxruntime-gpu (CUDA or TensorRT provider)"]
fn gpu_providers_read_the_gpu_preprocessed_batch_in_place() {
    let test = "gpu end to end";
    // Fails with the reason when there is no usable device.
    gpu_preprocessor(test);
    let frames: Vec<OwnedFrame> = [
        (1920, 1080, PixelFormat::Nv12),
        (640, 272, PixelFormat::Rgba),
    ]
    .iter()
    .enumerate()
    .map(|(i, &(w, h, f))| {
        frame_from_rgb(
            &pattern_rgb(w, h, i as u64 + 3, 0, 0),
            w,
            h,
            f,
            0,
            COLORIMETRIES[1],
            "e2e",
        )
    })
    .collect();
    let borrowed: Vec<Frame> = frames.iter().map(OwnedFrame::frame).collect();
    let mut cpu = Engine::new(load_on("tiny_ensemble.onnx", ExecutionProvider::Cpu, test).unwrap());
    let want = cpu.embed_frames(&borrowed).unwrap();
    let mut ran = 0;
    for provider in [ExecutionProvider::Cuda, ExecutionProvider::TensorRt] {
        let Some(model) = load_on("tiny_ensemble.onnx", provider, test) else {
            continue;
        };
        let mut engine = Engine::new(model);
        assert_eq!(
            engine.preprocessing_device(),
            PreprocessingDevice::Cuda { device_id: 0 },
            "{provider}: {:?}",
            engine.cpu_preprocessing_reason()
        );
        // A batch, then single frames: the device batch buffer grows and is reused.
        let got = engine.embed_frames(&borrowed).unwrap();
        let single = engine.embed_frame(&borrowed[1]).unwrap();
        for (g, w) in got
            .iter()
            .chain([&single])
            .zip(want.iter().chain([&want[1]]))
        {
            let d = g.distance(w).unwrap().abs();
            // GPU arithmetic (TensorRT's default TF32, other kernels and
            // reduction orders; TF32 is off on the CUDA provider) moves the
            // embedding a little; the input is bit-identical.
            assert!(d < 1e-3, "{provider}: distance to the CPU embedding {d}");
        }
        println!("{test}: {provider} with GPU preprocessing agrees with the CPU provider");
        ran += 1;
    }
    if ran == 0 {
        unavailable(
            test,
            "neither the CUDA nor the TensorRT provider starts (needs onnxruntime-gpu)",
        );
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU, onnxruntime-gpu and TensorRT 10 (tools/gpu_check.sh runs it)"]
fn tensorrt_builds_into_a_nested_cache_folder_per_profile_and_says_what_runs() {
    let test = "tensorrt cache";
    let rt = match runtime(None) {
        Ok(rt) => rt,
        Err(e) => unavailable(test, e),
    };
    let root = scratch_dir()
        .join(format!("trt-cache-{}", std::process::id()))
        .join("nested")
        .join("missing");
    let _ = std::fs::remove_dir_all(root.parent().unwrap().parent().unwrap());
    let images: Vec<Vec<u8>> = (0..5).map(|s| pattern_rgb(64, 48, 80 + s, 0, 0)).collect();
    let frames: Vec<Frame> = images.iter().map(|d| rgb_frame(d, 64, 48)).collect();
    let want = Engine::new(cpu_model("tiny_ensemble.onnx", 8))
        .embed_frames(&frames)
        .unwrap();
    let mut folders = Vec::new();
    for max_batch in [2, 4] {
        let options = ModelOptions {
            provider: ExecutionProvider::TensorRt,
            threads: 1,
            max_batch,
            engine_cache: Some(root.clone()),
            ..ModelOptions::default()
        };
        let model = match Model::load(rt, &fixture_path("tiny_ensemble.onnx"), &options) {
            Ok(m) => m,
            Err(e) => {
                println!("SKIPPED {test}: tensorrt cannot start here: {e}");
                return;
            }
        };
        assert_eq!(model.compute_precision(), dreamsim::ComputePrecision::Tf32);
        let folder = model.session_plan().engine_cache.clone().unwrap();
        let files = std::fs::read_dir(&folder).map(|d| d.count()).unwrap_or(0);
        assert!(files > 0, "{}: no engine written", folder.display());
        println!(
            "{test}: batch-size {max_batch}: {files} files in {}; nodes: {}",
            folder.display(),
            model
                .node_placement()
                .map_or("not reported".into(), |p| p.to_string())
        );
        let mut engine = Engine::new(model);
        let got = engine.embed_frames(&frames).unwrap();
        assert_eq!(engine.stats().batches, 5u64.div_ceil(max_batch as u64));
        for (g, w) in got.iter().zip(&want) {
            let d = g.distance(w).unwrap().abs();
            assert!(d < 1e-3, "TensorRT (tf32) vs CPU: {d}");
        }
        folders.push(folder);
    }
    assert_ne!(folders[0], folders[1], "one folder per profile");
}
