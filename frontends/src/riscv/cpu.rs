//! The architectural state of one RV64 hart (Unprivileged ISA ch. 2, Privileged ISA ch. 3–4),
//! laid out `#[repr(C)]` behind the engine's `CpuCommon` so generated code reaches guest
//! registers at fixed offsets (IR globals).

use emu_devices::Bus;
use emu_jit::codemap::CodeMap;
use emu_jit::env::CpuCommon;
use emu_jit::helper::GuestState;
use std::mem::offset_of;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::csr::Csrs;

/// Privilege levels (Privileged ISA §1.2, Table 1.1), as encoded in mstatus.MPP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Privilege {
    User = 0,
    Supervisor = 1,
    Machine = 3,
}

/// One RV64 hart.
#[repr(C)]
pub struct RiscvCpu {
    /// The engine's header; must stay the first field (see `GuestState`).
    pub common: CpuCommon,
    /// Integer registers x0..x31; x0 is kept 0 (lifters never write it).
    pub x: [u64; 32],
    /// Floating-point registers f0..f31 as raw 64-bit patterns (F values NaN-boxed).
    pub f: [u64; 32],
    /// fcsr.frm (rounding mode, 3 bits).
    pub frm: u64,
    /// fcsr.fflags (accrued exceptions NV DZ OF UF NX, 5 bits).
    pub fflags: u64,
    /// Current privilege level (`Privilege as u64`).
    pub privilege: u64,
    /// LR/SC reservation: the reserved physical... virtual address, or `u64::MAX` for none.
    pub reservation: u64,
    /// The value loaded by LR (SC succeeds only if memory still holds it, as QEMU does).
    pub reservation_value: u64,
    /// Exception recorded by a helper or the slow path while `common.exception_pending != 0`:
    /// the mcause/scause code and the trap value.
    pub pending_cause: u64,
    pub pending_tval: u64,
    /// Control and status registers.
    pub csr: Csrs,
    /// Hart id (mhartid).
    pub hart_id: u64,
    /// Interrupt lines driven by devices (MEIP, SEIP, MTIP, MSIP as in mip bit positions),
    /// ORed into mip when it is read and when interrupts are checked.
    pub irq_lines: Arc<AtomicU64>,
    /// The machine's physical address space.
    pub bus: Arc<Bus>,
    /// Pages holding translated code (self-modifying-code detection).
    pub code_map: Arc<CodeMap>,
}

// SAFETY: RiscvCpu is #[repr(C)] with `common: CpuCommon` as its first field, and the executors
// only ever hand helpers the `CpuCommon` inside a RiscvCpu they hold exclusively.
unsafe impl GuestState for RiscvCpu {}

/// IR global offset of integer register `i` (0..32).
pub const fn xreg_offset(i: u32) -> u32 {
    (offset_of!(RiscvCpu, x) + 8 * (i as usize % 32)) as u32
}

/// IR global offset of floating-point register `i` (0..32).
pub const fn freg_offset(i: u32) -> u32 {
    (offset_of!(RiscvCpu, f) + 8 * (i as usize % 32)) as u32
}

pub const OFFSET_FRM: u32 = offset_of!(RiscvCpu, frm) as u32;
pub const OFFSET_FFLAGS: u32 = offset_of!(RiscvCpu, fflags) as u32;
pub const OFFSET_PRIVILEGE: u32 = offset_of!(RiscvCpu, privilege) as u32;
pub const OFFSET_RESERVATION: u32 = offset_of!(RiscvCpu, reservation) as u32;
pub const OFFSET_RESERVATION_VALUE: u32 = offset_of!(RiscvCpu, reservation_value) as u32;
