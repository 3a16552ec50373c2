//! Argument groups that more than one subcommand flattens into its own
//! (beside [`crate::common::CommonArgs`], which every job has): where a
//! result goes and in which format, the HNSW options of `index` and
//! `corpus`. A group lives here, not in the first subcommand that had it,
//! so that no subcommand borrows another's.

use std::path::PathBuf;

use dreamsim_index::{self as index, IndexOptions};

/// Where a subcommand's result goes (`-o FILE` or standard output) and
/// whether it is JSON. The help says what most subcommands write; one that
/// writes something else words it for itself with
/// `#[command(mut_arg("json", |a| a.help(...)))]` on its arguments.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// Write the result to FILE instead of standard output
    #[arg(short, long, value_name = "FILE", help_heading = "Output options")]
    pub output: Option<PathBuf>,

    /// Write a JSON document instead of CSV
    #[arg(long, help_heading = "Output options")]
    pub json: bool,
}

/// How a large index is searched (HNSW).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Index options")]
pub struct SearchArgs {
    /// HNSW search breadth (usearch expansion_search, pgvector
    /// hnsw.ef_search): wider finds the nearest entry more often on large
    /// sets, at more time per lookup (docs/index.md); sets below 2,000
    /// entries in a file are searched exhaustively whatever it is
    #[arg(long, value_name = "EF", default_value_t = index::DEFAULT_EF_SEARCH,
          value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u32).range(1..=65_536), |v| v as usize))]
    pub ef_search: usize,
}

impl SearchArgs {
    /// `options` with this search breadth.
    pub fn apply(&self, options: IndexOptions) -> IndexOptions {
        IndexOptions {
            ef_search: self.ef_search,
            ..options
        }
    }
}

/// The HNSW graph of a new index.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Index options")]
pub struct GraphArgs {
    /// Links per node of a new index's HNSW graph (pgvector's m for a new
    /// PostgreSQL table): denser finds more at a given --ef-search on large
    /// sets, at a larger index and a slower build (an existing index keeps
    /// its own)
    #[arg(long, value_name = "M", default_value_t = index::DEFAULT_CONNECTIVITY,
          value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u32).range(2..=256), |v| v as usize))]
    pub connectivity: usize,

    /// Search breadth of each insertion into a new index's graph (pgvector's
    /// ef_construction, at least twice M): wider builds a better graph, more
    /// slowly
    #[arg(long, value_name = "EA", default_value_t = index::DEFAULT_EXPANSION_ADD,
          value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u32).range(1..=65_536), |v| v as usize))]
    pub expansion_add: usize,
}

impl GraphArgs {
    /// `options` with this graph.
    pub fn apply(&self, options: IndexOptions) -> IndexOptions {
        IndexOptions {
            connectivity: self.connectivity,
            expansion_add: self.expansion_add,
            ..options
        }
    }
}
