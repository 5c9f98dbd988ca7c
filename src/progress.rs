//! Progress on standard error for the long phases of a command: a bar with counts and a rate where
//! the number of rows is known, a spinner with the phase's name where it is not.
//!
//! Shown only when standard error is a terminal, the output is human and `-q` was not given: a
//! pipe, a log file or a JSON consumer never receives a progress line (so nothing is mixed into
//! `--format json`, whichever stream a caller merges). Everything here is hidden otherwise, so
//! callers make their bars unconditionally.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressFinish, ProgressState, ProgressStyle};

/// Whether progress is shown, decided once per command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Progress on a terminal only: `wanted` is false under `-q` and `--format json`.
    pub fn new(wanted: bool) -> Progress {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
        }
    }

    /// No progress at all (tests, library callers).
    pub fn hidden() -> Progress {
        Progress { enabled: false }
    }

    pub fn enabled(self) -> bool {
        self.enabled
    }

    /// A bar for `total` rows of `what`: position, total and a whole-number rate.
    pub fn bar(self, total: u64, what: impl Into<Cow<'static, str>>) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        // Cleared however it ends: a phase that fails leaves no stale line above its error.
        let bar = ProgressBar::new(total).with_finish(ProgressFinish::AndClear);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>22} [{bar:30}] {pos}/{len} rows ({rate}, {eta} left)",
        ) {
            bar.set_style(style.with_key("rate", whole_rate).progress_chars("=> "));
        }
        bar.set_message(what);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A spinner naming a phase whose size is not known in advance, with the time it has taken.
    pub fn spinner(self, phase: impl Into<Cow<'static, str>>) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner().with_finish(ProgressFinish::AndClear);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(phase);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// Runs `f` under a spinner naming `phase`; the spinner is cleared when `f` returns.
    pub fn phase<T>(self, phase: impl Into<Cow<'static, str>>, f: impl FnOnce() -> T) -> T {
        let spinner = self.spinner(phase);
        let out = f();
        spinner.finish_and_clear();
        out
    }
}

/// Rows per second as a whole number: a fraction of a row is noise on a progress line.
fn whole_rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0} rows/s", state.per_sec());
}
