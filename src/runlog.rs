//! The run log: one JSON-lines file per run in the log directory.
//!
//! Each line is one event (`started`, `validated`, `backup`, `table`, `committed` or `failed`) with
//! a timestamp, written and flushed as it happens, so a log survives a crash up to its last step.
//! The database URL appears only in redacted form, like everywhere else.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

pub struct RunLog {
    path: PathBuf,
    file: File,
}

impl RunLog {
    /// Creates `DIR/run_YYYYMMDD_HHMMSS_<pid>.jsonl`, and the directory if needed.
    pub fn create(dir: &Path, started: Timestamp) -> io::Result<RunLog> {
        fs::create_dir_all(dir)?;
        let stamp = started.strftime("%Y%m%d_%H%M%S");
        let path = dir.join(format!("run_{stamp}_{}.jsonl", std::process::id()));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(RunLog { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event. A log that cannot be written must not abort a run that is otherwise
    /// fine, so write errors are reported on standard error and otherwise ignored.
    pub fn event(&mut self, event: &str, fields: serde_json::Value) {
        let mut line = serde_json::json!({
            "ts": crate::domain::format_instant(Timestamp::now()),
            "event": event,
        });
        // The process's peak memory so far: where in a run memory goes, read from the log alone.
        if let (Some(obj), Some(kb)) = (line.as_object_mut(), peak_rss_kb()) {
            obj.insert("peak_rss_kb".into(), kb.into());
        }
        if let (Some(obj), serde_json::Value::Object(extra)) = (line.as_object_mut(), fields) {
            obj.extend(extra);
        }
        let written = writeln!(self.file, "{line}").and_then(|()| self.file.flush());
        if let Err(e) = written {
            eprintln!(
                "warning: cannot write the run log {}: {e}",
                self.path.display()
            );
        }
    }
}

/// The peak resident set size of this process in KiB, where the system tells it (Linux).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn peak_memory_is_read_on_linux() {
        let kb = super::peak_rss_kb().unwrap_or(0);
        // A test binary holds at least a megabyte and far less than a terabyte.
        assert!((1024..1 << 30).contains(&kb), "{kb}");
    }
}
