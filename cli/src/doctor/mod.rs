//! `gst-dreamsim doctor`: what will run on this machine and why, and what
//! to install for the rest.
//!
//! One module per part of the report: the plugin as GStreamer sees it, the
//! ONNX Runtime library and its providers, the GPU stack, the processor,
//! the installed models. The verdict comes from the element itself: the
//! default pipeline is run (the engine decides what `auto` picks, this
//! module never guesses), and `--bench` runs it on each provider that starts.

mod cpu;
mod gpu;
mod models;
mod pipeline;
mod plugin;
mod runtime;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::output::Output;
use crate::Error;

/// Exit status: the default pipeline runs.
pub const EXIT_OK: u8 = 0;
/// Exit status: no ONNX Runtime library loads.
pub const EXIT_NO_RUNTIME: u8 = 3;
/// Exit status: the default model is not installed.
pub const EXIT_NO_MODEL: u8 = 4;
/// Exit status: the default pipeline fails for another reason.
pub const EXIT_PIPELINE_FAILS: u8 = 5;

/// The 1 KB model the providers are started on (tests/fixtures/good_small.onnx).
const PROBE_MODEL: &[u8] = include_bytes!("../../../tests/fixtures/good_small.onnx");
/// The tiny ensemble-shaped model `--bench` times when no model is installed.
const BENCH_FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/tiny_ensemble.onnx");

/// Says what runs here and why: plugin, ONNX Runtime, providers, GPU, CPU, models
///
/// Reports the dreamsim plugin as GStreamer's registry sees it (found,
/// blacklisted and why, version), the ONNX Runtime library the element
/// finds (path, version, build) and which execution providers start here,
/// the NVIDIA driver, GPUs and libraries (or the command that installs the
/// missing ones), the processor features that decide the CPU path, the
/// installed models, and then what execution-provider=auto picks, by
/// running the default pipeline on test frames.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    gst-dreamsim doctor\n  \
    gst-dreamsim doctor --bench\n  \
    gst-dreamsim doctor --json > doctor.json\n\n\
    Exit status: 0 the default pipeline runs; 3 no ONNX Runtime library loads\n\
    (tools/get_onnxruntime.sh); 4 the default model is not installed\n\
    (tools/get_model.sh); 5 the default pipeline fails for another reason\n\
    (the report says why); 1 the doctor itself failed; 2 usage error.")]
pub struct Args {
    /// Write the report as JSON (for bug reports)
    #[arg(long)]
    pub json: bool,

    /// Also measure frames/s of the installed model (or, without one, a tiny
    /// built-in model) on each provider that starts
    #[arg(long)]
    pub bench: bool,

    /// Seconds each --bench run measures, after its model has loaded
    #[arg(long, value_name = "S", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=60))]
    pub bench_seconds: u32,

