//! Progress of the long phases of a command, told to whoever watches: on standard error a bar with
//! counts and a rate where the number of rows is known, a spinner with the phase's name where it
//! is not; on the web page, the phase and its counts while a migration runs.
//!
//! The pipeline names each phase once ([`Progress::bar`], [`Progress::spinner`],
//! [`Progress::phase`]) and counts its rows on the [`ProgressBar`] it gets back, whoever watches.
//! Each [`Observer`] is told when a phase starts and may keep the bar to read its count (an
//! atomic counter: reading it costs the pipeline nothing). The terminal is one observer, shown
//! only when standard error is a terminal, the output is human and `-q` was not given: a pipe, a
//! log file or a JSON consumer never receives a progress line (so nothing is mixed into
//! `--format json`, whichever stream a caller merges). With no observer every bar is hidden, so
//! callers make their bars unconditionally.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressState, ProgressStyle};

/// Someone told of each phase of a command as it starts.
pub trait Observer: Send + Sync {
    /// The phase `name` starts. `rows` counts the rows it has done, towards its length where the
    /// total is known (a bar) or with no length (a spinner); the phase finishes it when it ends.
    fn phase(&self, name: &str, rows: &ProgressBar);
}

/// Who is told of the phases of one command; cheap to clone.
#[derive(Clone, Default)]
pub struct Progress {
    observers: Vec<Arc<dyn Observer>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("observers", &self.observers.len())
            .finish()
    }
}

impl Progress {
    /// Progress on a terminal only: `wanted` is false under `-q` and `--format json`.
    pub fn new(wanted: bool) -> Progress {
        let mut progress = Progress::hidden();
        if wanted && std::io::stderr().is_terminal() {
            progress.observers.push(Arc::new(Terminal));
        }
        progress
    }

    /// No progress at all (tests, library callers).
    pub fn hidden() -> Progress {
        Progress::default()
    }

    /// The same, with `observer` told of every phase too.
    pub fn with(mut self, observer: Arc<dyn Observer>) -> Progress {
        self.observers.push(observer);
        self
    }

    /// Whether anyone watches.
    pub fn enabled(&self) -> bool {
        !self.observers.is_empty()
    }

    /// Tells every observer that `name` starts, counted on `rows`.
    fn start(&self, name: Cow<'static, str>, rows: ProgressBar) -> ProgressBar {
        for observer in &self.observers {
            observer.phase(&name, &rows);
        }
        rows
    }

    /// A bar for `total` rows of `what`.
    pub fn bar(&self, total: u64, what: impl Into<Cow<'static, str>>) -> ProgressBar {
        if !self.enabled() {
            return ProgressBar::hidden();
        }
        // Cleared however it ends: a phase that fails leaves no stale line above its error.
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
            .with_finish(ProgressFinish::AndClear);
        self.start(what.into(), bar)
    }

    /// A spinner naming a phase whose size is not known in advance.
    pub fn spinner(&self, phase: impl Into<Cow<'static, str>>) -> ProgressBar {
        if !self.enabled() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
            .with_finish(ProgressFinish::AndClear);
        self.start(phase.into(), bar)
    }

    /// Runs `f` under a spinner naming `phase`; the spinner is cleared when `f` returns.
    pub fn phase<T>(&self, phase: impl Into<Cow<'static, str>>, f: impl FnOnce() -> T) -> T {
        let spinner = self.spinner(phase);
        let out = f();
        spinner.finish_and_clear();
        out
    }
}

/// The terminal: each phase drawn on standard error, a bar with position, total and a
/// whole-number rate where the total is known, else a spinner with the time taken.
struct Terminal;

impl Observer for Terminal {
    fn phase(&self, name: &str, rows: &ProgressBar) {
        // Drawn first, so that the style and the name draw it at once: a phase shorter than a
        // tick still shows.
        rows.set_draw_target(ProgressDrawTarget::stderr());
        let style = if rows.length().is_some() {
            ProgressStyle::with_template(
                "{msg:>22} [{bar:30}] {pos}/{len} rows ({rate}, {eta} left)",
            )
            .map(|s| s.with_key("rate", whole_rate).progress_chars("=> "))
        } else {
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        };
        if let Ok(style) = style {
            rows.set_style(style);
        }
        rows.set_message(name.to_string());
        let tick = if rows.length().is_some() { 200 } else { 120 };
        rows.enable_steady_tick(Duration::from_millis(tick));
    }
}

/// Rows per second as a whole number: a fraction of a row is noise on a progress line.
fn whole_rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0} rows/s", state.per_sec());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Keeps every phase and its bar.
    #[derive(Default)]
    struct Seen(Mutex<Vec<(String, ProgressBar)>>);

    impl Observer for Seen {
        fn phase(&self, name: &str, rows: &ProgressBar) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push((name.to_string(), rows.clone()));
            }
        }
    }

    #[test]
    fn an_observer_sees_each_phase_and_its_count() {
        assert!(!Progress::hidden().enabled());
        let seen = Arc::new(Seen::default());
        let progress = Progress::hidden().with(Arc::clone(&seen) as Arc<dyn Observer>);
        assert!(progress.enabled());
        let bar = progress.bar(10, "writing members");
        bar.inc(3);
        let answer = progress.phase("verifying", || 42);
        assert_eq!(answer, 42);
        let seen = seen.0.lock().expect("lock");
        let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["writing members", "verifying"]);
        assert_eq!(seen[0].1.position(), 3);
        assert_eq!(seen[0].1.length(), Some(10));
        assert_eq!(seen[1].1.length(), None);
        assert!(seen[1].1.is_finished());
    }
}
