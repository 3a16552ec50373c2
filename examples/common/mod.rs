//! What the examples share: command-line and exit-status conventions, the
//! decoding pipeline, the bus loop and the progress line. Each example
//! includes it with `mod common;` and uses a part of it.

#![allow(dead_code)] // Each example uses a part of this module.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use gst::prelude::*;

/// An example's `main`: the usage on standard output for `-h`/`--help`
/// (exit status 0), after the error on standard error for bad usage (2);
/// `PROGRAM: error: ...` on standard error when `run` fails (1).
pub fn main<O>(
    program: &str,
    usage: &str,
    options: Result<O, String>,
    run: impl FnOnce(&O) -> Result<ExitCode, String>,
) -> ExitCode {
    let options = match options {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{program}: {e}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    run(&options).unwrap_or_else(|e| {
        eprintln!("{program}: error: {e}");
        ExitCode::FAILURE
    })
}

/// Reads the command line: `-h`/`--help` gives `Err("")` (show the usage),
/// `option` takes the options it knows (returning `false` for others),
/// `operand` the arguments that are not options.
pub fn parse(
    mut args: impl Iterator<Item = String>,
    mut option: impl FnMut(&Arg, &mut dyn Iterator<Item = String>) -> Result<bool, String>,
    mut operand: impl FnMut(String) -> Result<(), String>,
) -> Result<(), String> {
    while let Some(arg) = args.next() {
        let a = Arg::new(arg);
        match a.name.as_str() {
            "-h" | "--help" => return Err(String::new()),
            _ if option(&a, &mut args)? => {}
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            _ => operand(a.name)?,
        }
    }
    Ok(())
}

/// An `operand` for `parse` that takes one argument into `input`.
pub fn one_operand(input: &mut Option<String>) -> impl FnMut(String) -> Result<(), String> + '_ {
    |arg| match input {
        None => {
            *input = Some(arg);
            Ok(())
        }
        Some(_) => Err(format!("unexpected argument {arg}")),
    }
}

/// One command-line argument: `--name value`, `--name=value`, a flag or an
/// operand.
pub struct Arg {
    /// The option name (`--name` of `--name=value`) or the whole argument.
    pub name: String,
    inline: Option<String>,
}

impl Arg {
    pub fn new(arg: String) -> Self {
        match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => Self {
                name: n.to_owned(),
                inline: Some(v.to_owned()),
            },
            _ => Self {
                name: arg,
                inline: None,
            },
        }
    }

    /// The option's value: after `=`, or the next argument.
    pub fn value(
        &self,
        args: &mut dyn Iterator<Item = String>,
        what: &str,
    ) -> Result<String, String> {
        self.inline
            .clone()
            .or_else(|| args.next())
            .ok_or_else(|| format!("{} needs {what}", self.name))
    }

    pub fn number<T: FromStr>(
        &self,
        args: &mut dyn Iterator<Item = String>,
        what: &str,
    ) -> Result<T, String> {
        let v = self.value(args, what)?;
        v.parse()
            .map_err(|_| format!("{}: `{v}` is not a valid number", self.name))
    }

    /// `--provider`'s value, checked by the engine's own parser.
    pub fn provider(&self, args: &mut dyn Iterator<Item = String>) -> Result<String, String> {
        let p = self.value(args, "a name")?;
        p.parse::<dreamsim::ExecutionProvider>()
            .map(|provider| provider.as_str().to_owned())
            .map_err(|e| format!("{}: {e}", self.name))
    }
}

/// GStreamer, with the DreamSim elements registered.
pub fn init() -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstdreamsim::plugin_register_static().map_err(|e| e.to_string())
}

