//! Upload + preprocessing throughput, GPU against CPU, on the same machine.
//!
//! ```sh
//! cargo run --release --features cuda --example gpu_preprocess_bench -- [--seconds 2] [--size 224]
//! ```
//!
//! For NV12 and RGBA frames at 1920x1080 and 3840x2160 it prints frames per
//! second of:
//! - `gpu`: frame in system memory -> pinned staging -> device -> kernels ->
//!   planar f32 model input on the device, one frame at a time, waiting for
//!   each (the latency-bound case, as in the element);
//! - `gpu queued`: the same with 8 frames queued before waiting (throughput);
//! - `cpu`: the CPU path (`Preprocessor::process`) into host memory;
//!
//! and the largest |GPU - CPU| difference of the model input over every
//! frame (0 is expected: the paths are bit-identical). Frames are random
//! noise, several per case, rotated so no run reads a cached frame.

use std::time::{Duration, Instant};

use dreamsim::cuda::GpuPreprocessor;
use dreamsim::{Colorimetry, Frame, PixelFormat, Plane, Preprocessor, YuvMatrix, YuvRange};

struct Args {
    seconds: f64,
    size: usize,
    device: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        seconds: 2.0,
        size: 224,
        device: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--seconds" => args.seconds = value().parse().expect("--seconds takes a number"),
            "--size" => args.size = value().parse().expect("--size takes an integer"),
            "--device" => args.device = value().parse().expect("--device takes an integer"),
            "-h" | "--help" => {
                println!("gpu_preprocess_bench [--seconds S] [--size N] [--device D]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// A frame's planes (data, stride), owned.
struct Owned {
    format: PixelFormat,
    width: usize,
    height: usize,
    planes: Vec<(Vec<u8>, usize)>,
}

impl Owned {
    fn new(format: PixelFormat, width: usize, height: usize, seed: u64) -> Self {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut noise = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 24) as u8
                })
                .collect()
        };
        let planes = match format {
            PixelFormat::Nv12 => vec![
                (noise(width * height), width),
                (noise(width * height / 2), width),
            ],
            PixelFormat::Rgba => vec![(noise(width * height * 4), width * 4)],
            other => unreachable!("{other:?}"),
        };
        Self {
            format,
            width,
            height,
            planes,
        }
    }

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
            Colorimetry {
                matrix: YuvMatrix::Bt709,
                range: YuvRange::Limited,
            },
        )
        .expect("a valid frame")
    }
}

/// Runs `step(i)` for about `seconds` (after a warm-up) and returns frames/s.
fn rate(seconds: f64, mut step: impl FnMut(usize) -> usize) -> f64 {
    for i in 0..3 {
        step(i);
    }
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let (mut frames, mut i) = (0, 0);
    while start.elapsed() < budget || frames < 3 {
        frames += step(i);
        i += 1;
    }
    frames as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args = parse_args();
    let mut gpu = match GpuPreprocessor::new(args.device, args.size) {
        Ok(g) => g,
        Err(e) => {
            println!("SKIPPED gpu_preprocess_bench: no usable CUDA device: {e}");
            return;
        }
    };
    let mut cpu = Preprocessor::new(args.size);
    let len = 3 * args.size * args.size;
    let batch = 8;
    let device_batch = gpu.alloc_f32(batch * len).expect("device batch buffer");
    let base = {
        use cudarc::driver::DevicePtr;
        device_batch.device_ptr(gpu.stream()).0
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "device: CUDA {} ({}), kernels {:?}; host: {cpus} CPU threads available, CPU path single-threaded",
        args.device,
        gpu.device_name(),
        gpu.kernel_target()
    );
    println!(
        "{:<6} {:>10} {:>12} {:>16} {:>12} {:>10} {:>16}",
        "format", "size", "gpu fps", "gpu queued fps", "cpu fps", "gpu/cpu", "max |gpu-cpu|"
    );
    for format in [PixelFormat::Nv12, PixelFormat::Rgba] {
        for (w, h) in [(1920, 1080), (3840, 2160)] {
            let frames: Vec<Owned> = (0..4).map(|i| Owned::new(format, w, h, i + 1)).collect();

            // Equality first: every frame, GPU against CPU.
            let mut max_diff = 0f32;
            let mut want = vec![0f32; len];
            let mut got = Vec::new();
            for f in &frames {
                let frame = f.frame();
                cpu.process(&frame, &mut want).expect("cpu preprocessing");
                gpu.process(&frame).expect("gpu preprocessing");
                gpu.download_output(&mut got).expect("download");
                for (a, b) in got.iter().zip(&want) {
                    max_diff = max_diff.max((a - b).abs());
                }
            }

            let gpu_fps = rate(args.seconds, |i| {
                let frame = frames[i % frames.len()].frame();
                // SAFETY: slot 0 of the device batch holds `len` floats.
                unsafe { gpu.process_to(&frame, base) }.expect("gpu preprocessing");
                gpu.synchronize().expect("gpu sync");
                1
            });
            let queued_fps = rate(args.seconds, |i| {
                for k in 0..batch {
                    let frame = frames[(i + k) % frames.len()].frame();
                    let slot = base + (k * len * 4) as u64;
                    // SAFETY: slot k of the device batch holds `len` floats.
                    unsafe { gpu.process_to(&frame, slot) }.expect("gpu preprocessing");
                }
                gpu.synchronize().expect("gpu sync");
                batch
            });
            let cpu_fps = rate(args.seconds, |i| {
                let frame = frames[i % frames.len()].frame();
                cpu.process(&frame, &mut want).expect("cpu preprocessing");
                1
            });
            let row = format!(
                "{:<6} {:>10} {:>12.1} {:>16.1} {:>12.1} {:>9.1}x {:>16e}",
                format!("{format:?}").to_uppercase(),
                format!("{w}x{h}"),
                gpu_fps,
                queued_fps,
                cpu_fps,
                gpu_fps / cpu_fps,
                max_diff
            );
            println!("{row}");
        }
    }
    drop(device_batch);
    println!(
        "upload+preprocess, frames/s (higher is better); model input {}x{}",
        args.size, args.size
    );
}
