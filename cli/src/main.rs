//! `gst-dreamsim`: the DreamSim jobs on video from the command line.
//!
//! Each subcommand builds a GStreamer pipeline with the plugin's elements
//! (registered statically: the tool runs the elements it was built with) and
//! writes what they find. One module per subcommand, each exposing `Args`
//! (its clap arguments) and `run(args) -> Result<ExitCode, Error>`; the
//! shared options, pipeline plumbing, progress bar and output in modules of
//! their own. A new job is a module and a variant of [`Command`].

mod args;
mod bench;
mod calibrate;
mod common;
mod compare;
mod corpus;
mod dedup;
mod distances;
mod doctor;
mod embed_cache;
mod error;
mod evaluate;
mod index;
mod index_evaluate;
mod lost_errors;
mod metrics;
mod monitor;
mod output;
mod overwrite;
mod pipeline;
mod progress;
mod scenes;
mod untrusted;
mod values;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::Error;

/// The program's name, as it prefixes what it writes on standard error.
pub const PROGRAM: &str = "gst-dreamsim";

#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    about = "DreamSim perceptual similarity on video: distances, scene cuts, \
             near-duplicate frames, drift from a reference, throughput, \
             sets of known images",
    after_help = "Examples:\n  \
        gst-dreamsim scenes video.mp4 > scenes.csv\n  \
        gst-dreamsim dedup --threshold 0.02 --video deduped.mkv video.mp4\n  \
        gst-dreamsim index add known.dsindex photos/ clip.mp4\n  \
        gst-dreamsim <COMMAND> --help\n\n\
        Exit status: 0 success, 1 error, 2 usage error (monitor: 3 alert raised;\n\
        compare: 4 a pooled distance above --fail-above)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The jobs, one module each.
#[derive(Debug, Subcommand)]
enum Command {
    Distances(distances::Args),
    Compare(compare::Args),
    Scenes(scenes::Args),
    Dedup(dedup::Args),
    Monitor(monitor::Args),
    Bench(bench::Args),
    Index(index::Args),
    Corpus(corpus::Args),
    Calibrate(calibrate::Args),
    Evaluate(evaluate::Args),
    Doctor(doctor::Args),
}

fn run(command: Command) -> Result<ExitCode, Error> {
    pipeline::init()?;
    match command {
        Command::Distances(args) => distances::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Scenes(args) => scenes::run(args),
        Command::Dedup(args) => dedup::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Index(args) => index::run(args),
        Command::Corpus(args) => corpus::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Doctor(args) => doctor::run(args),
    }
}

fn main() -> ExitCode {
    // Usage errors: clap prints them with the usage and exits with 2.
    let cli = Cli::parse();
    // Jobs run one short pipeline per input (a video of `corpus add`, of
    // `index add`): each would load the model again, seconds for the
    // ensemble. The process keeps a stopped element's model for the next.
    dreamsim::model_pool::keep_idle_models(true);
    match run(cli.command) {
        Ok(code) => code,
        // The reader of standard output left (`| head`): nothing to say.
        Err(Error::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
        // Found after parsing (an output that is an input): a usage error too.
        Err(e @ Error::Usage(_)) => {
            eprintln!("{PROGRAM}: error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("{PROGRAM}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
