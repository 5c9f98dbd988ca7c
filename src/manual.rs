//! The man page and the shell completion scripts, generated from the clap definitions in
//! [`crate::cli`] so that they can never disagree with `--help`.
//!
//! `clap_mangen` writes one page per command, each pointing at the others as
//! `habitat-migrate-migrate(1)`. Those files are what `man --out-dir` installs. On standard output
//! there is one page that holds everything instead — the global options once, then a COMMANDS
//! section with every command, nested ones included, with its synopsis and options — because a
//! single page is what `habitat-migrate man > habitat-migrate.1` can install. It is assembled from
//! `clap_mangen`'s own section renderers, so the option formatting is theirs.

use std::io;
use std::path::Path;

use clap::Command;
use clap_mangen::Man;

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, mut command: Command) -> Vec<u8> {
    let name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    script
}

/// One page per command (`habitat-migrate.1`, `habitat-migrate-migrate.1`, …) in `dir`.
pub fn pages_to(command: Command, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(command, dir)
}

/// The whole tool as one man page (roff).
pub fn page(command: Command) -> io::Result<Vec<u8>> {
    let name = command.get_name().to_string();
    let man = Man::new(command.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    append(&mut page, |w| man.render_name_section(w), true)?;
    append(&mut page, |w| man.render_synopsis_section(w), true)?;
    append(&mut page, |w| man.render_description_section(w), true)?;
    append(&mut page, |w| man.render_options_section(w), true)?;
    page.extend_from_slice(b".SH COMMANDS\n");
    for (path, sub) in commands(&command, &name) {
        page.extend_from_slice(format!(".SS \"{path}\"\n").as_bytes());
        let sub_man = Man::new(sub.bin_name(&path).display_name(&path));
        append(&mut page, |w| sub_man.render_description_section(w), false)?;
        page.extend_from_slice(b".PP\n");
        append(&mut page, |w| sub_man.render_synopsis_section(w), false)?;
        append(&mut page, |w| sub_man.render_options_section(w), false)?;
    }
    append(&mut page, |w| man.render_extra_section(w), true)?;
    append(&mut page, |w| man.render_version_section(w), true)?;
    Ok(page)
}

/// Every visible command below `command`, depth first, with its full name
/// (`habitat-migrate period create`). The commands are taken before clap builds them, so their
/// options are their own: the global ones are on the page once, under OPTIONS.
fn commands(command: &Command, path: &str) -> Vec<(String, Command)> {
    let mut out = Vec::new();
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub_path = format!("{path} {}", sub.get_name());
        out.push((sub_path.clone(), sub.clone()));
        out.extend(commands(sub, &sub_path));
    }
    out
}

/// Appends one rendered section to `page`, without the string-definition preamble that every
/// `clap_mangen` render repeats, and, unless `keep_heading`, without its `.SH` heading (the
/// section then continues the command's `.SS`).
fn append(
    page: &mut Vec<u8>,
    render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    keep_heading: bool,
) -> io::Result<()> {
    let mut section = Vec::new();
    render(&mut section)?;
    let text = String::from_utf8_lossy(&section);
    for line in text.lines() {
        let preamble = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if preamble || (!keep_heading && line.starts_with(".SH ")) {
            continue;
        }
        page.extend_from_slice(line.as_bytes());
        page.push(b'\n');
    }
    Ok(())
}
