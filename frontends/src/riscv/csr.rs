//! Control and status registers (Privileged ISA ch. 2–4; Zicsr, Zicntr, Sstc) as a table of
//! {number, name, predicate, read, write}, after QEMU 7.2 `target/riscv/csr.c`.

use std::sync::OnceLock;

use emu_jit::env::CpuCommon;
use emu_jit::helper::{state_of, HelperDef};
use emu_jit::ir::HelperEffects;

use super::cpu::{Privilege, RiscvCpu};
use super::pmp::{Pmp, PMP_ENTRIES};
use super::trap::Exception;

// mstatus fields (§3.1.6, Figure 3.7).
pub const MSTATUS_SIE: u64 = 1 << 1;
pub const MSTATUS_MIE: u64 = 1 << 3;
pub const MSTATUS_SPIE: u64 = 1 << 5;
pub const MSTATUS_MPIE: u64 = 1 << 7;
pub const MSTATUS_SPP: u64 = 1 << 8;
pub const MSTATUS_MPP_SHIFT: u32 = 11;
pub const MSTATUS_MPP: u64 = 3 << MSTATUS_MPP_SHIFT;
pub const MSTATUS_FS_SHIFT: u32 = 13;
pub const MSTATUS_FS: u64 = 3 << MSTATUS_FS_SHIFT;
pub const MSTATUS_XS: u64 = 3 << 15;
pub const MSTATUS_MPRV: u64 = 1 << 17;
pub const MSTATUS_SUM: u64 = 1 << 18;
pub const MSTATUS_MXR: u64 = 1 << 19;
pub const MSTATUS_TVM: u64 = 1 << 20;
pub const MSTATUS_TW: u64 = 1 << 21;
pub const MSTATUS_TSR: u64 = 1 << 22;
pub const MSTATUS_UXL: u64 = 3 << 32;
pub const MSTATUS_SXL: u64 = 3 << 34;
pub const MSTATUS_SD: u64 = 1 << 63;

/// mstatus.FS values (§3.1.6.6, Table 3.3).
pub const FS_OFF: u64 = 0;
pub const FS_DIRTY: u64 = 3;

/// Interrupt numbers (Table 3.6) and their mip/mie bits.
pub const IRQ_S_SOFT: u64 = 1;
pub const IRQ_M_SOFT: u64 = 3;
pub const IRQ_S_TIMER: u64 = 5;
pub const IRQ_M_TIMER: u64 = 7;
pub const IRQ_S_EXT: u64 = 9;
pub const IRQ_M_EXT: u64 = 11;
pub const MIP_SSIP: u64 = 1 << IRQ_S_SOFT;
pub const MIP_MSIP: u64 = 1 << IRQ_M_SOFT;
pub const MIP_STIP: u64 = 1 << IRQ_S_TIMER;
pub const MIP_MTIP: u64 = 1 << IRQ_M_TIMER;
pub const MIP_SEIP: u64 = 1 << IRQ_S_EXT;
pub const MIP_MEIP: u64 = 1 << IRQ_M_EXT;
const S_MODE_INTERRUPTS: u64 = MIP_SSIP | MIP_STIP | MIP_SEIP;
const ALL_INTERRUPTS: u64 = S_MODE_INTERRUPTS | MIP_MSIP | MIP_MTIP | MIP_MEIP;

/// medeleg's writable bits, as QEMU 7.2 (`DELEGABLE_EXCPS`): causes 0–11, the page faults
/// 12, 13, 15 and the hypervisor's 20–23. (The spec makes bit 11 read-only zero; delegating
/// it has no effect since M-mode traps are never delegated.)
const DELEGABLE_EXCEPTIONS: u64 = 0xfff | (1 << 12) | (1 << 13) | (1 << 15) | (0xf << 20);
/// mideleg's writable bits, as QEMU 7.2 (`delegable_ints`): the S-level interrupts, LCOFI
/// (13) and the VS-level ones (2, 6, 10), which never become pending without the H extension.
const DELEGABLE_INTERRUPTS: u64 = S_MODE_INTERRUPTS | (1 << 13) | 0x444;

/// menvcfg fields (§3.1.18) this hart implements: FIOM and Sstc's STCE.
pub const MENVCFG_FIOM: u64 = 1;
pub const MENVCFG_STCE: u64 = 1 << 63;

/// satp (§4.1.11): MODE, ASID (16 bits kept), PPN.
pub const SATP_MODE_SHIFT: u32 = 60;
pub const SATP_MODE_BARE: u64 = 0;
pub const SATP_MODE_SV39: u64 = 8;
pub const SATP_MODE_SV48: u64 = 9;
pub const SATP_MODE_SV57: u64 = 10;
pub const SATP_ASID: u64 = 0xffff << 44;
pub const SATP_PPN: u64 = (1 << 44) - 1;

/// Counter-enable bits (mcounteren/scounteren).
const COUNTEREN_TM: u64 = 1 << 1;

/// misa: MXL = 2 (RV64), I M A F D C S U (§3.1.1).
pub const MISA_VALUE: u64 = (2 << 62) | misa_ext(b"ACDFIMSU");

/// misa's extension bits for the given letters.
const fn misa_ext(letters: &[u8]) -> u64 {
    let mut bits = 0;
    let mut i = 0;
    while i < letters.len() {
        bits |= 1 << (letters[i] - b'A');
        i += 1;
    }
    bits
}

/// CSR state of one hart (fflags/frm live in `RiscvCpu`, where FP lifters reach them).
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct Csrs {
    pub mstatus: u64,
    pub misa: u64,
    pub medeleg: u64,
    pub mideleg: u64,
    pub mie: u64,
    /// Software-writable mip bits (SSIP, STIP, SEIP); device lines are ORed in on read.
    pub mip: u64,
    pub mtvec: u64,
    pub stvec: u64,
    pub mscratch: u64,
    pub sscratch: u64,
    pub mepc: u64,
    pub sepc: u64,
    pub mcause: u64,
    pub scause: u64,
    pub mtval: u64,
    pub stval: u64,
    pub satp: u64,
    pub mcounteren: u64,
    pub scounteren: u64,
    pub mcountinhibit: u64,
    pub menvcfg: u64,
    pub senvcfg: u64,
    pub stimecmp: u64,
    /// mcycle = insn_count + mcycle_offset (writes move the offset, never the count).
    pub mcycle_offset: u64,
    pub minstret_offset: u64,
    pub pmp: Pmp,
}

impl Csrs {
    /// Reset values (§3.4; QEMU `riscv_cpu_reset`).
    pub fn reset() -> Csrs {
        Csrs {
            mstatus: (2 << 32) | (2 << 34),
            misa: MISA_VALUE,
            stimecmp: u64::MAX,
            ..Csrs::default()
        }
    }
}