/// A file path or a URI, as a URI.
pub fn to_uri(input: &str) -> Result<String, String> {
    if input.contains("://") {
        return Ok(input.to_owned());
    }
    let path = Path::new(input);
    if !path.exists() {
        return Err(format!("{input}: no such file"));
    }
    let absolute = std::fs::canonicalize(path).map_err(|e| format!("{input}: {e}"))?;
    gst::glib::filename_to_uri(&absolute, None)
        .map(|u| u.to_string())
        .map_err(|e| format!("{input}: {e}"))
}

pub fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        format!("GStreamer element {factory} is missing (is the plugin that has it installed?)")
    })
}

/// `fakesink sync=false`: frames as fast as they come.
pub fn fakesink() -> Result<gst::Element, String> {
    gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()
        .map_err(|_| "GStreamer element fakesink is missing".to_string())
}

/// `dreamsim`, with the model and execution provider when given.
pub fn dreamsim(model: Option<&str>, provider: Option<&str>) -> Result<gst::Element, String> {
    let dreamsim = make("dreamsim")?;
    if let Some(m) = model {
        dreamsim.set_property("model-location", m);
    }
    if let Some(p) = provider {
        dreamsim.set_property_from_str("execution-provider", p);
    }
    Ok(dreamsim)
}

/// `uridecodebin uri=URI ! videoconvert ! CHAIN...`, the chain linked in
/// order.
pub fn decoding_pipeline(
    program: &str,
    uri: &str,
    chain: &[gst::Element],
) -> Result<gst::Pipeline, String> {
    let pipeline = gst::Pipeline::new();
    let convert = make("videoconvert")?;
    let elements: Vec<&gst::Element> = std::iter::once(&convert).chain(chain).collect();
    pipeline
        .add_many(elements.iter().copied())
        .map_err(|e| e.to_string())?;
    gst::Element::link_many(elements.iter().copied()).map_err(|e| e.to_string())?;
    add_decoder(program, &pipeline, uri, &convert)?;
    Ok(pipeline)
}

/// `uridecodebin` for `uri`, its first video stream linked to `video_sink`,
/// the other streams to fakesinks.
pub fn add_decoder(
    program: &str,
    pipeline: &gst::Pipeline,
    uri: &str,
    video_sink: &gst::Element,
) -> Result<(), String> {
    let decoder = gst::ElementFactory::make("uridecodebin")
        .property("uri", uri)
        .build()
        .map_err(|_| "GStreamer element uridecodebin is missing".to_string())?;
    pipeline.add(&decoder).map_err(|e| e.to_string())?;
    // Without a video stream nothing would ever reach EOS: say so instead.
    let video_pad = video_sink.static_pad("sink").expect("sink pad");
    decoder.connect_no_more_pads(move |decoder| {
        if !video_pad.is_linked() {
            let _ = decoder.post_message(
                gst::message::Error::builder(
                    gst::StreamError::WrongType,
                    "The input has no video stream",
                )
                .src(decoder)
                .build(),
            );
        }
    });
    let program = program.to_owned();
    let pipeline = pipeline.downgrade();
    let video_sink = video_sink.downgrade();
    decoder.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(video_sink)) = (pipeline.upgrade(), video_sink.upgrade()) else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let is_video = caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with("video/"));
        let sink_pad = video_sink.static_pad("sink").expect("sink pad");
        if is_video && !sink_pad.is_linked() {
            if let Err(e) = pad.link(&sink_pad) {
                eprintln!("{program}: cannot link the video stream: {e:?}");
            }
            return;
        }
        // Audio and further video streams: consumed, not used.
        let Ok(sink) = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
        else {
            return;
        };
        if pipeline.add(&sink).is_ok() {
            let _ = sink.sync_state_with_parent();
            let _ = pad.link(&sink.static_pad("sink").expect("sink pad"));
        }
    });
    Ok(())
}

