//! Every test ROM under test-roms/riscv64, on every engine.
//!
//! The contract with test-roms (its Makefile): `make -C test-roms/riscv64 OUT=<dir>` builds each
//! `<name>.S` to `<dir>/<name>.elf`; each program must exit with HTIF code 0, and if
//! `<name>.expected` exists beside the source, emu's stdout must equal it. Failures are collected
//! and reported by ROM and engine, so one broken instruction does not hide the others.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Guest instructions a ROM may run before it counts as hung.
const MAX_INSNS: &str = "200000000";
/// Wall-clock limit per run, in case emu itself hangs.
const TIMEOUT: Duration = Duration::from_secs(120);

fn roms_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test-roms/riscv64")
}

/// Build the ROMs once per test process; the output directory, or why it failed.
fn built() -> &'static Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        if Command::new("riscv64-unknown-elf-gcc")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            return Err(
                "riscv64-unknown-elf-gcc is not installed: install the Debian package \
                        gcc-riscv64-unknown-elf (apt-get install gcc-riscv64-unknown-elf); CI \
                        (.ci/run) installs it"
                    .into(),
            );
        }
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = tmp.parent().unwrap_or(tmp).join("test-roms");
        let o = Command::new("make")
            .arg("-C")
            .arg(roms_dir())
            .arg(format!("OUT={}", out.display()))
            .output()
            .map_err(|e| format!("could not run make: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "building the test ROMs failed ({}):\n{}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Ok(out)
    })
}

/// The ROM names: one per `*.S` at the top of test-roms/riscv64 (benchmarks live in bench/).
fn rom_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(roms_dir())
        .expect("test-roms/riscv64 is missing")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".S")?.to_string())
        })
        .collect();
    names.sort();
    names
}

/// What `--stats` reports about a finished run: retired instructions and the state hash.
type RunStats = (u64, String);

/// Run one ROM; its `--stats`, or what failed.
fn run_rom(out: &Path, name: &str, engine: &str) -> Result<RunStats, String> {
    let elf = out.join(format!("{name}.elf"));
    if !elf.exists() {
        return Err(format!("{} was not built", elf.display()));
    }
    // Tests run in parallel and may run the same ROM: one pair of output files per run.
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let stdout_path = out.join(format!("{name}.{engine}.{run}.stdout"));
    let stderr_path = out.join(format!("{name}.{engine}.{run}.stderr"));
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args([
            "--arch",
            "riscv64",
            "--engine",
            engine,
            "--max-insns",
            MAX_INSNS,
            "--stats",
        ])
        .args(["-bios", "none", "-kernel"])
        .arg(&elf)
        .stdin(Stdio::null())
        .stdout(file(&stdout_path)?)
        .stderr(file(&stderr_path)?)
        .spawn()
        .map_err(|e| format!("could not start emu: {e}"))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {TIMEOUT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for emu: {e}")),
        }
    };
    let stdout = std::fs::read(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_file(&stdout_path);
    let _ = std::fs::remove_file(&stderr_path);
    if !status.success() {
        let code = status
            .code()
            .map_or("a signal".to_string(), |c| c.to_string());
        let messages: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("emu: stats: "))
            .collect();
        return Err(format!(
            "exit status {code}; stderr: {}",
            messages.join(" | ")
        ));
    }
    let expected = roms_dir().join(format!("{name}.expected"));
    if let Ok(want) = std::fs::read(&expected) {
        if stdout != want {
            return Err(format!(
                "stdout {:?} differs from {}: {:?}",
                String::from_utf8_lossy(&stdout),
                expected.display(),
                String::from_utf8_lossy(&want)
            ));
        }
    }
    // "emu: stats: N instructions retired; state hash H; ..."
    stderr
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("emu: stats: ")?;
            let insns = rest.split(' ').next()?.parse().ok()?;
            let hash = rest.split("state hash ").nth(1)?.split(';').next()?;
            Some((insns, hash.to_string()))
        })
        .ok_or_else(|| format!("no instruction count in --stats output: {stderr:?}"))
}

fn run_all(engine: &str) {
    let out = match built() {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    };
    let names = rom_names();
    assert!(!names.is_empty(), "no test ROMs found in test-roms/riscv64");
    let failures: Vec<String> = names
        .iter()
        .filter_map(|n| {
            run_rom(out, n, engine)
                .err()
                .map(|e| format!("  {n} [{engine}]: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} test ROMs failed on --engine {engine}:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

/// Both tiers execute the same IR with the same exits, so every ROM retires exactly the same
/// number of instructions and ends in the same state on every engine, and twice on the same
/// engine (DESIGN.md §5: determinism).
#[test]
fn roms_end_in_the_same_state_on_every_engine() {
    let out = match built() {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    };
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for name in rom_names() {
        let counts: Vec<(&str, Result<RunStats, String>)> = ["interp", "jit", "tiered", "tiered"]
            .into_iter()
            .map(|e| (e, run_rom(out, &name, e)))
            .collect();
        // Failing ROMs are reported by the per-engine tests; compare the ones that ran.
        let ok: Vec<(&str, &RunStats)> = counts
            .iter()
            .filter_map(|(e, r)| Some((*e, r.as_ref().ok()?)))
            .collect();
        compared += usize::from(ok.len() > 1);
        if ok.windows(2).any(|w| w[0].1 != w[1].1) {
            mismatches.push(format!("  {name}: {ok:?}"));
        }
    }
    assert!(compared > 0, "no ROM ran on two engines");
    assert!(
        mismatches.is_empty(),
        "instruction counts or final states differ between runs:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn roms_on_interp() {
    run_all("interp");
}

#[test]
fn roms_on_jit() {
    run_all("jit");
}

#[test]
fn roms_on_tiered() {
    run_all("tiered");
}
