//! Writes e4defrag's roff man page and its shell completions, generated
//! from the same command-line definition the tool parses with
//! (`src/cli.rs`), so that they cannot drift from it. `make install` runs
//! it: `e4defrag-gen man DIR` writes `DIR/e4defrag.8`;
//! `e4defrag-gen completions DIR` writes `DIR/e4defrag.bash`,
//! `DIR/_e4defrag` (zsh) and `DIR/e4defrag.fish`.

#[path = "../cli.rs"]
#[allow(dead_code)]
mod cli;

use clap::CommandFactory;
use clap_complete::Shell;
use std::{path::Path, process::ExitCode};

fn man(dir: &Path) -> std::io::Result<()> {
    let cmd = cli::Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).section("8").render(&mut page)?;
    std::fs::write(dir.join("e4defrag.8"), page)
}

fn completions(dir: &Path) -> std::io::Result<()> {
    for (shell, name) in [
        (Shell::Bash, "e4defrag.bash"),
        (Shell::Zsh, "_e4defrag"),
        (Shell::Fish, "e4defrag.fish"),
    ] {
        let mut cmd = cli::Cli::command();
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd, "e4defrag", &mut text);
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.as_slice() {
        [what, dir] if what == "man" => man(Path::new(dir)),
        [what, dir] if what == "completions" => completions(Path::new(dir)),
        _ => {
            eprintln!("usage: e4defrag-gen man|completions DIR");
            return ExitCode::from(2);
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e4defrag-gen: {e}");
            ExitCode::FAILURE
        }
    }
}