/// Sets `pipeline` playing and reads its bus until EOS, an error or
/// `handle` breaks. `handle` sees every message first, and `None` when
/// none came for 200 ms (time to show progress, when `progress` is on); an
/// error it returns ends the loop. Warnings go to standard error. The
/// pipeline is left playing.
pub fn run_bus(
    program: &str,
    pipeline: &gst::Pipeline,
    progress: bool,
    mut handle: impl FnMut(Option<&gst::Message>, &mut Progress) -> Result<ControlFlow<()>, String>,
) -> Result<(), String> {
    let bus = pipeline.bus().expect("pipeline bus");
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "the pipeline does not start".to_string())?;
    let mut progress = Progress::new(program, progress);
    let result = loop {
        let msg = bus.timed_pop(gst::ClockTime::from_mseconds(200));
        match handle(msg.as_ref(), &mut progress) {
            Ok(ControlFlow::Continue(())) => {}
            Ok(ControlFlow::Break(())) => break Ok(()),
            Err(e) => break Err(e),
        }
        let Some(msg) = msg else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!(
                    "{}{}",
                    e.error(),
                    e.debug().map(|d| format!(" ({d})")).unwrap_or_default()
                ))
            }
            gst::MessageView::Warning(w) => {
                progress.done();
                eprintln!("{program}: warning: {}", w.error());
            }
            _ => {}
        }
    };
    progress.done();
    result
}

/// Progress on standard error: a line redrawn in place on a terminal, a
/// line every ten seconds otherwise.
pub struct Progress {
    program: String,
    started: Instant,
    shown: Instant,
    interactive: bool,
    enabled: bool,
}

impl Progress {
    pub fn new(program: &str, enabled: bool) -> Self {
        let now = Instant::now();
        Self {
            program: program.to_owned(),
            started: now,
            shown: now,
            interactive: std::io::stderr().is_terminal(),
            enabled,
        }
    }

    /// `PROGRAM: POSITION / DURATION (PERCENT), WHAT`, when a line is due;
    /// `what` gets the seconds since the start.
    pub fn show(&mut self, pipeline: &gst::Pipeline, what: impl FnOnce(f64) -> String) {
        let every = if self.interactive { 0.5 } else { 10.0 };
        if !self.enabled || self.shown.elapsed() < Duration::from_secs_f64(every) {
            return;
        }
        self.shown = Instant::now();
        let position = pipeline.query_position::<gst::ClockTime>();
        let duration = pipeline.query_duration::<gst::ClockTime>();
        let percent = match (position, duration) {
            (Some(p), Some(d)) if d > gst::ClockTime::ZERO => {
                format!(" ({:.1} %)", 100.0 * p.seconds_f64() / d.seconds_f64())
            }
            _ => String::new(),
        };
        let line = format!(
            "{}: {} / {}{percent}, {}",
            self.program,
            position.map_or("--".into(), timecode),
            duration.map_or("--".into(), timecode),
            what(self.started.elapsed().as_secs_f64())
        );
        if self.interactive {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }

    /// Clears the line, before other output on standard error.
    pub fn done(&self) {
        if self.enabled && self.interactive {
            eprint!("\r\x1b[K");
        }
    }
}

/// `HH:MM:SS.mmm`.
pub fn timecode(t: gst::ClockTime) -> String {
    timecode_ms(t.mseconds())
}

/// `HH:MM:SS.mmm` of a count of milliseconds.
pub fn timecode_ms(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// `pts`, a buffer time on `pad`, in stream time (by the pad's segment).
pub fn stream_time(pad: &gst::Pad, pts: gst::ClockTime) -> Option<gst::ClockTime> {
    pad.sticky_event::<gst::event::Segment>(0)?
        .segment()
        .downcast_ref::<gst::ClockTime>()?
        .to_stream_time(pts)
}

/// `path`, created, buffered.
pub fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, String> {
    std::fs::File::create(path)
        .map(std::io::BufWriter::new)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `path` with `f`.
pub fn write_file(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), String> {
    let mut file = create(path)?;
    f(&mut file)
        .and_then(|()| file.flush())
        .map_err(|e| format!("{}: {e}", path.display()))
}
