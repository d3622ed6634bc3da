//! Progress bars for a run, one per table being read; none when disabled.

use super::*;

/// Progress bars on stderr, one per table being read; nothing when disabled.
pub(super) struct Progress {
    pub(super) multi: Option<MultiProgress>,
}

impl Progress {
    pub(super) fn new(enabled: bool) -> Progress {
        Progress {
            multi: enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    pub(super) fn rows(&self, table: &str, estimate: u64) -> ProgressBar {
        let Some(m) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = m.add(ProgressBar::new(estimate.max(1)));
        bar.set_style(crate::progress::style(
            "{prefix:>28} [{bar:24}] {human_pos}/~{human_len} rows {msg} ({rate}, {eta})",
        ));
        bar.set_prefix(table.to_string());
        bar
    }

    pub(super) fn bytes(&self, name: &str, total: Option<u64>) -> ProgressBar {
        let Some(m) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = m.add(ProgressBar::new(total.unwrap_or(0)));
        let template = if total.is_some() {
            "{prefix:>20} [{bar:24}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta}) {msg}"
        } else {
            "{prefix:>20} {spinner} {bytes} ({bytes_per_sec}) {msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        bar
    }
}
