//! Helpers shared by the integration tests; a test file includes them with `mod common;`.
// Each test crate uses a subset.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// Run the emu binary to completion with no input.
pub fn emu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("could not start the emu binary")
}

/// Start the emu binary with stdin piped and stderr inherited; a thread appends everything it
/// writes to stdout to the returned buffer, so a test can wait for a line while it runs.
pub fn spawn_collecting(args: &[&str]) -> (Child, ChildStdin, Arc<Mutex<Vec<u8>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("could not start the emu binary");
    let stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (child, stdin, out)
}

/// A fresh, empty scratch directory for one test of a test file (`group`).
pub fn temp_dir(group: &str, test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(group)
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Where `scripts/debian-guest.sh riscv64` puts the Debian guest: `$EMU_GUEST_DIR`, else
/// `riscv64/current` under `$EMU_GUEST_CACHE` (default `~/.cache/emu-guest`). The caller
/// decides what a missing file means (skip or fail).
pub fn guest_dir() -> PathBuf {
    std::env::var_os("EMU_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("EMU_GUEST_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    Path::new(&std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/emu-guest")
                });
            cache.join("riscv64/current")
        })
}
