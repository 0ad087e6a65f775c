//! Resource bounds: emu's peak resident memory is the guest RAM the guest touches plus a bounded
//! overhead (code cache, TLBs, queues). A Debian boot with `-m 256M` stays under 256 MiB + the
//! overhead bound, and a bare-metal guest hammering MMIO registers and virtio doorbells
//! (test-roms/riscv64-virt/hammer.c, ~16 million device accesses) uses little more memory than
//! one that does nothing, and no more than a tenth of the hammering (hammer-short.c). Peak RSS is the kernel's `ru_maxrss` of the emu process (wait4).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
/// Allowed overhead above the guest RAM size for a Debian boot (measured: ~50 MiB under the
/// tiered engine).
const BOOT_OVERHEAD: u64 = 160 * MIB;
/// Allowed growth of the MMIO hammer over an idle guest (measured: ~2 MiB, its code and TLBs).
const HAMMER_GROWTH: u64 = 8 * MIB;
/// Allowed growth from 40k to 400k hammer rounds (measured: none).
const HAMMER_PER_ROUNDS: u64 = MIB;

fn roms() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-roms/riscv64-virt");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("virt-roms-resource-bounds");
        let o = Command::new("make")
            .arg("-C")
            .arg(&src)
            .arg(format!("OUT={}", out.display()))
            .output()
            .expect("could not run make (test-roms/riscv64-virt needs make and riscv64-unknown-elf-gcc)");
        assert!(
            o.status.success(),
            "building test-roms/riscv64-virt failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        out
    })
}

/// A finished emu run: exit status, stdout, stderr and peak RSS in bytes.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    peak_rss: u64,
}

/// Run emu to its end (or kill it after `timeout`) and take its peak RSS from `wait4`.
// wait4 reaps the child, so `Child::wait` is never called.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str], timeout: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not start emu");
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (Child::wait is never called);
        // `status` and `usage` are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(r >= 0, "wait4: {}", std::io::Error::last_os_error());
        if r == pid {
            break;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Run {
        code,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
        // Linux reports ru_maxrss in KiB.
        peak_rss: usage.ru_maxrss as u64 * 1024,
    }
}

fn guest_dir() -> PathBuf {
    let dir = common::guest_dir();
    assert!(
        dir.join("Image").is_file() && dir.join("initrd.gz").is_file(),
        "the Debian guest files are missing in {}: run `scripts/debian-guest.sh riscv64` first",
        dir.display()
    );
    dir
}

#[test]
fn a_debian_boot_stays_within_guest_ram_plus_overhead() {
    let dir = guest_dir();
    let (kernel, initrd) = (dir.join("Image"), dir.join("initrd.gz"));
    let ram = 256 * MIB;
    let r = run_measured(
        &[
            "--arch",
            "riscv64",
            "-M",
            "virt",
            "-m",
            "256M",
            "-kernel",
            kernel.to_str().unwrap(),
            "-initrd",
            initrd.to_str().unwrap(),
            "-serial",
            "stdio",
            "-append",
            "console=ttyS0 emu.test=poweroff",
        ],
        Duration::from_secs(300),
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, r.stdout);
    assert!(r.stdout.contains("reboot: Power down"), "{}", r.stdout);
    eprintln!("Debian boot, -m 256M: peak RSS {} MiB", r.peak_rss / MIB);
    assert!(
        r.peak_rss <= ram + BOOT_OVERHEAD,
        "peak RSS {} MiB is more than the guest's {} MiB + {} MiB overhead",
        r.peak_rss / MIB,
        ram / MIB,
        BOOT_OVERHEAD / MIB
    );
}

#[test]
fn hammering_mmio_and_doorbells_does_not_grow_host_memory() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("resource_bounds");
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("disk.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let drive = format!("file={},format=raw,if=virtio", img.display());
    let run = |prog: &str, extra: &[&str]| {
        let elf = roms().join(prog);
        let mut args = vec![
            "--arch",
            "riscv64",
            "-M",
            "virt",
            "-m",
            "64M",
            "-bios",
            "none",
            "-kernel",
            elf.to_str().unwrap(),
            "-drive",
            &drive,
            "-device",
            "virtio-rng-device",
            "-serial",
            "stdio",
        ];
        args.extend_from_slice(extra);
        run_measured(&args, Duration::from_secs(120))
    };
    // Baseline: a guest that stops at once (blkcrash without its parameter block exits 3).
    let idle = run("blkcrash.elf", &[]);
    assert!(idle.stdout.contains("NO PARAMS"), "{}", idle.stdout);
    let short = run("hammer-short.elf", &[]);
    let hammer = run("hammer.elf", &[]);
    for r in [&short, &hammer] {
        assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, r.stdout);
        assert!(r.stdout.contains("HAMMER DONE"), "{}", r.stdout);
    }
    eprintln!(
        "peak RSS: idle guest {} KiB, MMIO hammer 40k rounds {} KiB, 400k rounds {} KiB",
        idle.peak_rss / 1024,
        short.peak_rss / 1024,
        hammer.peak_rss / 1024
    );
    assert!(
        hammer.peak_rss <= idle.peak_rss + HAMMER_GROWTH,
        "hammering MMIO grew emu from {} KiB to {} KiB",
        idle.peak_rss / 1024,
        hammer.peak_rss / 1024
    );
    // Ten times the device accesses, the same memory: nothing is kept per access.
    assert!(
        hammer.peak_rss <= short.peak_rss + HAMMER_PER_ROUNDS,
        "400k hammer rounds took {} KiB, 40k rounds {} KiB",
        hammer.peak_rss / 1024,
        short.peak_rss / 1024
    );
}
