//! `e4defrag` command line.

use clap::Parser;
use e4defrag::{blockmap, error::Error, ext4fs};
use std::{fs::File, path::PathBuf, process::ExitCode};

/// ext4 goal-directed online defragmenter.
///
/// Today it answers where blocks are (--map): through the ext4_defrag
/// module's EXT4_IOC_FIBMAP, or FS_IOC_FIEMAP on kernels without it.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Print where the given logical blocks of each PATH are.
    #[arg(long)]
    map: bool,

    /// Logical block to look up with --map (repeatable).
    #[arg(short, long = "block", value_name = "N", default_value = "0")]
    blocks: Vec<u64>,

    /// Which kernel interface answers the query.
    #[arg(long, value_enum, default_value_t = blockmap::Backend::Auto)]
    backend: blockmap::Backend,

    /// Files or directories on a mounted ext4 filesystem.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

fn map_one(cli: &Cli, path: &PathBuf) -> Result<(), Error> {
    let file = File::open(path).map_err(|e| Error::Sys {
        path: path.clone(),
        op: "open",
        errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    })?;
    let block_size = ext4fs::block_size(&file, path)?;
    for &lblk in &cli.blocks {
        let m = blockmap::query(&file, path, lblk, block_size, cli.backend)?;
        // "-": a hole that runs to the end of the address space.
        let len = m.len.map_or("-".to_string(), |l| l.to_string());
        let source = match m.source {
            blockmap::Backend::Module => "module",
            _ => "fiemap",
        };
        println!(
            "{}: block {lblk}: physical {}, {len} blocks, {} ({source})",
            path.display(),
            m.pblk,
            m.state
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.map {
        eprintln!("e4defrag: defragmentation is not available in this version yet; use --map");
        return ExitCode::from(2);
    }
    let mut failed = false;
    for path in &cli.paths {
        if let Err(e) = map_one(&cli, path) {
            eprintln!("e4defrag: {e}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