    /// Write the report to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Everything the doctor found.
#[derive(Debug, Serialize)]
struct Report {
    tool_version: String,
    plugin: plugin::PluginReport,
    onnxruntime: runtime::RuntimeReport,
    providers: Vec<runtime::ProviderCheck>,
    gpu: gpu::GpuReport,
    cpu: cpu::CpuReport,
    models: models::ModelsReport,
    /// What the element does with its default settings.
    default_pipeline: Verdict,
    /// `--bench`: frames/s per provider.
    bench: Vec<BenchRun>,
    exit_status: u8,
}

/// The default pipeline's outcome.
#[derive(Debug, Serialize)]
struct Verdict {
    /// The default pipeline runs.
    runs: bool,
    /// The model it was decided on (the installed default model, or the
    /// built-in probe model when none is installed).
    model: Option<PathBuf>,
    /// A note on how it was decided.
    note: Option<String>,
    run: pipeline::PipelineRun,
    /// What to do, when it does not run.
    fix: Option<String>,
}

#[derive(Debug, Serialize)]
struct BenchRun {
    provider: &'static str,
    model: PathBuf,
    note: Option<String>,
    run: pipeline::PipelineRun,
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let scratch = tempfile::tempdir().map_err(|source| Error::File {
        path: std::env::temp_dir(),
        source,
    })?;
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, Error> {
        let path = scratch.path().join(name);
        std::fs::write(&path, bytes).map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    let probe_model = write("probe.onnx", PROBE_MODEL)?;

    let plugin = plugin::inspect();
    let (onnxruntime, rt) = runtime::inspect();
    let providers = match rt {
        Some(rt) => runtime::probe_providers(rt, &probe_model),
        None => Vec::new(),
    };
    let gpu = gpu::inspect(onnxruntime.library.as_deref());
    let cpu = cpu::inspect();
    let models = models::inspect();

    let default_pipeline = if rt.is_none() {
        Verdict {
            runs: false,
            model: models.default_model.clone(),
            note: None,
            run: pipeline::PipelineRun::default(),
            fix: Some(format!(
                "install ONNX Runtime: {} (or set ORT_DYLIB_PATH to a libonnxruntime.so)",
                runtime::INSTALL_RUNTIME
            )),
        }
    } else if models.default_installed {
        let run = pipeline::run(None, None, 2, None);
        Verdict {
            runs: run.error.is_none(),
            model: models.default_model.clone(),
            note: None,
            fix: run
                .error
                .as_ref()
                .map(|_| "see the error above; execution-provider=cpu runs everywhere".into()),
            run,
        }
    } else {
        // What auto would pick, decided on the probe model.
        let run = pipeline::run(Some(&probe_model), None, 2, None);
        Verdict {
            runs: false,
            model: None,
            note: Some(
                "no model is installed: the provider was decided on a tiny built-in model".into(),
            ),
            run,
            fix: Some(format!(
                "install the model: tools/get_model.sh (it writes {})",
                models
                    .default_model
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "ensemble.onnx in the model folder".into())
            )),
        }
    };

    let mut bench = Vec::new();
    if args.bench && rt.is_some() {
        let (model, note) = match models
            .default_model
            .clone()
            .filter(|_| models.default_installed)
        {
            Some(m) => (m, None),
            None => (
                write("tiny_ensemble.onnx", BENCH_FIXTURE)?,
                Some(
                    "no model is installed: a tiny ensemble-shaped test model, far faster than \
                     the real one; the figure shows the provider works, not the speed to expect"
                        .to_owned(),
                ),
            ),
        };
        for check in providers.iter().filter(|c| c.starts) {
            let run = pipeline::run(
                Some(&model),
                Some(check.provider),
                100_000,
                Some(f64::from(args.bench_seconds)),
            );
            bench.push(BenchRun {
                provider: check.provider,
                model: model.clone(),
                note: note.clone(),
                run,
            });
        }
    }

