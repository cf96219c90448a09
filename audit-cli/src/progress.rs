//! The progress line of a long export or purge: `indicatif` on stderr, with the rate and the
//! time left. It draws nothing when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress line for `verb` ("exported", "purged"). Call [`ProgressBar::is_hidden`] before
/// counting a total for [`with_total`]: counting costs a query.
pub(crate) fn line(verb: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg} {human_pos} events ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(verb);
    bar
}

/// Shows a bar towards `total`, with the time left.
pub(crate) fn with_total(bar: &ProgressBar, total: u64) {
    bar.set_length(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {percent:>3}% {human_pos}/{human_len} events ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#> "),
    );
}