/// Why a CSR access is refused: always an illegal-instruction exception.
struct Refused;
type Pred = fn(&RiscvCpu, u16) -> Result<(), Refused>;
type ReadFn = fn(&mut RiscvCpu, u16) -> u64;
type WriteFn = fn(&mut RiscvCpu, u16, u64);

/// One row of the CSR table: numbers `first..=last` share the row.
struct CsrDef {
    first: u16,
    last: u16,
    name: &'static str,
    pred: Pred,
    read: ReadFn,
    write: WriteFn,
}

const fn csr(name: &'static str, num: u16, pred: Pred, read: ReadFn, write: WriteFn) -> CsrDef {
    CsrDef {
        first: num,
        last: num,
        name,
        pred,
        read,
        write,
    }
}

const fn csrs(
    name: &'static str,
    first: u16,
    last: u16,
    pred: Pred,
    read: ReadFn,
    write: WriteFn,
) -> CsrDef {
    CsrDef {
        first,
        last,
        name,
        pred,
        read,
        write,
    }
}

// ---- predicates (QEMU csr.c `fs`, `ctr`, `smode`, `sstc`, ...) ----

fn any(_: &RiscvCpu, _: u16) -> Result<(), Refused> {
    Ok(())
}

/// FP CSRs need mstatus.FS != Off (§3.1.6.6).
fn fs(cpu: &RiscvCpu, _: u16) -> Result<(), Refused> {
    if (cpu.csr.mstatus & MSTATUS_FS) >> MSTATUS_FS_SHIFT == FS_OFF {
        Err(Refused)
    } else {
        Ok(())
    }
}

/// cycle/time/instret/hpmcounterN from S need mcounteren, from U also scounteren (§3.1.11).
fn ctr(cpu: &RiscvCpu, num: u16) -> Result<(), Refused> {
    let bit = 1u64 << (num & 0x1f);
    let ok = match cpu.priv_level() {
        Privilege::Machine => true,
        Privilege::Supervisor => cpu.csr.mcounteren & bit != 0,
        Privilege::User => cpu.csr.mcounteren & cpu.csr.scounteren & bit != 0,
    };
    if ok {
        Ok(())
    } else {
        Err(Refused)
    }
}

/// satp in S-mode traps when mstatus.TVM (§3.1.6.5).
fn satp_pred(cpu: &RiscvCpu, _: u16) -> Result<(), Refused> {
    if cpu.priv_level() == Privilege::Supervisor && cpu.csr.mstatus & MSTATUS_TVM != 0 {
        Err(Refused)
    } else {
        Ok(())
    }
}

/// stimecmp (Sstc): from S only with mcounteren.TM and menvcfg.STCE.
fn sstc(cpu: &RiscvCpu, _: u16) -> Result<(), Refused> {
    if cpu.priv_level() == Privilege::Machine
        || (cpu.csr.mcounteren & COUNTEREN_TM != 0 && cpu.csr.menvcfg & MENVCFG_STCE != 0)
    {
        Ok(())
    } else {
        Err(Refused)
    }
}

/// RV64 has only the even pmpcfg registers (§3.7.1).
fn pmpcfg_pred(_: &RiscvCpu, num: u16) -> Result<(), Refused> {
    if num & 1 == 0 {
        Ok(())
    } else {
        Err(Refused)
    }
}

// ---- read/write functions ----

fn read_zero(_: &mut RiscvCpu, _: u16) -> u64 {
    0
}
fn write_ignore(_: &mut RiscvCpu, _: u16, _: u64) {}

macro_rules! plain {
    ($read:ident, $write:ident, $field:ident, $mask:expr) => {
        fn $read(cpu: &mut RiscvCpu, _: u16) -> u64 {
            cpu.csr.$field
        }
        fn $write(cpu: &mut RiscvCpu, _: u16, v: u64) {
            cpu.csr.$field = v & $mask;
        }
    };
}

plain!(read_mscratch, write_mscratch, mscratch, u64::MAX);
plain!(read_sscratch, write_sscratch, sscratch, u64::MAX);
plain!(read_mcause, write_mcause, mcause, u64::MAX);
plain!(read_scause, write_scause, scause, u64::MAX);
plain!(read_mtval, write_mtval, mtval, u64::MAX);
plain!(read_stval, write_stval, stval, u64::MAX);
plain!(read_mepc, write_mepc, mepc, !1);
plain!(read_sepc, write_sepc, sepc, !1);
plain!(read_medeleg, write_medeleg, medeleg, DELEGABLE_EXCEPTIONS);
plain!(read_mideleg, write_mideleg, mideleg, DELEGABLE_INTERRUPTS);
plain!(read_mie, write_mie, mie, ALL_INTERRUPTS);
plain!(read_mcounteren, write_mcounteren, mcounteren, 0xffff_ffff);
plain!(read_scounteren, write_scounteren, scounteren, 0xffff_ffff);
plain!(read_senvcfg, write_senvcfg, senvcfg, MENVCFG_FIOM);
plain!(
    read_menvcfg,
    write_menvcfg,
    menvcfg,
    MENVCFG_FIOM | MENVCFG_STCE
);
plain!(read_stimecmp, write_stimecmp, stimecmp, u64::MAX);

/// mstatus.SD summarizes FS/XS dirty (§3.1.6.6).
fn with_sd(s: u64) -> u64 {
    if s & MSTATUS_FS == MSTATUS_FS || s & MSTATUS_XS == MSTATUS_XS {
        s | MSTATUS_SD
    } else {
        s & !MSTATUS_SD
    }
}

fn read_mstatus(cpu: &mut RiscvCpu, _: u16) -> u64 {
    with_sd(cpu.csr.mstatus)
}

