//! `audit fingerprint`: the fingerprint of a candidate secret value, to answer "was it set
//! to X?" by comparing with the fingerprints in the log. The value comes from standard input
//! (never the command line, where `ps` and shell histories would show it), is held in memory
//! that is wiped afterwards, and is never printed.

use std::io::{IsTerminal, Read, Write};

use audit_core::fingerprint::{Keyring, wipe_json};
use zeroize::Zeroizing;

use crate::cli::FingerprintArgs;
use crate::error::Failure;

pub(super) fn run(args: FingerprintArgs) -> Result<(), Failure> {
    if !args.refused.is_empty() {
        return Err(Failure::usage(
            "the value is read from standard input, never from the command line (where `ps` \
             and shell histories show it): printf '%s' \"$value\" | audit fingerprint …",
        ));
    }
    let keyring = Keyring::read_file(&args.key_file).map_err(Failure::usage)?;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let _ = writeln!(
            std::io::stderr(),
            "type the value, then Ctrl-D (or pipe it in: printf '%s' \"$value\" | audit fingerprint …)"
        );
    }
    let mut input = Zeroizing::new(Vec::new());
    stdin
        .lock()
        .read_to_end(&mut input)
        .map_err(|e| Failure::usage_context("cannot read the value from standard input", e))?;
    // One final line break is the shell's, not the value's.
    for ending in [&b"\r\n"[..], b"\n"] {
        if input.ends_with(ending) {
            let len = input.len() - ending.len();
            input.truncate(len);
            break;
        }
    }
    let text = std::str::from_utf8(&input)
        .map_err(|_| Failure::usage("the value on standard input is not UTF-8 text"))?;
    let (resource, field) = (args.resource.as_str(), args.field.as_str());
    let outcome = if args.json {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            // serde_json's message gives a line and column, never the input.
            Failure::usage(format!("the value on standard input is not JSON: {e}"))
        })?;
        let outcome = answer(&keyring, &args, resource, field, &value);
        wipe_json(value);
        outcome
    } else {
        answer(&keyring, &args, resource, field, text)
    };
    let mut stdout = std::io::stdout().lock();
    match outcome.map_err(Failure::usage)? {
        Answer::Fingerprints(lines) => {
            for line in lines {
                writeln!(stdout, "{line}")?;
            }
            stdout.flush()?;
            Ok(())
        }
        Answer::Matches(true) => {
            writeln!(stdout, "matches")?;
            Ok(())
        }
        Answer::Matches(false) => {
            writeln!(stdout, "does not match")?;
            stdout.flush()?;
            Err(Failure::Negative)
        }
    }
}

enum Answer {
    /// The value's fingerprint with each key, the current one first.
    Fingerprints(Vec<String>),
    /// Whether the value matches the fingerprint given.
    Matches(bool),
}

fn answer<T: serde::Serialize + ?Sized>(
    keyring: &Keyring,
    args: &FingerprintArgs,
    resource: &str,
    field: &str,
    value: &T,
) -> Result<Answer, audit_core::fingerprint::FingerprintError> {
    if let Some(expected) = &args.check {
        return keyring
            .matches(expected, resource, field, value)
            .map(Answer::Matches);
    }
    keyring
        .keys()
        .iter()
        .map(|key| Ok(key.fingerprint(resource, field, value)?.to_string()))
        .collect::<Result<_, _>>()
        .map(Answer::Fingerprints)
}