    let exit_status = if rt.is_none() {
        EXIT_NO_RUNTIME
    } else if !models.default_installed {
        EXIT_NO_MODEL
    } else if !default_pipeline.runs {
        EXIT_PIPELINE_FAILS
    } else {
        EXIT_OK
    };
    let report = Report {
        tool_version: dreamsim::BUILD_VERSION.to_owned(),
        plugin,
        onnxruntime,
        providers,
        gpu,
        cpu,
        models,
        default_pipeline,
        bench,
        exit_status,
    };
    let mut out = Output::create(args.output.as_deref())?;
    if args.json {
        out.write_json(&report)?;
    } else {
        out.write(|w| write_text(w, &report))?;
    }
    out.finish()?;
    Ok(ExitCode::from(exit_status))
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn write_text(w: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    writeln!(w, "gst-dreamsim {}", r.tool_version)?;

    writeln!(w, "\nGStreamer plugin")?;
    let p = &r.plugin;
    writeln!(w, "  registry: {}", p.registry.display())?;
    if let Some(path) = &p.plugin_path {
        writeln!(w, "  GST_PLUGIN_PATH: {path}")?;
    }
    if let Some(path) = &p.system_path {
        writeln!(w, "  GST_PLUGIN_SYSTEM_PATH: {path}")?;
    }
    if p.files.is_empty() {
        writeln!(
            w,
            "  libgstdreamsim.so: not found by GStreamer (gst-launch-1.0 cannot use dreamsim; \
             this tool runs its own built-in copy). Install: cargo build --release -p \
             gst-plugin-dreamsim && export GST_PLUGIN_PATH=$PWD/target/release (README, Install)"
        )?;
    }
    for f in &p.files {
        if f.blacklisted {
            writeln!(
                w,
                "  {}: BLACKLISTED: {}",
                f.path.display(),
                f.reason.as_deref().unwrap_or("")
            )?;
        } else {
            writeln!(
                w,
                "  {}: version {}{}, elements: {}",
                f.path.display(),
                f.version.as_deref().unwrap_or("?"),
                f.release
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default(),
                f.elements.join(", ")
            )?;
        }
    }
    writeln!(
        w,
        "  built into this tool: version {}, commit {}",
        p.builtin_version, p.builtin_commit
    )?;

    writeln!(w, "\nONNX Runtime")?;
    let o = &r.onnxruntime;
    match &o.library {
        Some(lib) => {
            writeln!(w, "  library: {}", lib.display())?;
            writeln!(
                w,
                "  version: {}, build: {}",
                o.version.as_deref().unwrap_or("?"),
                o.build.unwrap_or("?")
            )?;
            writeln!(
                w,
                "  compiled-in providers: {}",
                o.compiled_providers.join(", ")
            )?;
            if !o.preloaded.is_empty() {
                writeln!(
                    w,
                    "  NVIDIA libraries preloaded: {}",
                    o.preloaded.join(", ")
                )?;
            }
            for failure in &o.preload_failures {
                writeln!(w, "  NVIDIA library not preloaded: {failure}")?;
            }
        }
        None => {
            writeln!(w, "  MISSING: {}", o.error.as_deref().unwrap_or(""))?;
            writeln!(
                w,
                "  install: {}",
                o.install.unwrap_or(runtime::INSTALL_RUNTIME)
            )?;
        }
    }

    writeln!(
        w,
        "\nExecution providers (started on a tiny model, failure an error)"
    )?;
    if r.providers.is_empty() {
        writeln!(w, "  none tried: no ONNX Runtime")?;
    }
    for c in &r.providers {
        if c.starts {
            writeln!(w, "  {:<9} starts", c.provider)?;
        } else {
            writeln!(
                w,
                "  {:<9} does not start: {}",
                c.provider,
                c.reason.as_deref().unwrap_or("")
            )?;
            if let Some(install) = &c.install {
                writeln!(w, "  {:<9} to make it start: {install}", "")?;
            }
        }
    }

    writeln!(w, "\nGPU")?;
    let d = &r.gpu.driver;
    match (&d.library, &d.error) {
        (None, Some(e)) => {
            writeln!(w, "  driver: MISSING: {e}")?;
            if let Some(install) = &d.install {
                writeln!(w, "  install: {install}")?;
            }
        }
        _ => {
            writeln!(
                w,
                "  driver: {} (CUDA {})",
                d.library
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                d.cuda_version.as_deref().unwrap_or("?")
            )?;
            if let Some(e) = &d.error {
                writeln!(w, "  driver problem: {e}")?;
            }
        }
    }
    for dev in &d.devices {
        writeln!(
            w,
            "  device {}: {}, {} MiB, compute capability {}",
            dev.device_id, dev.name, dev.memory_mib, dev.compute_capability
        )?;
    }
    if let Some(folder) = &r.gpu.data_folder {
        writeln!(w, "  libraries installed in: {}", folder.display())?;
    }
    for l in &r.gpu.libraries {
        if l.found {
            writeln!(
                w,
                "  {:<24} {} {} ({})",
                l.soname,
                l.what,
                l.version.as_deref().unwrap_or(""),
                l.path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "found".into())
            )?;
        } else {
            writeln!(
                w,
                "  {:<24} {} MISSING ({} provider); install: {}",
                l.soname,
                l.what,
                l.needed_by,
                l.install.as_deref().unwrap_or("")
            )?;
        }
    }