/// mstatus write (WARL, QEMU `write_mstatus`): UXL/SXL stay 2, MPP keeps its old value when
/// written the reserved 2. Changes of MPRV/MPP/SUM/MXR select another mmu_idx (see mmu.rs), so
/// no TLB flush is needed.
fn write_mstatus(cpu: &mut RiscvCpu, _: u16, v: u64) {
    const MASK: u64 = MSTATUS_SIE
        | MSTATUS_SPIE
        | MSTATUS_MIE
        | MSTATUS_MPIE
        | MSTATUS_SPP
        | MSTATUS_MPRV
        | MSTATUS_SUM
        | MSTATUS_MPP
        | MSTATUS_MXR
        | MSTATUS_TVM
        | MSTATUS_TSR
        | MSTATUS_TW
        | MSTATUS_FS;
    let old = cpu.csr.mstatus;
    let mut new = (old & !MASK) | (v & MASK);
    if (new & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT == 2 {
        new = (new & !MSTATUS_MPP) | (old & MSTATUS_MPP);
    }
    cpu.csr.mstatus = with_sd(new);
}

/// The sstatus view of mstatus (§4.1.1).
const SSTATUS_READ: u64 = MSTATUS_SIE
    | MSTATUS_SPIE
    | MSTATUS_SPP
    | MSTATUS_FS
    | MSTATUS_XS
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_UXL
    | MSTATUS_SD;
const SSTATUS_WRITE: u64 =
    MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR;

fn read_sstatus(cpu: &mut RiscvCpu, n: u16) -> u64 {
    read_mstatus(cpu, n) & SSTATUS_READ
}
fn write_sstatus(cpu: &mut RiscvCpu, n: u16, v: u64) {
    let m = cpu.csr.mstatus;
    write_mstatus(cpu, n, (m & !SSTATUS_WRITE) | (v & SSTATUS_WRITE));
}

fn read_misa(_: &mut RiscvCpu, _: u16) -> u64 {
    MISA_VALUE
}

fn read_mip(cpu: &mut RiscvCpu, _: u16) -> u64 {
    cpu.effective_mip()
}
/// mip: SSIP, STIP (unless Sstc drives it) and SEIP are writable from M (QEMU `rmw_mip64`);
/// MEIP/MTIP/MSIP come from device lines.
fn write_mip(cpu: &mut RiscvCpu, _: u16, v: u64) {
    let mut mask = S_MODE_INTERRUPTS;
    if cpu.csr.menvcfg & MENVCFG_STCE != 0 {
        mask &= !MIP_STIP;
    }
    cpu.csr.mip = (cpu.csr.mip & !mask) | (v & mask);
}
fn read_sip(cpu: &mut RiscvCpu, _: u16) -> u64 {
    cpu.effective_mip() & cpu.csr.mideleg
}
/// sip: only SSIP is writable, and only when delegated (§4.1.3).
fn write_sip(cpu: &mut RiscvCpu, _: u16, v: u64) {
    let mask = MIP_SSIP & cpu.csr.mideleg;
    cpu.csr.mip = (cpu.csr.mip & !mask) | (v & mask);
}
fn read_sie(cpu: &mut RiscvCpu, _: u16) -> u64 {
    cpu.csr.mie & cpu.csr.mideleg
}
fn write_sie(cpu: &mut RiscvCpu, _: u16, v: u64) {
    let mask = cpu.csr.mideleg & S_MODE_INTERRUPTS;
    cpu.csr.mie = (cpu.csr.mie & !mask) | (v & mask);
}

/// xtvec: MODE 0 (direct) and 1 (vectored); a reserved mode keeps the old value (QEMU).
fn read_mtvec(cpu: &mut RiscvCpu, _: u16) -> u64 {
    cpu.csr.mtvec
}
fn write_mtvec(cpu: &mut RiscvCpu, _: u16, v: u64) {
    if v & 3 < 2 {
        cpu.csr.mtvec = v;
    }
}
fn read_stvec(cpu: &mut RiscvCpu, _: u16) -> u64 {
    cpu.csr.stvec
}
fn write_stvec(cpu: &mut RiscvCpu, _: u16, v: u64) {
    if v & 3 < 2 {
        cpu.csr.stvec = v;
    }
}

fn read_satp(cpu: &mut RiscvCpu, _: u16) -> u64 {
    cpu.csr.satp
}
/// satp (§4.1.11): a write with an unsupported MODE is ignored entirely; any change flushes
/// the TLB (QEMU flushes on ASID changes; flushing on every change also covers PPN/MODE),
/// except global translations while MODE stays: they are valid in every address space
/// (§4.3.1), so a context switch keeps the kernel's.
fn write_satp(cpu: &mut RiscvCpu, _: u16, v: u64) {
    let mode = v >> SATP_MODE_SHIFT;
    if !matches!(
        mode,
        SATP_MODE_BARE | SATP_MODE_SV39 | SATP_MODE_SV48 | SATP_MODE_SV57
    ) {
        return;
    }
    let new = v & ((0xf << SATP_MODE_SHIFT) | SATP_ASID | SATP_PPN);
    if new != cpu.csr.satp {
        let same_mode = (new ^ cpu.csr.satp) >> SATP_MODE_SHIFT == 0;
        cpu.csr.satp = new;
        if same_mode {
            cpu.tlb_flush_non_global();
        } else {
            cpu.tlb_flush_all();
        }
    }
}

fn read_fflags(cpu: &mut RiscvCpu, _: u16) -> u64 {
    cpu.fflags & 0x1f
}
fn write_fflags(cpu: &mut RiscvCpu, _: u16, v: u64) {
    cpu.mark_fs_dirty();
    cpu.fflags = v & 0x1f;
}
fn read_frm(cpu: &mut RiscvCpu, _: u16) -> u64 {
    cpu.frm & 7
}
fn write_frm(cpu: &mut RiscvCpu, _: u16, v: u64) {
    cpu.mark_fs_dirty();
    cpu.frm = v & 7;
}
fn read_fcsr(cpu: &mut RiscvCpu, _: u16) -> u64 {
    ((cpu.frm & 7) << 5) | (cpu.fflags & 0x1f)
}
fn write_fcsr(cpu: &mut RiscvCpu, _: u16, v: u64) {
    cpu.mark_fs_dirty();
    cpu.frm = (v >> 5) & 7;
    cpu.fflags = v & 0x1f;
}

/// mcountinhibit bits (§3.1.12): CY stops mcycle, IR stops minstret.
const MCOUNTINHIBIT_CY: u64 = 1 << 0;
const MCOUNTINHIBIT_IR: u64 = 1 << 2;

/// mcycle and minstret both count retired instructions (one cycle each): the value is
/// `insn_count + offset`, or while inhibited, the frozen value kept in `offset`. Writes (to the
/// counter or to mcountinhibit) take effect after the writing instruction retires (§3.1.10,
/// as Spike does), so that instruction is counted before the change.
fn counter_read(count: u64, offset: u64, inhibited: bool) -> u64 {
    if inhibited {
        offset
    } else {
        count.wrapping_add(offset)
    }
}
fn counter_write(count: u64, v: u64, inhibited: bool) -> u64 {
    if inhibited {
        v
    } else {
        v.wrapping_sub(count.wrapping_add(1))
    }
}

fn read_cycle(cpu: &mut RiscvCpu, _: u16) -> u64 {
    let inhibited = cpu.csr.mcountinhibit & MCOUNTINHIBIT_CY != 0;
    counter_read(cpu.common.insn_count, cpu.csr.mcycle_offset, inhibited)
}
fn write_mcycle(cpu: &mut RiscvCpu, _: u16, v: u64) {
    let inhibited = cpu.csr.mcountinhibit & MCOUNTINHIBIT_CY != 0;
    cpu.csr.mcycle_offset = counter_write(cpu.common.insn_count, v, inhibited);
}
fn read_instret(cpu: &mut RiscvCpu, _: u16) -> u64 {
    let inhibited = cpu.csr.mcountinhibit & MCOUNTINHIBIT_IR != 0;
    counter_read(cpu.common.insn_count, cpu.csr.minstret_offset, inhibited)
}
fn write_minstret(cpu: &mut RiscvCpu, _: u16, v: u64) {
    let inhibited = cpu.csr.mcountinhibit & MCOUNTINHIBIT_IR != 0;
    cpu.csr.minstret_offset = counter_write(cpu.common.insn_count, v, inhibited);
}

fn read_mcountinhibit(cpu: &mut RiscvCpu, _: u16) -> u64 {
    cpu.csr.mcountinhibit
}
/// Changing CY/IR freezes or restarts the counter at its value after this instruction.
fn write_mcountinhibit(cpu: &mut RiscvCpu, _: u16, v: u64) {
    let count = cpu.common.insn_count;
    let old = cpu.csr.mcountinhibit;
    let new = v & 0xffff_fffd;
    for (bit, offset) in [
        (MCOUNTINHIBIT_CY, &mut cpu.csr.mcycle_offset),
        (MCOUNTINHIBIT_IR, &mut cpu.csr.minstret_offset),
    ] {
        let (was, is) = (old & bit != 0, new & bit != 0);
        if was != is {
            let after = counter_read(count.wrapping_add(1), *offset, was);
            *offset = counter_write(count, after, is);
        }
    }
    cpu.csr.mcountinhibit = new;
}
fn read_time(cpu: &mut RiscvCpu, _: u16) -> u64 {
    cpu.mtime()
}

fn read_mhartid(cpu: &mut RiscvCpu, _: u16) -> u64 {
    cpu.hart_id
}

/// pmpcfgN (even N) packs entries 4N..4N+8 (RV64, §3.7.1); entries past 16 read zero.
fn read_pmpcfg(cpu: &mut RiscvCpu, num: u16) -> u64 {
    let first = usize::from(num - 0x3a0) * 4;
    (0..8).fold(0, |acc, k| {
        let b = cpu.csr.pmp.cfg(first + k);
        acc | (u64::from(b) << (8 * k))
    })
}
fn write_pmpcfg(cpu: &mut RiscvCpu, num: u16, v: u64) {
    let first = usize::from(num - 0x3a0) * 4;
    for k in 0..8 {
        if first + k < PMP_ENTRIES {
            cpu.csr.pmp.write_cfg(first + k, (v >> (8 * k)) as u8);
        }
    }
    cpu.tlb_flush_all();
}
fn read_pmpaddr(cpu: &mut RiscvCpu, num: u16) -> u64 {
    cpu.csr.pmp.read_addr(usize::from(num - 0x3b0))
}
fn write_pmpaddr(cpu: &mut RiscvCpu, num: u16, v: u64) {
    cpu.csr.pmp.write_addr(usize::from(num - 0x3b0), v);
    cpu.tlb_flush_all();
}

/// tinfo with no triggers implemented: only "type 0" (Debug spec §5.7.4).
fn read_tinfo(_: &mut RiscvCpu, _: u16) -> u64 {
    1
}

/// The CSR table (QEMU `csr_ops`). Privilege and read-only checks come from the number
/// itself (§2.1): bits 9:8 the lowest privilege, bits 11:10 = 3 read-only.
static CSR_TABLE: &[CsrDef] = &[
    // Unprivileged floating-point CSRs.
    csr("fflags", 0x001, fs, read_fflags, write_fflags),
    csr("frm", 0x002, fs, read_frm, write_frm),
    csr("fcsr", 0x003, fs, read_fcsr, write_fcsr),
    // Unprivileged counters (Zicntr).
    csr("cycle", 0xc00, ctr, read_cycle, write_ignore),
    csr("time", 0xc01, ctr, read_time, write_ignore),
    csr("instret", 0xc02, ctr, read_instret, write_ignore),
    csrs(
        "hpmcounter3..31",
        0xc03,
        0xc1f,
        ctr,
        read_zero,
        write_ignore,
    ),
    // Supervisor.
    csr("sstatus", 0x100, any, read_sstatus, write_sstatus),
    csr("sie", 0x104, any, read_sie, write_sie),
    csr("stvec", 0x105, any, read_stvec, write_stvec),
    csr("scounteren", 0x106, any, read_scounteren, write_scounteren),
    csr("senvcfg", 0x10a, any, read_senvcfg, write_senvcfg),
    csr("sscratch", 0x140, any, read_sscratch, write_sscratch),
    csr("sepc", 0x141, any, read_sepc, write_sepc),
    csr("scause", 0x142, any, read_scause, write_scause),
    csr("stval", 0x143, any, read_stval, write_stval),
    csr("sip", 0x144, any, read_sip, write_sip),
    csr("stimecmp", 0x14d, sstc, read_stimecmp, write_stimecmp),
    csr("satp", 0x180, satp_pred, read_satp, write_satp),
    // Machine information.
    csr("mvendorid", 0xf11, any, read_zero, write_ignore),
    csr("marchid", 0xf12, any, read_zero, write_ignore),
    csr("mimpid", 0xf13, any, read_zero, write_ignore),
    csr("mhartid", 0xf14, any, read_mhartid, write_ignore),
    csr("mconfigptr", 0xf15, any, read_zero, write_ignore),
    // Machine trap setup and handling.
    csr("mstatus", 0x300, any, read_mstatus, write_mstatus),
    csr("misa", 0x301, any, read_misa, write_ignore),
    csr("medeleg", 0x302, any, read_medeleg, write_medeleg),
    csr("mideleg", 0x303, any, read_mideleg, write_mideleg),
    csr("mie", 0x304, any, read_mie, write_mie),
    csr("mtvec", 0x305, any, read_mtvec, write_mtvec),
    csr("mcounteren", 0x306, any, read_mcounteren, write_mcounteren),
    csr("menvcfg", 0x30a, any, read_menvcfg, write_menvcfg),
    csr(
        "mcountinhibit",
        0x320,
        any,
        read_mcountinhibit,
        write_mcountinhibit,
    ),
    csrs("mhpmevent3..31", 0x323, 0x33f, any, read_zero, write_ignore),
    csr("mscratch", 0x340, any, read_mscratch, write_mscratch),
    csr("mepc", 0x341, any, read_mepc, write_mepc),
    csr("mcause", 0x342, any, read_mcause, write_mcause),
    csr("mtval", 0x343, any, read_mtval, write_mtval),
    csr("mip", 0x344, any, read_mip, write_mip),
    // Physical memory protection.
    csrs(
        "pmpcfg0..15",
        0x3a0,
        0x3af,
        pmpcfg_pred,
        read_pmpcfg,
        write_pmpcfg,
    ),
    csrs(
        "pmpaddr0..63",
        0x3b0,
        0x3ef,
        any,
        read_pmpaddr,
        write_pmpaddr,
    ),
    // Debug triggers: none implemented (tselect stays 0, tdata1 reads type 0).
    csr("tselect", 0x7a0, any, read_zero, write_ignore),
    csrs("tdata1..3", 0x7a1, 0x7a3, any, read_zero, write_ignore),
    csr("tinfo", 0x7a4, any, read_tinfo, write_ignore),
    // Machine counters.
    csr("mcycle", 0xb00, any, read_cycle, write_mcycle),
    csr("minstret", 0xb02, any, read_instret, write_minstret),
    csrs(
        "mhpmcounter3..31",
        0xb03,
        0xb1f,
        any,
        read_zero,
        write_ignore,
    ),
];

/// CSR number → row of `CSR_TABLE`, built once.
fn csr_index() -> &'static [u8; 4096] {
    static INDEX: OnceLock<Box<[u8; 4096]>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut idx = Box::new([u8::MAX; 4096]);
        for (row, d) in CSR_TABLE.iter().enumerate() {
            for n in d.first..=d.last {
                if let Some(slot) = idx.get_mut(usize::from(n)) {
                    *slot = row as u8;
                }
            }
        }
        idx
    })
}

