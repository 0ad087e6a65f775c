//! DESIGN.md §1: imports go one way. `jit` imports none of ours, `devices` none of ours,
//! `frontends` only `jit` and `devices`, `firmware` at most `devices`. Checked on the real
//! dependency graph from `cargo metadata`, so a new edge fails here, not in review.

use std::process::Command;

const OURS: [&str; 4] = ["emu-jit", "emu-frontends", "emu-devices", "emu-firmware"];

/// Our crates among `package`'s normal dependencies, sorted.
fn our_deps(metadata: &str, package: &str) -> Vec<String> {
    // `cargo metadata --no-deps` lists each workspace package with its dependencies; a small
    // scan is enough here (no JSON crate needed for one test).
    let start = metadata
        .find(&format!("\"name\":\"{package}\",\"version\""))
        .unwrap_or_else(|| panic!("package {package} not in cargo metadata"));
    let rest = &metadata[start..];
    let deps_at = rest.find("\"dependencies\":[").expect("dependencies list");
    let deps = &rest[deps_at..];
    let end = deps.find("\"targets\"").unwrap_or(deps.len());
    let deps = &deps[..end];
    let mut found: Vec<String> = OURS
        .iter()
        .filter(|name| deps.contains(&format!("\"name\":\"{name}\"")))
        .map(|s| s.to_string())
        .collect();
    found.sort();
    found
}

#[test]
fn workspace_imports_go_one_way() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed");
    let meta = String::from_utf8_lossy(&out.stdout);
    // The scanner sees edges: the top-level crate imports all of ours.
    assert_eq!(
        our_deps(&meta, "emu").len(),
        OURS.len(),
        "src/ imports every crate"
    );
    let none: Vec<String> = Vec::new();
    assert_eq!(
        our_deps(&meta, "emu-jit"),
        none,
        "jit must import none of ours"
    );
    assert_eq!(
        our_deps(&meta, "emu-devices"),
        none,
        "devices must import none of ours"
    );
    assert_eq!(
        our_deps(&meta, "emu-frontends"),
        vec!["emu-devices".to_string(), "emu-jit".to_string()],
        "frontends imports jit and devices only"
    );
    let fw = our_deps(&meta, "emu-firmware");
    assert!(
        fw.is_empty() || fw == ["emu-devices".to_string()],
        "firmware imports devices at most, found {fw:?}"
    );
}
