//! The contract kvm-unit-tests' runner (scripts/arch-run.bash, riscv/run) has with its QEMU,
//! shown on a fake test program: the runner's `--help | grep QEMU` probe finds emu; the program
//! prints through SBI DBCN (SBI spec v2.0 §12) and shuts down through SBI SRST (§10); emu passes
//! the console bytes through unchanged, prints nothing on stderr and exits with status 0, and
//! the test's `EXIT: STATUS=N` line gives the result; a missing kernel is `could not load kernel
//! '<path>'`.

mod common;

use emu_firmware::testing::rv;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::emu;

fn temp_dir(test: &str) -> PathBuf {
    common::temp_dir("kvm_unit_tests_contract", test)
}

const A0: u32 = 10;
const A1: u32 = 11;
const A2: u32 = 12;
const A6: u32 = 16;
const A7: u32 = 17;
const ECALL: u32 = 0x0000_0073;

/// `lui rd, imm20` (Unprivileged ISA §2.4).
fn lui(rd: u32, imm20: u32) -> u32 {
    ((imm20 & 0xf_ffff) << 12) | (rd << 7) | 0x37
}

/// A position-independent S-mode program (a raw binary, like kvm-unit-tests' `.flat` files)
/// that writes `text` with SBI DBCN `sbi_debug_console_write` (EID 0x4442434E, FID 0) and then
/// calls SBI SRST `sbi_system_reset(SHUTDOWN, NO_REASON)` (EID 0x53525354, FID 0), as
/// kvm-unit-tests' riscv `exit()` does after printing `EXIT: STATUS=`.
fn flat_program(text: &str) -> Vec<u8> {
    assert!(text.len() < 2048);
    let code = [
        rv::auipc(A1, 0),
        rv::addi(A1, A1, 0), // patched: offset of the text from the auipc
        rv::addi(A0, 0, text.len() as i32),
        rv::addi(A2, 0, 0),
        lui(A7, 0x44424),
        rv::addi(A7, A7, 0x34e),
        rv::addi(A6, 0, 0),
        ECALL,
        lui(A7, 0x53525),
        rv::addi(A7, A7, 0x354),
        rv::addi(A6, 0, 0),
        rv::addi(A0, 0, 0),
        rv::addi(A1, 0, 0),
        ECALL,
        rv::SPIN,
    ];
    let mut code = code.to_vec();
    code[1] = rv::addi(A1, A1, (code.len() * 4) as i32);
    let mut bytes = rv::assemble(&code);
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// What kvm-unit-tests makes of a run (scripts/arch-run.bash): `run_qemu` turns a zero exit
/// status with no stderr into 1 ("exiting with zero (non-debugexit) is an error"), a status of 1
/// with stderr into a failure; `run_qemu_status` then reads `EXIT: STATUS=N` from stdout when the
/// status is 1: N == 1 passes (0), any other N is the result. riscv's `exit(code)` prints
/// STATUS=`(code << 1) | 1`.
fn kvm_unit_tests_result(o: &Output) -> i32 {
    let stderr = String::from_utf8_lossy(&o.stderr);
    let mut ret = o.status.code().unwrap_or(128);
    if ret == 0 {
        ret = 1;
    }
    if ret == 1 && !stderr.is_empty() {
        return 1;
    }
    if ret == 1 {
        let stdout = String::from_utf8_lossy(&o.stdout);
        let status = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("EXIT: STATUS="))
            .filter_map(|n| n.trim().parse::<i32>().ok())
            .next_back();
        if let Some(n) = status {
            ret = if n == 1 { 0 } else { n };
        }
    }
    ret
}

/// riscv/run's command line (QEMU options as the runner spells them), then `-kernel`.
fn runner_args<'a>(extra: &[&'a str], kernel: &'a str) -> Vec<&'a str> {
    let mut a = vec![
        "-nodefaults",
        "-nographic",
        "-serial",
        "mon:stdio",
        "-machine",
        "virt",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-smp",
        "1",
        "-m",
        "256",
    ];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["-kernel", kernel]);
    a
}