fn lookup(num: u16) -> Option<&'static CsrDef> {
    let row = *csr_index().get(usize::from(num))?;
    CSR_TABLE.get(usize::from(row))
}

const CSR_MIP: u16 = 0x344;
const CSR_SATP: u16 = 0x180;
const CSR_MISA: u16 = 0x301;
const CSR_PMP_FIRST: u16 = 0x3a0;
const CSR_PMP_LAST: u16 = 0x3ef;

/// Whether a write to CSR `num` always ends its block. satp and the PMP registers change how
/// instructions are fetched (the rest of the block was fetched under the old translation) and
/// flush the TLB, which the engine must follow before it runs on (its jump cache drops what
/// the flush may have remapped); misa would change what decodes (read-only here). Any other
/// write changes at most what [`RiscvCpu::csr_write_ends_block`] looks at after it.
pub fn csr_write_always_ends_block(num: u16) -> bool {
    matches!(num, CSR_SATP | CSR_MISA) || (CSR_PMP_FIRST..=CSR_PMP_LAST).contains(&num)
}

/// `HELPER_CSR` first-argument flags.
pub const CSR_OP_SHIFT: u32 = 12;
pub const CSR_NO_READ: u64 = 1 << 14;
pub const CSR_NO_WRITE: u64 = 1 << 15;
pub const CSR_OP_RW: u64 = 1;
pub const CSR_OP_RS: u64 = 2;
pub const CSR_OP_RC: u64 = 3;

