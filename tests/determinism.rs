//! Determinism as a test: Debian's 6.12 riscv64 kernel boots with no input to its test
//! initramfs and powers off (`emu.test=poweroff`) ten times under the default (tiered) engine,
//! and once each under `interp` and `jit`. Every boot must print the same console bytes and
//! retire the same number of instructions; the tiered boots must also leave the same guest RAM
//! behind (the `ram hash` of `--stats`). Each boot's peak RSS stays under guest RAM plus a
//! bounded overhead (plus the 256 MiB code arena under `jit`).
//!
//! Boots run two at a time. `EMU_DETERMINISM_BOOTS` changes the number of tiered boots. The
//! guest files come from `scripts/debian-guest.sh riscv64` (see tests/linux_boot.rs).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The marker the test initramfs prints once its modules are loaded.
const MARKER: &str = "EMU-INIT-READY";
const MIB: u64 = 1 << 20;
/// Host memory a boot may use beyond guest RAM and the code arena (tests/resource_bounds.rs).
const OVERHEAD: u64 = 160 * MIB;
/// Longest one boot may take (interp on a loaded 2-core machine).
const BOOT_TIMEOUT: Duration = Duration::from_secs(400);

fn guest_dir() -> PathBuf {
    let dir = common::guest_dir();
    for f in ["Image", "initrd.gz"] {
        assert!(
            dir.join(f).is_file(),
            "the Debian guest files are missing ({} not found): run `scripts/debian-guest.sh \
             riscv64` first",
            dir.join(f).display()
        );
    }
    dir
}

/// What one boot left behind.
#[derive(Debug)]
struct Boot {
    engine: &'static str,
    console: Vec<u8>,
    insns: u64,
    ram_hash: String,
    wall: Duration,
    /// Peak resident memory in bytes (`ru_maxrss`).
    peak_rss: u64,
}

/// Boot to power-off under `engine`, with no input.
// wait4 reaps the child, so `Child::wait` is never called.
#[allow(clippy::zombie_processes)]
fn boot(dir: &Path, engine: &'static str) -> Boot {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(["--arch", "riscv64", "-M", "virt", "-kernel"])
        .arg(dir.join("Image"))
        .arg("-initrd")
        .arg(dir.join("initrd.gz"))
        .args([
            "-serial",
            "stdio",
            "-append",
            "console=ttyS0 emu.test=poweroff",
        ])
        .args(["--stats", "--engine", engine])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not start emu");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, reaped only here (Child::wait is never called);
        // `status` and `usage` are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(r >= 0, "wait4: {}", std::io::Error::last_os_error());
        if r == pid {
            break;
        }
        if start.elapsed() > BOOT_TIMEOUT {
            let _ = child.kill();
            panic!("{engine}: no power-off within {BOOT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let console = out_t.join().unwrap();
    let stderr = err_t.join().unwrap();
    assert_eq!(
        code,
        Some(0),
        "{engine}: {stderr}\n{}",
        String::from_utf8_lossy(&console)
    );
    // "emu: stats: N instructions retired; ram hash H; blocks: ..."
    let stats = stderr
        .lines()
        .find_map(|l| l.strip_prefix("emu: stats: "))
        .unwrap_or_else(|| panic!("{engine}: --stats printed nothing: {stderr}"));
    let mut parts = stats.split("; ");
    let insns = parts
        .next()
        .and_then(|p| p.strip_suffix(" instructions retired"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{engine}: no instruction count in {stats:?}"));
    let ram_hash = parts
        .next()
        .and_then(|p| p.strip_prefix("ram hash "))
        .unwrap_or_else(|| panic!("{engine}: no ram hash in {stats:?}"))
        .to_string();
    Boot {
        engine,
        console,
        insns,
        ram_hash,
        wall: start.elapsed(),
        // Linux reports ru_maxrss in KiB.
        peak_rss: usage.ru_maxrss as u64 * 1024,
    }
}

/// Where two consoles first differ, for the failure message.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let i = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let from = i.saturating_sub(200);
    format!(
        "at byte {i}:\n--- first\n{}\n--- other\n{}",
        String::from_utf8_lossy(&a[from..(i + 200).min(a.len())]),
        String::from_utf8_lossy(&b[from..(i + 200).min(b.len())])
    )
}

#[test]
fn debian_boots_are_identical_across_runs_and_engines() {
    let dir = guest_dir();
    let tiered: usize = std::env::var("EMU_DETERMINISM_BOOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // The slow engines first, so that the two workers end together.
    let mut jobs: Vec<&'static str> = vec!["interp", "jit"];
    jobs.extend(std::iter::repeat_n("tiered", tiered));
    let jobs = Arc::new(Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>()));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (jobs, results, dir) = (jobs.clone(), results.clone(), dir.clone());
            std::thread::spawn(move || loop {
                let job = {
                    let mut j = jobs.lock().unwrap();
                    if j.is_empty() {
                        break;
                    }
                    j.remove(0)
                };
                let b = boot(&dir, job.1);
                results.lock().unwrap().push((job.0, b));
            })
        })
        .collect();
    for w in workers {
        if let Err(e) = w.join() {
            std::panic::resume_unwind(e);
        }
    }
    let mut boots = std::mem::take(&mut *results.lock().unwrap());
    boots.sort_by_key(|b| b.0);
    let boots: Vec<Boot> = boots.into_iter().map(|b| b.1).collect();
    for b in &boots {
        eprintln!(
            "{:>6}: {} instructions, ram hash {}, {:.1} s, peak RSS {} MiB",
            b.engine,
            b.insns,
            b.ram_hash,
            b.wall.as_secs_f64(),
            b.peak_rss >> 20
        );
    }
    let reference = boots
        .iter()
        .find(|b| b.engine == "tiered")
        .unwrap_or(&boots[0]);
    let text = String::from_utf8_lossy(&reference.console);
    assert!(text.contains(MARKER), "the guest never got ready:\n{text}");
    assert!(text.contains("reboot: Power down"), "{text}");
    assert!(reference.insns > 100_000_000, "{}", reference.insns);
    for (i, b) in boots.iter().enumerate() {
        assert_eq!(
            b.insns, reference.insns,
            "boot {i} ({}) retired a different number of instructions",
            b.engine
        );
        assert!(
            b.console == reference.console,
            "boot {i} ({}) printed different console bytes {}",
            b.engine,
            first_difference(&reference.console, &b.console)
        );
        // Every engine retires the same instructions, so guest memory must agree too.
        assert_eq!(
            b.ram_hash, reference.ram_hash,
            "boot {i} ({}) left different guest RAM at power-off",
            b.engine
        );
    }
    assert_eq!(boots.len(), tiered + 2);
    // Resource bound: guest RAM (512 MiB, virt's default) plus a bounded overhead; the jit
    // engine's code arena (256 MiB, flushed when full) comes on top.
    for b in &boots {
        let arena = if b.engine == "jit" { 256 * MIB } else { 0 };
        let bound = 512 * MIB + OVERHEAD + arena;
        assert!(
            b.peak_rss <= bound,
            "{}: peak RSS {} MiB above the bound {} MiB",
            b.engine,
            b.peak_rss / MIB,
            bound / MIB
        );
    }
}
