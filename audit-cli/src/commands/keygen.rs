//! `audit keygen`: a key pair for signing checkpoints (`PREFIX.key`, mode 0600, and
//! `PREFIX.pub`), or with `--fingerprint` a key for secret fingerprints. Touches no store and
//! never overwrites a file.

use std::io::Write;
use std::path::PathBuf;

use audit_core::chain::SigningKey;
use audit_core::fingerprint::FingerprintKey;
use audit_core::format::terminal_safe;

use crate::cli::KeygenArgs;
use crate::error::Failure;

pub(super) fn run(args: KeygenArgs) -> Result<(), Failure> {
    if args.fingerprint {
        let path = args
            .out
            .unwrap_or_else(|| PathBuf::from("audit-fingerprint.key"));
        let key = FingerprintKey::generate(&args.key_id).map_err(Failure::usage)?;
        key.write_file(&path).map_err(Failure::usage)?;
        say(&format!(
            "wrote fingerprint key `{}` to {} (mode 0600): give it to the application \
             (AuditorBuilder::fingerprint_key) and to investigators, never to the database",
            key.id(),
            path.display()
        ));
        return Ok(());
    }
    let name = args.name.unwrap_or_else(default_name);
    let prefix = args
        .out
        .unwrap_or_else(|| PathBuf::from("audit-checkpoint"));
    let with = |ext: &str| {
        let mut path = prefix.clone().into_os_string();
        path.push(ext);
        PathBuf::from(path)
    };
    let (private, public) = (with(".key"), with(".pub"));
    for path in [&private, &public] {
        if path.exists() {
            return Err(Failure::usage(format!(
                "`{}` exists already: a key file is never overwritten; choose another --out",
                path.display()
            )));
        }
    }
    let key = SigningKey::generate(&name).map_err(Failure::usage)?;
    key.write_file(&private).map_err(Failure::usage)?;
    key.verifier().write_file(&public).map_err(Failure::usage)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", key.verifier())?;
    stdout.flush()?;
    say(&format!(
        "wrote the private key to {} (mode 0600; for `audit checkpoint --signing-key`) and the \
         public key to {} (for `audit verify --public-key`; keep a copy away from the database)",
        private.display(),
        public.display()
    ));
    Ok(())
}

/// `HOSTNAME/audit`, or `localhost/audit` when the host name is unknown or unfit for a key
/// name.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host = host.trim();
    let name = format!("{host}/audit");
    if host.is_empty() || !audit_core::chain::is_valid_key_name(&name) {
        "localhost/audit".into()
    } else {
        name
    }
}

fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "{}", terminal_safe(message));
}