impl RiscvCpu {
    /// mstatus.FS = Dirty (and SD).
    pub fn mark_fs_dirty(&mut self) {
        self.csr.mstatus |= MSTATUS_FS | MSTATUS_SD;
    }

    /// One Zicsr access (Unprivileged ISA ch. 9, Privileged §2.1): `op` is funct3 & 3.
    /// Returns the old value (0 when `no_read`).
    pub fn csr_access(
        &mut self,
        num: u16,
        op: u64,
        no_read: bool,
        no_write: bool,
        src: u64,
        insn: u64,
    ) -> Result<u64, Exception> {
        let illegal = Exception::IllegalInstruction(insn & 0xffff_ffff);
        let def = lookup(num).ok_or(illegal)?;
        if u64::from((num >> 8) & 3) > self.privilege {
            return Err(illegal);
        }
        if !no_write && (num >> 10) & 3 == 3 {
            return Err(illegal);
        }
        (def.pred)(self, num).map_err(|_| illegal)?;
        let old = if no_read && op == CSR_OP_RW {
            0
        } else {
            (def.read)(self, num)
        };
        if !no_write {
            // csrrs/csrrc on mip modify only the software-writable SEIP bit, not the one ORed
            // with the external interrupt line (§3.1.9).
            let base = if num == CSR_MIP {
                (old & !MIP_SEIP) | (self.csr.mip & MIP_SEIP)
            } else {
                old
            };
            let new = match op {
                CSR_OP_RW => src,
                CSR_OP_RS => base | src,
                CSR_OP_RC => base & !src,
                _ => return Err(illegal),
            };
            (def.write)(self, num, new);
        }
        Ok(old)
    }

    /// After a CSR write that may go on in its block (not
    /// [`csr_write_always_ends_block`]), whether the block must end after all: the write
    /// changed the block's translation flags (`key_flags`: privilege, mmu_idx from
    /// MPRV/MPP/SUM/MXR, FS), made an interrupt deliverable, or the instruction uses up the
    /// budget (an event is due, or a store asked the hart out). Those are exactly the cases in
    /// which ending the block at the write (a `Yield`) would not have gone on at the next
    /// instruction: the engine goes on from a yield only when `pending_interrupt` is `None`,
    /// and the next block's entry checks the budget. So the guest sees the same instruction
    /// counts either way. Called with the state at the write (`insn_count` the instructions
    /// retired before it): it looks at the hart once the write has retired.
    pub fn csr_write_ends_block(&self, key_flags: u32) -> bool {
        let retired = self.common.insn_count.saturating_add(1);
        self.trans_flags().to_key_flags() != key_flags
            || retired >= self.common.insn_limit
            || self.pending_interrupt_at(retired).is_some()
    }

    /// Read a CSR as M-mode would (for debuggers and tests); None if it does not exist.
    pub fn csr_read(&mut self, num: u16) -> Option<u64> {
        let def = lookup(num)?;
        Some((def.read)(self, num))
    }

    /// Every implemented CSR with its name, by number (for a debugger's target description).
    /// Ranges in the table ("pmpaddr0..63") are expanded to one name per register.
    pub fn csr_names() -> Vec<(u16, String)> {
        let mut v = Vec::new();
        for d in CSR_TABLE {
            match d.name.split_once("..") {
                Some((head, _)) => {
                    let digits =
                        head.len() - head.chars().rev().take_while(char::is_ascii_digit).count();
                    let (prefix, first) = head.split_at(digits);
                    let first: u16 = first.parse().unwrap_or(0);
                    for n in d.first..=d.last {
                        v.push((n, format!("{prefix}{}", first + (n - d.first))));
                    }
                }
                None => v.push((d.first, d.name.to_string())),
            }
        }
        v.sort_by_key(|&(n, _)| n);
        v
    }

