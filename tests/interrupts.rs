//! CLINT interrupts through the whole machine: the run loop's budget ends at the timer
//! deadline, WFI sleeps through virtual time to it, MSIP fires at once. The trap handler of
//! `trap_exit_program` exits with `mcause << 1 | 1`; for an interrupt the top bit is shifted
//! out, so the exit code is the interrupt number (MTI = 7, MSI = 3).

use emu_firmware::testing::{rv, trap_exit_program};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const T1: u32 = 6;
const T2: u32 = 7;
const CSR_MSTATUS: u32 = 0x300;
const CSR_MIE: u32 = 0x304;
const MSTATUS_MIE: i32 = 1 << 3;
const MIE_MSIE: i32 = 1 << 3;
const MIE_MTIE: i32 = 1 << 7;
/// `j -4`
const JUMP_BACK: u32 = 0xffdf_f06f;

/// `lui rd, imm20`
fn lui(rd: u32, imm20: u32) -> u32 {
    ((imm20 & 0xf_ffff) << 12) | ((rd & 31) << 7) | 0x37
}
/// `csrrs x0, csr, rs1` (`csrs`)
fn csrs(csr: u32, rs1: u32) -> u32 {
    rv::itype(0x73, 2, 0, rs1, csr as i32)
}

/// Enable `mie_bits` and mstatus.MIE.
fn enable(mie_bits: i32) -> Vec<u32> {
    vec![
        rv::addi(T2, 0, mie_bits),
        rv::csrw(CSR_MIE, T2),
        rv::addi(T2, 0, MSTATUS_MIE),
        csrs(CSR_MSTATUS, T2),
    ]
}

/// mtimecmp (hart 0) = `ticks`.
fn arm_timer(ticks: i32) -> Vec<u32> {
    vec![
        lui(T1, 0x2004), // t1 = 0x0200_4000
        rv::addi(T2, 0, ticks),
        rv::sd(T2, T1, 0),
    ]
}

fn emu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(args)
        .output()
        .expect("could not start the emu binary")
}

fn program(test: &str, body: &[u32]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interrupts");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{test}.elf"));
    std::fs::write(&p, trap_exit_program(body)).unwrap();
    p
}

fn assert_exits_with(p: &Path, code: i32) {
    for engine in ["interp", "jit", "tiered"] {
        let o = emu(&[
            "--arch",
            "riscv64",
            "--engine",
            engine,
            "--max-insns",
            "10000000",
            p.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{} [{engine}]: {err}",
            p.display()
        );
        assert_eq!(err, format!("*** FAILED *** (tohost = {code})\n"));
    }
}

#[test]
fn timer_interrupt_while_spinning() {
    let mut body = arm_timer(100);
    body.extend(enable(MIE_MTIE));
    // trap_exit_program appends a spin loop after the body.
    assert_exits_with(&program("timer_spin", &body), 7);
}

#[test]
fn wfi_sleeps_until_the_timer() {
    let mut body = arm_timer(2000);
    body.extend(enable(MIE_MTIE));
    body.extend([rv::WFI, JUMP_BACK]);
    let p = program("timer_wfi", &body);
    assert_exits_with(&p, 7);
    // The sleep costs virtual time, not instructions: 2000 ticks are 200 us = 200,000
    // instructions' worth, yet the program needs only a few.
    let o = emu(&[
        "--arch",
        "riscv64",
        "--max-insns",
        "10000",
        p.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn wfi_wakes_on_a_pending_but_globally_disabled_interrupt() {
    // MTIE set but mstatus.MIE clear: WFI wakes (Privileged ISA §3.3.3), no trap is taken,
    // and the program then exits through a software interrupt after enabling MIE.
    let mut body = arm_timer(50);
    body.extend([
        rv::addi(T2, 0, MIE_MTIE | MIE_MSIE),
        rv::csrw(CSR_MIE, T2),
        rv::WFI,
    ]);
    // Now raise MSIP; MSI has priority below MTI (§3.1.9: MEI, MSI, MTI order), so with both
    // pending the trap taken is MSI = 3.
    body.extend([lui(T1, 0x2000), rv::addi(T2, 0, 1), sw(T2, T1, 0)]);
    body.extend([rv::addi(T2, 0, MSTATUS_MIE), csrs(CSR_MSTATUS, T2)]);
    assert_exits_with(&program("wfi_wake", &body), 3);
}

/// `sw rs2, imm(rs1)`
fn sw(rs2: u32, rs1: u32, imm: i32) -> u32 {
    let imm = imm as u32 & 0xfff;
    ((imm >> 5) << 25)
        | ((rs2 & 31) << 20)
        | ((rs1 & 31) << 15)
        | (2 << 12)
        | ((imm & 31) << 7)
        | 0x23
}

#[test]
fn software_interrupt_through_msip() {
    let mut body = vec![lui(T1, 0x2000), rv::addi(T2, 0, 1), sw(T2, T1, 0)];
    body.extend(enable(MIE_MSIE));
    assert_exits_with(&program("msip", &body), 3);
}
