//! Workspace-level tests (trybuild cases in `ui/`, integration tests in `tests/`); this
//! library is empty.