    /// Write a CSR as M-mode would (for debuggers), through its write function; false if it
    /// does not exist or is read-only.
    pub fn csr_write_debug(&mut self, num: u16, v: u64) -> bool {
        let Some(def) = lookup(num) else {
            return false;
        };
        if (num >> 10) & 3 == 3 {
            return false;
        }
        (def.write)(self, num, v);
        true
    }
}

extern "C" fn helper_csr(env: *mut CpuCommon, arg: u64, src: u64, insn: u64, _: u64) -> u64 {
    let cpu = state_of::<RiscvCpu>(env);
    let num = (arg & 0xfff) as u16;
    let op = (arg >> CSR_OP_SHIFT) & 3;
    match cpu.csr_access(
        num,
        op,
        arg & CSR_NO_READ != 0,
        arg & CSR_NO_WRITE != 0,
        src,
        insn,
    ) {
        Ok(v) => v,
        Err(e) => {
            cpu.raise(e);
            0
        }
    }
}

extern "C" fn helper_mark_fs_dirty(env: *mut CpuCommon, _: u64, _: u64, _: u64, _: u64) -> u64 {
    state_of::<RiscvCpu>(env).mark_fs_dirty();
    0
}

extern "C" fn helper_csr_written(env: *mut CpuCommon, flags: u64, _: u64, _: u64, _: u64) -> u64 {
    u64::from(state_of::<RiscvCpu>(env).csr_write_ends_block(flags as u32))
}

/// `csr(num | op << 12 | NO_READ | NO_WRITE, src, insn) -> old value`.
pub static HELPER_CSR: HelperDef = HelperDef {
    name: "rv.csr",
    func: helper_csr,
    args: 3,
    ret: true,
    effects: HelperEffects {
        reads_state: true,
        writes_state: true,
        may_raise: true,
    },
};

/// `csr_written(key_flags) -> 1 if the block must end` after a CSR write
/// ([`RiscvCpu::csr_write_ends_block`]). It reads the instruction count, so it reads state.
pub static HELPER_CSR_WRITTEN: HelperDef = HelperDef {
    name: "rv.csr_written",
    func: helper_csr_written,
    args: 1,
    ret: true,
    effects: HelperEffects {
        reads_state: true,
        writes_state: false,
        may_raise: false,
    },
};

/// `mark_fs_dirty()`: mstatus.FS = Dirty before an instruction writes FP state.
pub static HELPER_MARK_FS_DIRTY: HelperDef = HelperDef {
    name: "rv.mark_fs_dirty",
    func: helper_mark_fs_dirty,
    args: 0,
    ret: false,
    effects: HelperEffects {
        reads_state: false,
        writes_state: false,
        may_raise: false,
    },
};

#[cfg(test)]
mod tests {
    use super::super::cpu::test_cpu;
    use super::*;
    use std::sync::atomic::Ordering;

    const INSN: u64 = 0x1234_5073;

    fn write(cpu: &mut RiscvCpu, num: u16, v: u64) -> Result<u64, Exception> {
        cpu.csr_access(num, CSR_OP_RW, false, false, v, INSN)
    }
    fn read(cpu: &mut RiscvCpu, num: u16) -> Result<u64, Exception> {
        cpu.csr_access(num, CSR_OP_RS, false, true, 0, INSN)
    }
    const ILLEGAL: Result<u64, Exception> = Err(Exception::IllegalInstruction(INSN));

    #[test]
    fn mstatus_warl() {
        let mut cpu = test_cpu();
        write(&mut cpu, 0x300, u64::MAX).unwrap();
        let ms = read(&mut cpu, 0x300).unwrap();
        assert_eq!(ms & (MSTATUS_UXL | MSTATUS_SXL), (2 << 32) | (2 << 34));
        assert_eq!(ms & MSTATUS_MPP, MSTATUS_MPP);
        assert_ne!(ms & MSTATUS_SD, 0, "FS dirty sets SD");
        assert_eq!(ms & MSTATUS_XS, 0);
        // MPP = 2 is reserved: the old value stays.
        write(&mut cpu, 0x300, 2 << MSTATUS_MPP_SHIFT).unwrap();
        assert_eq!(read(&mut cpu, 0x300).unwrap() & MSTATUS_MPP, MSTATUS_MPP);
        write(&mut cpu, 0x300, 1 << MSTATUS_MPP_SHIFT).unwrap();
        let ms = read(&mut cpu, 0x300).unwrap();
        assert_eq!(ms & MSTATUS_MPP, 1 << MSTATUS_MPP_SHIFT);
        assert_eq!(ms & MSTATUS_SD, 0);
    }

    #[test]
    fn sstatus_is_a_restricted_view() {
        let mut cpu = test_cpu();
        write(&mut cpu, 0x100, u64::MAX).unwrap();
        let ms = read(&mut cpu, 0x300).unwrap();
        assert_eq!(
            ms & (MSTATUS_MIE | MSTATUS_MPP | MSTATUS_TVM | MSTATUS_MPRV),
            0
        );
        assert_eq!(ms & SSTATUS_WRITE, SSTATUS_WRITE);
        let ss = read(&mut cpu, 0x100).unwrap();
        assert_eq!(ss & MSTATUS_UXL, 2 << 32);
        assert_eq!(ss & MSTATUS_SXL, 0);
        assert_ne!(ss & MSTATUS_SD, 0);
    }

    #[test]
    fn misa_is_read_only_but_writable() {
        let mut cpu = test_cpu();
        assert_eq!(write(&mut cpu, 0x301, 0), Ok(MISA_VALUE));
        assert_eq!(read(&mut cpu, 0x301), Ok(MISA_VALUE));
    }

    #[test]
    fn delegation_masks() {
        let mut cpu = test_cpu();
        write(&mut cpu, 0x302, u64::MAX).unwrap();
        assert_eq!(read(&mut cpu, 0x302), Ok(0xf0_bfff));
        write(&mut cpu, 0x303, u64::MAX).unwrap();
        assert_eq!(read(&mut cpu, 0x303), Ok(0x2666));
    }

