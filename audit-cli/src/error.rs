//! What a command can fail with, the exit code each failure maps to, and how it is shown: the
//! whole chain of causes, every line made terminal-safe.
//!
//! ```text
//! error: cannot create the export file `out/x.csv`
//!   caused by: No such file or directory (os error 2)
//! ```

use std::error::Error;
use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

use audit_core::format::terminal_safe;
use audit_core::query::QueryError;
use audit_core::store::StoreError;

type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A failed command.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad input (filter, flags, paths): exit 2.
    Usage(BoxError),
    /// The store or an output failed: exit 1.
    Runtime(BoxError),
    /// Standard output was closed (`audit query | head`): exit 1, quietly.
    ClosedOutput,
    /// The command's answer is no (`audit fingerprint --check` of a value that does not
    /// match), already said on standard output: exit 1, quietly.
    Negative,
}

impl Failure {
    /// Bad input.
    pub(crate) fn usage(error: impl Into<BoxError>) -> Self {
        Failure::Usage(error.into())
    }

    /// A failure of the store or an output.
    pub(crate) fn runtime(error: impl Into<BoxError>) -> Self {
        Failure::Runtime(error.into())
    }

    /// A failure of `error`, said as `context` (`error` becomes the cause).
    pub(crate) fn context(context: impl Into<String>, error: impl Into<BoxError>) -> Self {
        Failure::Runtime(Box::new(Context {
            message: context.into(),
            source: error.into(),
        }))
    }

    /// Bad input, said as `context` (`error` becomes the cause): an unreadable input file.
    pub(crate) fn usage_context(context: impl Into<String>, error: impl Into<BoxError>) -> Self {
        Failure::Usage(Box::new(Context {
            message: context.into(),
            source: error.into(),
        }))
    }

    /// Shows the failure on stderr (nothing for a closed output).
    pub(crate) fn print(&self) {
        if let Failure::Usage(e) | Failure::Runtime(e) = self {
            // Nothing more can be done if stderr is closed too.
            let _ = io::stderr().lock().write_all(chain(&**e).as_bytes());
        }
    }

    /// Shows the failure and gives the exit code.
    pub(crate) fn report(self) -> ExitCode {
        self.print();
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Runtime(_) | Failure::ClosedOutput | Failure::Negative => ExitCode::FAILURE,
        }
    }
}

/// `error: …` and one `  caused by: …` line per source, each line terminal-safe. A cause
/// whose text the message before it already shows is left out.
pub(crate) fn chain(error: &(dyn Error + 'static)) -> String {
    let mut out = String::new();
    let mut shown = error.to_string();
    push_lines(&mut out, "error: ", &shown);
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !shown.contains(&text) {
            push_lines(&mut out, "  caused by: ", &text);
        }
        shown = text;
        source = cause.source();
    }
    out
}

/// `text` under `label`, each of its lines made safe (a multi-line message, such as a query
/// error's list of problems, keeps its lines).
fn push_lines(out: &mut String, label: &str, text: &str) {
    out.push_str(label);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&terminal_safe(line));
    }
    out.push('\n');
}

/// A message with its cause.
#[derive(Debug)]
struct Context {
    message: String,
    source: BoxError,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Context {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io(io) => io.into(),
            e @ (StoreError::InvalidRequest(_) | StoreError::Unsupported(_)) => Failure::usage(e),
            other => Failure::runtime(other),
        }
    }
}

impl From<QueryError> for Failure {
    fn from(e: QueryError) -> Self {
        Failure::usage(e)
    }
}

impl From<io::Error> for Failure {
    /// A failed write of the command's output.
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::ClosedOutput
        } else {
            Failure::context("writing the output failed", e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_is_shown_once_per_cause_and_made_safe() {
        let inner = io::Error::other("disk \u{1b}[31mfull");
        let failure = Failure::context("cannot write `a\u{202e}b`", inner);
        let Failure::Runtime(e) = failure else {
            panic!("a runtime failure")
        };
        assert_eq!(
            chain(&*e),
            "error: cannot write `a\\u202eb`\n  caused by: disk \\u001b[31mfull\n"
        );
        let multi = io::Error::other("Invalid query.\n  action: unknown\u{7}");
        assert_eq!(
            chain(&multi),
            "error: Invalid query.\n  action: unknown\\u0007\n"
        );
    }

    #[test]
    fn a_closed_output_is_quiet() {
        let closed: Failure = io::Error::from(io::ErrorKind::BrokenPipe).into();
        assert!(matches!(closed, Failure::ClosedOutput));
        let store: Failure = StoreError::Io(io::Error::from(io::ErrorKind::BrokenPipe)).into();
        assert!(matches!(store, Failure::ClosedOutput));
    }
}