    writeln!(w, "\nCPU")?;
    let c = &r.cpu;
    writeln!(
        w,
        "  {} ({} logical CPUs)",
        c.model.as_deref().unwrap_or("unknown processor"),
        c.logical_cpus
    )?;
    writeln!(
        w,
        "  AMX-BF16: {}, AVX512-BF16: {}, VNNI: {}, AVX2: {}",
        yes_no(c.amx_bf16),
        yes_no(c.avx512_bf16),
        yes_no(c.vnni),
        yes_no(c.avx2)
    )?;
    writeln!(w, "  {}", c.verdict())?;

    writeln!(w, "\nModels")?;
    let m = &r.models;
    if let Some(folder) = &m.folder {
        writeln!(w, "  folder: {}", folder.display())?;
    }
    if !m.default_installed {
        writeln!(
            w,
            "  default model {}: MISSING; install: tools/get_model.sh",
            m.default_model
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )?;
    }
    for model in &m.models {
        writeln!(
            w,
            "  {}: type {}, {}, {:.1} MB, sha256 {}",
            model.path.display(),
            model.kind.as_deref().unwrap_or("?"),
            model.precision.as_deref().unwrap_or("fp32"),
            model.size_bytes as f64 / 1e6,
            model.sha256.as_deref().unwrap_or("?")
        )?;
        if let Some(int8) = &model.int8 {
            match &int8.unusable {
                None => writeln!(
                    w,
                    "    int8 beside it: {}, agreement with fp32 (Spearman) {}{}",
                    int8.path.display(),
                    int8.spearman
                        .map(|s| format!("{s:.4}"))
                        .unwrap_or_else(|| "not recorded".into()),
                    if int8.accepted_below_guard {
                        ", accepted below the 0.999 guard"
                    } else {
                        ""
                    }
                )?,
                Some(why) => writeln!(w, "    int8 beside it, not used: {why}")?,
            }
        }
    }

    writeln!(w, "\nEngine cache")?;
    writeln!(
        w,
        "  none by default (engine-cache-location unset: TensorRT builds its engine and \
         OpenVINO compiles the model at every start); set engine-cache-location=DIR \
         (--engine-cache DIR) to keep them"
    )?;

    writeln!(w, "\nDefault pipeline (execution-provider=auto)")?;
    let v = &r.default_pipeline;
    if let Some(note) = &v.note {
        writeln!(w, "  note: {note}")?;
    }
    if let Some(provider) = &v.run.provider {
        writeln!(
            w,
            "  auto picks: {provider} ({})",
            v.run.precision.as_deref().unwrap_or("?")
        )?;
    }
    for warning in &v.run.warnings {
        writeln!(w, "  warning: {warning}")?;
    }
    if let Some(e) = &v.run.error {
        writeln!(w, "  error: {e}")?;
    }
    writeln!(
        w,
        "  runs: {}{}",
        yes_no(v.runs),
        v.fix
            .as_deref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default()
    )?;

    if !r.bench.is_empty() {
        writeln!(w, "\nBench (640x360 test frames, model load left out)")?;
        if let Some(note) = r.bench.first().and_then(|b| b.note.as_deref()) {
            writeln!(w, "  note: {note}")?;
        }
        for b in &r.bench {
            match (&b.run.error, b.run.frames_per_second) {
                (Some(e), _) => writeln!(w, "  {:<9} failed: {e}", b.provider)?,
                (None, Some(fps)) => writeln!(
                    w,
                    "  {:<9} {fps:.2} frames/s ({}, {} frames)",
                    b.provider,
                    b.run.precision.as_deref().unwrap_or("?"),
                    b.run.frames
                )?,
                (None, None) => writeln!(w, "  {:<9} too few frames to time", b.provider)?,
            }
        }
    }
    writeln!(w, "\nexit status {}", r.exit_status)
}