#[test]
fn help_passes_the_runners_qemu_probe() {
    // search_qemu_binary: `$qemucmd --help 2>/dev/null | grep -q 'QEMU'`.
    let o = emu(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("QEMU"));
}

#[test]
fn sbi_shutdown_passes_the_exit_line_through_with_status_0() {
    let dir = temp_dir("builtin_sbi");
    for (code, expect) in [(0, 0), (1, 3)] {
        let status = (code << 1) | 1;
        let text = format!("hello from the test\n\nEXIT: STATUS={status}\n");
        let prog = dir.join(format!("exit{code}.flat"));
        std::fs::write(&prog, flat_program(&text)).unwrap();
        let prog = prog.to_str().unwrap();
        for engine in ["interp", "jit"] {
            let o = emu(&[runner_args(&["--engine", engine], prog).as_slice(), &[]].concat());
            let what = format!("exit({code}) on {engine}");
            assert_eq!(
                String::from_utf8_lossy(&o.stderr),
                "",
                "{what}: stderr is not empty"
            );
            assert_eq!(o.status.code(), Some(0), "{what}");
            assert_eq!(String::from_utf8_lossy(&o.stdout), text, "{what}");
            assert_eq!(kvm_unit_tests_result(&o), expect, "{what}");
        }
    }
}

#[test]
fn runner_extras_initrd_append_and_smp() {
    // riscv/run adds the environment file as `-initrd` and the test's arguments as `-append`;
    // unittests.cfg asks for `-smp` > 1 for some tests (the other harts stay stopped, SBI HSM).
    let dir = temp_dir("extras");
    let env = dir.join("env");
    std::fs::write(&env, "KVM_UNIT_TESTS=1\n").unwrap();
    let text = "args ok\nEXIT: STATUS=1\n";
    let prog = dir.join("t.flat");
    std::fs::write(&prog, flat_program(text)).unwrap();
    let env = env.to_str().unwrap();
    let extra = ["-initrd", env, "-append", "-foo bar", "-smp", "2"];
    let o = emu(&runner_args(&extra, prog.to_str().unwrap()));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stdout), text);
    assert_eq!(kvm_unit_tests_result(&o), 0);
}

#[test]
fn sbi_shutdown_under_opensbi() {
    let fw = match std::env::var_os("HOME") {
        Some(h) => Path::new(&h).join(".cache/emu-guest/riscv64/current/fw_dynamic.bin"),
        None => return,
    };
    if !fw.exists() {
        let msg = format!("no OpenSBI at {} (run scripts/setup.sh)", fw.display());
        // CI provisions it (scripts/test.sh runs scripts/setup.sh): never a silent pass there.
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("skipped: {msg}");
        return;
    }
    let dir = temp_dir("opensbi");
    let text = "under OpenSBI\n\nEXIT: STATUS=5\n";
    let prog = dir.join("exit2.flat");
    std::fs::write(&prog, flat_program(text)).unwrap();
    let fw = fw.to_str().unwrap();
    let o = emu(&runner_args(&["-bios", fw], prog.to_str().unwrap()));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    // OpenSBI's banner comes first; the test's text ends the output (OpenSBI's console adds
    // '\r' before each '\n', as it does under QEMU).
    assert!(stdout.contains("OpenSBI"), "{stdout}");
    assert!(stdout.ends_with(&text.replace('\n', "\r\n")), "{stdout:?}");
    assert_eq!(kvm_unit_tests_result(&o), 5);
}

#[test]
fn a_missing_kernel_says_could_not_load_kernel() {
    let dir = temp_dir("missing");
    let missing = dir.join("nope.flat");
    let missing = missing.to_str().unwrap();
    let o = emu(&runner_args(&[], missing));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.contains(&format!("could not load kernel '{missing}'")),
        "{err:?}"
    );
    assert_ne!(kvm_unit_tests_result(&o), 0);
}
