//! `-d` tracing on test ROMs: in_asm shows the disassembled first instructions, int shows the
//! traps taken, exec prints exactly one line per block run (on every engine), cpu, op,
//! guest_errors and unimp show what they name, and -D sends it all to a file.
//!
//! Builds the ROMs with `make -C test-roms/riscv64` (needs riscv64-unknown-elf-gcc, the Debian
//! package gcc-riscv64-unknown-elf); without it the tests are skipped with a message, except
//! in CI (`CI` set), where they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

fn roms() -> Option<&'static PathBuf> {
    static OUT: OnceLock<Option<PathBuf>> = OnceLock::new();
    OUT.get_or_init(|| {
        let have_gcc = Command::new("riscv64-unknown-elf-gcc")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
        if !have_gcc {
            let msg = "riscv64-unknown-elf-gcc is not installed (apt-get install \
                       gcc-riscv64-unknown-elf)";
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            eprintln!("skipped: {msg}");
            return None;
        }
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = tmp.parent().unwrap_or(tmp).join("test-roms");
        let o = Command::new("make")
            .arg("-C")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("test-roms/riscv64"))
            .arg(format!("OUT={}", out.display()))
            .output()
            .expect("make");
        assert!(
            o.status.success(),
            "building the ROMs failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Some(out)
    })
    .as_ref()
}

/// Run a ROM with extra arguments; (exit code, stdout, stderr).
fn emu(rom: &str, args: &[&str]) -> Option<(Option<i32>, String, String)> {
    let elf = roms()?.join(format!("{rom}.elf"));
    let o = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(args)
        .args(["--max-insns", "50000000"])
        .arg(elf)
        .stdin(Stdio::null())
        .output()
        .expect("run emu");
    Some((
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    ))
}

#[test]
fn in_asm_disassembles_each_new_block() {
    let Some((code, out, err)) = emu("hello", &["-d", "in_asm"]) else {
        return;
    };
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "Hello from emu test-roms (rv64gc)\n");
    // The ROM's first instructions (test_macros.h: la t0, trap_vector; csrw mtvec, t0).
    let first: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("IN:"))
        .skip(1)
        .take(3)
        .collect();
    assert_eq!(first.len(), 3, "{err}");
    assert!(
        first[0].starts_with("0x0000000080000000:  00000297"),
        "{err}"
    );
    assert!(first[0].contains("auipc"), "{err}");
    assert!(first[1].contains("addi"), "{err}");
    assert!(
        first[2].contains("csrw") && first[2].contains("mtvec"),
        "{err}"
    );
    // One IN: per translation, and a block is translated once here.
    let blocks = err.matches("IN:").count();
    let (_, _, stats) = emu("hello", &["-d", "in_asm", "--stats"]).unwrap_or_default();
    let translated = stat(&stats, "blocks: ", " translated");
    assert_eq!(Some(blocks as u64), translated, "{stats}");
    if cfg!(target_os = "linux") {
        // The vCPU thread (the main thread, named after the binary) has run the guest.
        let cpu = stats
            .lines()
            .find_map(|l| l.split_once("host CPU time per thread: "))
            .map(|(_, list)| list.to_string())
            .unwrap_or_default();
        assert!(cpu.contains("emu") && cpu.contains(" ms"), "{stats}");
    }
}

#[test]
fn int_shows_each_trap_and_d_file_takes_the_output() {
    let Some(out_dir) = roms() else {
        return;
    };
    let log = out_dir.join("trace-int.log");
    let log_s = log.to_string_lossy().into_owned();
    let (code, _, err) = emu("priv-traps", &["-d", "int", "-D", &log_s]).unwrap_or_default();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !err.contains("riscv_cpu_do_interrupt"),
        "-D: nothing on stderr"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let traps: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("riscv_cpu_do_interrupt: hart:0, async:0"))
        .collect();
    assert!(traps.len() > 5, "{text}");
    assert!(
        traps.iter().any(|l| l.contains("desc=illegal_instruction")),
        "{text}"
    );
    assert!(
        traps.iter().any(|l| l.contains("desc=machine_ecall")),
        "{text}"
    );
    assert!(
        traps
            .iter()
            .all(|l| l.contains(", epc:0x") && l.contains(", tval:0x") && l.contains(", priv:")),
        "{text}"
    );
}

/// `emu: stats: ... <before>N<after>` → N.
fn stat(stats: &str, before: &str, after: &str) -> Option<u64> {
    let line = stats.lines().find(|l| l.starts_with("emu: stats:"))?;
    let rest = &line[line.find(before)? + before.len()..];
    rest[..rest.find(after)?].trim().parse().ok()
}

#[test]
fn exec_prints_one_line_per_block_run_on_every_engine() {
    for engine in ["interp", "jit", "tiered"] {
        let Some((code, _, err)) = emu(
            "rv64i-branch",
            &["--engine", engine, "-d", "exec", "--stats"],
        ) else {
            return;
        };
        assert_eq!(code, Some(0), "{engine}: {err}");
        let lines = err.lines().filter(|l| l.starts_with("Trace 0: ")).count() as u64;
        let interp = stat(&err, "runs: ", " interpreted");
        let native = stat(&err, "interpreted, ", " native");
        let (Some(interp), Some(native)) = (interp, native) else {
            panic!("{engine}: no stats in {err}");
        };
        assert!(lines > 100, "{engine}: {lines}");
        assert_eq!(
            lines,
            interp + native,
            "{engine}: every block run is traced"
        );
        assert!(
            err.contains("Trace 0: 0x0 [00000000/0000000080000000/"),
            "{engine}"
        );
        if engine == "jit" {
            assert_eq!(interp, 0);
        }
    }
}

#[test]
fn cpu_op_guest_errors_and_unimp() {
    let Some((code, _, err)) = emu("hello", &["-d", "cpu,op"]) else {
        return;
    };
    assert_eq!(code, Some(0), "{err}");
    // Registers before the first block, after its translation (op).
    let first_dump = err.find(" pc       0000000080000000\n");
    let first_op = err.find("OP after optimization:");
    assert!(first_op.is_some() && first_dump > first_op, "{err}");
    assert!(err.contains(" x10/a0    "), "{err}");
    assert!(
        err.contains("OP after optimization:\nblock pc=0x80000000"),
        "{err}"
    );

    let (_, _, err) = emu("priv-traps", &["-d", "guest_errors"]).unwrap_or_default();
    assert!(
        err.contains("guest error: hart 0: load from unmapped physical address 0x40000000"),
        "{err}"
    );
    let (_, _, err) = emu("rv64-encodings", &["-d", "unimp"]).unwrap_or_default();
    assert!(
        err.contains("unimplemented: hart 0: instruction 0x04000053 at pc 0x"),
        "{err}"
    );
}

#[test]
fn d_help_and_bad_items() {
    let o = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(["-d", "help"])
        .output()
        .expect("run emu");
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    for item in [
        "in_asm",
        "op",
        "int",
        "exec",
        "cpu",
        "guest_errors",
        "unimp",
    ] {
        assert!(
            help.lines().any(|l| l.starts_with(item)),
            "{item} in {help}"
        );
    }
    let Some((code, _, err)) = emu("hello", &["-d", "in_asm,bogus"]) else {
        return;
    };
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown log item 'bogus'"), "{err}");
}
