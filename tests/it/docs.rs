//! Documentation generated from the code stays in step with it.

use std::path::Path;

use tidepost_app::config::{SETTINGS, reference_markdown};

#[test]
fn configuration_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == reference_markdown(),
        "docs/configuration.md differs from the settings in the code: \
         run `tidepost config reference > docs/configuration.md` (or \
         `cargo run -- config reference > docs/configuration.md`) and commit it"
    );
    for setting in SETTINGS {
        assert!(on_disk.contains(&format!("| `{}` |", setting.name)));
    }
}