    #[test]
    fn mip_sip_mie_sie_writable_bits() {
        let mut cpu = test_cpu();
        write(&mut cpu, 0x304, u64::MAX).unwrap();
        assert_eq!(read(&mut cpu, 0x304), Ok(0xaaa));
        write(&mut cpu, 0x344, u64::MAX).unwrap();
        assert_eq!(read(&mut cpu, 0x344), Ok(0x222));
        cpu.irq_lines.store(MIP_MTIP | MIP_MEIP, Ordering::Release);
        write(&mut cpu, 0x344, 0).unwrap();
        assert_eq!(
            read(&mut cpu, 0x344),
            Ok(MIP_MTIP | MIP_MEIP),
            "lines are read-only"
        );
        // The SEIP line is visible in mip but not latched by a read-modify-write.
        cpu.irq_lines.store(MIP_SEIP, Ordering::Release);
        cpu.csr_access(0x344, CSR_OP_RS, false, false, MIP_SSIP, INSN)
            .unwrap();
        assert_eq!(cpu.csr.mip, MIP_SSIP);
        assert_eq!(read(&mut cpu, 0x344), Ok(MIP_SSIP | MIP_SEIP));
        cpu.irq_lines.store(0, Ordering::Release);
        write(&mut cpu, 0x344, 0).unwrap();
        // S views follow mideleg; sip writes only SSIP.
        write(&mut cpu, 0x303, MIP_SSIP | MIP_STIP).unwrap();
        write(&mut cpu, 0x144, u64::MAX).unwrap();
        assert_eq!(read(&mut cpu, 0x144), Ok(MIP_SSIP));
        write(&mut cpu, 0x104, 0).unwrap();
        assert_eq!(read(&mut cpu, 0x304), Ok(0xaaa & !(MIP_SSIP | MIP_STIP)));
        assert_eq!(read(&mut cpu, 0x104), Ok(0));
    }

    #[test]
    fn tvec_epc_satp_warl() {
        let mut cpu = test_cpu();
        write(&mut cpu, 0x305, 0x8000_0101).unwrap();
        write(&mut cpu, 0x305, 0x9000_0002).unwrap();
        assert_eq!(read(&mut cpu, 0x305), Ok(0x8000_0101));
        write(&mut cpu, 0x341, 0x8000_0003).unwrap();
        assert_eq!(read(&mut cpu, 0x341), Ok(0x8000_0002));
        let sv39 = (SATP_MODE_SV39 << SATP_MODE_SHIFT) | 0x80000;
        write(&mut cpu, 0x180, sv39).unwrap();
        write(&mut cpu, 0x180, (1 << SATP_MODE_SHIFT) | 5).unwrap();
        assert_eq!(read(&mut cpu, 0x180), Ok(sv39), "unsupported mode ignored");
        write(&mut cpu, 0x180, SATP_MODE_SV57 << SATP_MODE_SHIFT).unwrap();
        assert_eq!(read(&mut cpu, 0x180), Ok(SATP_MODE_SV57 << SATP_MODE_SHIFT));
        // TVM makes satp illegal in S.
        cpu.csr.mstatus |= MSTATUS_TVM;
        cpu.privilege = Privilege::Supervisor as u64;
        assert_eq!(read(&mut cpu, 0x180), ILLEGAL);
    }

    #[test]
    fn privilege_and_read_only_checks() {
        let mut cpu = test_cpu();
        assert_eq!(read(&mut cpu, 0xf14), Ok(0));
        assert_eq!(write(&mut cpu, 0xf14, 1), ILLEGAL);
        assert_eq!(read(&mut cpu, 0x7c0), ILLEGAL, "unknown CSR");
        assert_eq!(read(&mut cpu, 0x3a1), ILLEGAL, "odd pmpcfg on RV64");
        cpu.privilege = Privilege::Supervisor as u64;
        assert_eq!(read(&mut cpu, 0x300), ILLEGAL);
        assert!(read(&mut cpu, 0x100).is_ok());
        cpu.privilege = Privilege::User as u64;
        assert_eq!(read(&mut cpu, 0x100), ILLEGAL);
    }

    #[test]
    fn counters_and_counteren() {
        let mut cpu = test_cpu();
        cpu.common.insn_count = 100;
        assert_eq!(read(&mut cpu, 0xc00), Ok(100));
        write(&mut cpu, 0xb02, 1000).unwrap();
        // The write counts from after the writing instruction retires.
        cpu.common.insn_count = 101;
        assert_eq!(read(&mut cpu, 0xb02), Ok(1000));
        assert_eq!(cpu.common.insn_count, 101, "insn_count is never written");
        assert_eq!(read(&mut cpu, 0xc03), Ok(0));
        // mcountinhibit.IR freezes minstret (after the writing instruction) until cleared.
        write(&mut cpu, 0x320, MCOUNTINHIBIT_IR).unwrap();
        cpu.common.insn_count = 150;
        assert_eq!(read(&mut cpu, 0xb02), Ok(1001));
        write(&mut cpu, 0xb02, 5).unwrap();
        assert_eq!(read(&mut cpu, 0xb02), Ok(5));
        write(&mut cpu, 0x320, 0).unwrap();
        cpu.common.insn_count = 161;
        assert_eq!(read(&mut cpu, 0xb02), Ok(5 + 10));
        assert_eq!(read(&mut cpu, 0xb00), Ok(161));
        cpu.privilege = Privilege::User as u64;
        assert_eq!(read(&mut cpu, 0xc01), ILLEGAL);
        cpu.csr.mcounteren = 2;
        assert_eq!(read(&mut cpu, 0xc01), ILLEGAL, "U also needs scounteren");
        cpu.csr.scounteren = 2;
        assert!(read(&mut cpu, 0xc01).is_ok());
        cpu.privilege = Privilege::Supervisor as u64;
        assert_eq!(read(&mut cpu, 0xc00), ILLEGAL);
    }

    #[test]
    fn fp_csrs_need_fs_and_set_dirty() {
        let mut cpu = test_cpu();
        assert_eq!(read(&mut cpu, 0x003), ILLEGAL);
        cpu.csr.mstatus |= 1 << MSTATUS_FS_SHIFT;
        write(&mut cpu, 0x003, 0xff).unwrap();
        assert_eq!((cpu.frm, cpu.fflags), (7, 0x1f));
        assert_eq!(cpu.csr.mstatus & MSTATUS_FS, MSTATUS_FS);
        assert_ne!(read(&mut cpu, 0x300).unwrap() & MSTATUS_SD, 0);
        // csrrs fflags, x0 (no write) reads without dirtying.
        cpu.csr.mstatus &= !MSTATUS_FS;
        cpu.csr.mstatus |= 1 << MSTATUS_FS_SHIFT;
        assert_eq!(read(&mut cpu, 0x001), Ok(0x1f));
        assert_eq!(cpu.csr.mstatus & MSTATUS_FS, 1 << MSTATUS_FS_SHIFT);
    }

