//! Progress of a run: a bar on a terminal, a line every few seconds when piped.

use indicatif::{ProgressBar, ProgressStyle};
use qiao_engine::Observer;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Reports a flow's progress on stderr.
pub struct Progress {
    flow: String,
    bar: Option<ProgressBar>,
    read: AtomicU64,
    delivered: AtomicU64,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// A reporter for `flow`: a spinner with counts on a terminal, else plain lines.
    pub fn new(flow: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            // The template is a constant known to be valid; fall back to the default style.
            let style = ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(flow.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            flow: flow.to_string(),
            bar,
            read: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }
    }

    fn update(&self) {
        let (r, d) = (
            self.read.load(Ordering::Relaxed),
            self.delivered.load(Ordering::Relaxed),
        );
        if let Some(bar) = &self.bar {
            bar.set_message(format!("read {r}, delivered {d}"));
            return;
        }
        if let Ok(mut last) = self.last_line.lock()
            && last.elapsed() >= Duration::from_secs(5)
        {
            *last = Instant::now();
            eprintln!("{}: read {r}, delivered {d}", self.flow);
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn read(&self, n: u64) {
        self.read.fetch_add(n, Ordering::Relaxed);
        self.update();
    }
    fn delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
        self.update();
    }
    fn note(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("{}: {msg}", self.flow)),
            None => eprintln!("{}: {msg}", self.flow),
        }
    }
}
