//! The committed tracking tables must match the code: a stale `docs/audit-tracking.md` fails.

use audit_examples::tracking_docs;

#[test]
fn committed_tracking_docs_are_fresh() {
    audit_core::docs::assert_fresh(
        tracking_docs::default_path(),
        &tracking_docs::schemas(),
        tracking_docs::REGENERATE,
    );
}

#[test]
fn every_example_resource_is_documented_and_embedded_parts_are_not_resources() {
    let md = tracking_docs::render();
    for name in [
        "APIKey",
        "Group",
        "GitSSHKey",
        "License",
        "Template",
        "TemplateVersion",
        "User",
        "Workspace",
        "WorkspaceBuild",
        "Organization",
        "OrganizationMember",
        "OAuth2ProviderApp",
        "OAuth2ProviderAppSecret",
        "WorkspaceProxy",
        "CustomRole",
        "HealthSettings",
    ] {
        assert!(
            md.contains(&format!("### {name}\n")),
            "{name} missing from the docs"
        );
    }
    assert!(!md.contains("### Timestamps"));
    // Secrets are shown as secret, never as plain "tracked" (the table of Coder's audit docs
    // lists its secret fields as tracked, which reads as if their values were logged).
    assert!(md.contains("| `hashed_password` | secret |"));
    assert!(md.contains("| `private_key` | secret |"));
}

#[test]
fn rendering_is_deterministic_and_idempotent() {
    let once = tracking_docs::render();
    assert_eq!(once, tracking_docs::render());
    let doc = format!(
        "intro\n{}\n{}\n",
        audit_core::docs::BEGIN_MARKER,
        audit_core::docs::END_MARKER
    );
    let first = audit_core::docs::replace_section(&doc, &once).unwrap();
    let second = audit_core::docs::replace_section(&first, &once).unwrap();
    assert_eq!(first, second);
}

#[test]
fn the_audit_docs_binary_checks_and_rewrites() {
    let dir = std::env::temp_dir().join(format!("audit-docs-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tracking.md");
    let stale = format!(
        "# Tracked\n{}\n| stale |\n{}\nfooter\n",
        audit_core::docs::BEGIN_MARKER,
        audit_core::docs::END_MARKER
    );
    std::fs::write(&file, &stale).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_audit-docs"))
            .args(args)
            .output()
            .expect("audit-docs runs")
    };

    let check = run(&["--check", file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("-| stale |") && stderr.contains("+### Workspace"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        stale,
        "--check must not write"
    );

    assert!(run(&[file.to_str().unwrap()]).status.success());
    let rewritten = std::fs::read_to_string(&file).unwrap();
    assert!(rewritten.starts_with("# Tracked\n") && rewritten.ends_with("footer\n"));
    assert!(run(&["--check", file.to_str().unwrap()]).status.success());

    std::fs::write(&file, "# no markers here\n").unwrap();
    let broken = run(&["--check", file.to_str().unwrap()]);
    assert_eq!(broken.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("begin marker is missing"));

    let missing = run(&[dir.join("nope.md").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}