    #[test]
    fn csrrs_csrrc_and_helper_encoding() {
        let mut cpu = test_cpu();
        write(&mut cpu, 0x340, 0xf0).unwrap();
        assert_eq!(
            cpu.csr_access(0x340, CSR_OP_RS, false, false, 0x0f, INSN),
            Ok(0xf0)
        );
        assert_eq!(
            cpu.csr_access(0x340, CSR_OP_RC, false, false, 0x3c, INSN),
            Ok(0xff)
        );
        assert_eq!(read(&mut cpu, 0x340), Ok(0xc3));
        let arg = 0x340 | (CSR_OP_RW << CSR_OP_SHIFT);
        let env = &mut cpu.common as *mut CpuCommon;
        assert_eq!((HELPER_CSR.func)(env, arg, 7, INSN, 0), 0xc3);
        assert_eq!(cpu.csr.mscratch, 7);
        cpu.privilege = Privilege::User as u64;
        let env = &mut cpu.common as *mut CpuCommon;
        (HELPER_CSR.func)(env, arg, 7, INSN, 0);
        assert_eq!(cpu.common.exception_pending, 1);
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (2, INSN));
    }

    #[test]
    fn sstc_stimecmp_drives_stip() {
        let mut cpu = test_cpu();
        write(&mut cpu, 0x14d, 10).unwrap();
        assert_eq!(read(&mut cpu, 0x344).unwrap() & MIP_STIP, 0);
        write(&mut cpu, 0x30a, MENVCFG_STCE).unwrap();
        cpu.common.insn_count = 10 * emu_devices::clock::NS_PER_MTIME_TICK;
        assert_ne!(read(&mut cpu, 0x344).unwrap() & MIP_STIP, 0);
        assert_eq!(cpu.next_timer_deadline_ns(), None, "STIE clear");
        cpu.csr.mie = MIP_STIP;
        assert_eq!(cpu.next_timer_deadline_ns(), None, "already due");
        write(&mut cpu, 0x14d, 20).unwrap();
        assert_eq!(read(&mut cpu, 0x344).unwrap() & MIP_STIP, 0);
        assert_eq!(
            cpu.next_timer_deadline_ns(),
            Some(20 * emu_devices::clock::NS_PER_MTIME_TICK)
        );
        write(&mut cpu, 0x14d, 10).unwrap();
        cpu.privilege = Privilege::Supervisor as u64;
        assert_eq!(read(&mut cpu, 0x14d), ILLEGAL, "needs mcounteren.TM");
        cpu.csr.mcounteren = COUNTEREN_TM;
        assert_eq!(read(&mut cpu, 0x14d), Ok(10));
    }

    #[test]
    fn pmp_csrs_pack_entries() {
        let mut cpu = test_cpu();
        write(&mut cpu, 0x3a0, 0x1f_0f).unwrap();
        assert_eq!(read(&mut cpu, 0x3a0), Ok(0x1f_0f));
        write(&mut cpu, 0x3a2, 0x0f << 56).unwrap();
        assert_eq!(cpu.csr.pmp.cfg(15), 0x0f);
        assert_eq!(read(&mut cpu, 0x3a4), Ok(0), "entries past 16 read zero");
        write(&mut cpu, 0x3b5, u64::MAX).unwrap();
        assert_eq!(read(&mut cpu, 0x3b5), Ok((1 << 54) - 1));
        write(&mut cpu, 0x3c0, 5).unwrap();
        assert_eq!(read(&mut cpu, 0x3c0), Ok(0));
    }

    /// Only the CSRs whose writes always end the block may flush the TLB (the engine follows
    /// flushes at block ends) or change privilege; a write to any other goes on in its block
    /// unless the flags it changed, an interrupt or the budget say otherwise.
    #[test]
    fn writes_that_go_on_never_flush_the_tlb() {
        for d in CSR_TABLE {
            for num in d.first..=d.last {
                if csr_write_always_ends_block(num) || (num >> 10) & 3 == 3 {
                    continue;
                }
                for v in [0, u64::MAX, 0x5555_5555_5555_5555, 0x8000_0000_0000_1000] {
                    let mut cpu = test_cpu();
                    // Something in the TLB to flush, and the states the writes start from.
                    cpu.csr.satp = 8 << 60;
                    cpu.csr.menvcfg = MENVCFG_STCE;
                    cpu.csr.mstatus |= MSTATUS_FS;
                    let generation = cpu.common.tlb_generation;
                    assert!(write(&mut cpu, num, v).is_ok(), "{num:#x}");
                    assert_eq!(cpu.common.tlb_generation, generation, "{num:#x} = {v:#x}");
                    assert_eq!(cpu.priv_level(), Privilege::Machine);
                }
            }
        }
    }

    #[test]
    fn satp_and_pmp_writes_always_end_the_block() {
        for num in [0x180, 0x301, 0x3a0, 0x3af, 0x3b0, 0x3ef] {
            assert!(csr_write_always_ends_block(num), "{num:#x}");
        }
        for num in [
            0x100, 0x104, 0x140, 0x141, 0x300, 0x304, 0x344, 0x39f, 0x3f0,
        ] {
            assert!(!csr_write_always_ends_block(num), "{num:#x}");
        }
    }

    #[test]
    fn csr_write_ends_block_at_flag_changes_interrupts_and_the_budget() {
        let mut cpu = test_cpu();
        let flags = cpu.trans_flags().to_key_flags();
        assert!(!cpu.csr_write_ends_block(flags));
        assert!(cpu.csr_write_ends_block(flags ^ 1));
        // The write retires the instruction that reaches the limit.
        cpu.common.insn_limit = 1;
        assert!(cpu.csr_write_ends_block(flags));
        cpu.common.insn_limit = 2;
        assert!(!cpu.csr_write_ends_block(flags));
        // A machine software interrupt, pending and enabled in M with MIE set.
        cpu.csr.mip = MIP_MSIP;
        cpu.csr.mie = MIP_MSIP;
        assert!(!cpu.csr_write_ends_block(flags), "MIE clear");
        cpu.csr.mstatus |= MSTATUS_MIE;
        assert!(cpu.csr_write_ends_block(flags));
        // The Sstc timer fires at the count the write retires at, not before.
        let mut cpu = test_cpu();
        cpu.csr.menvcfg = MENVCFG_STCE;
        cpu.csr.mie = MIP_STIP;
        cpu.privilege = Privilege::User as u64;
        let flags = cpu.trans_flags().to_key_flags();
        let due = 10 * emu_devices::clock::NS_PER_MTIME_TICK;
        cpu.csr.stimecmp = 10;
        cpu.common.insn_count = due - 2;
        assert!(!cpu.csr_write_ends_block(flags));
        cpu.common.insn_count = due - 1;
        assert!(cpu.csr_write_ends_block(flags));
    }

    #[test]
    fn triggers_read_as_absent() {
        let mut cpu = test_cpu();
        write(&mut cpu, 0x7a0, 3).unwrap();
        assert_eq!(read(&mut cpu, 0x7a0), Ok(0));
        assert_eq!(read(&mut cpu, 0x7a1), Ok(0));
        assert_eq!(read(&mut cpu, 0x7a4), Ok(1));
    }
}
