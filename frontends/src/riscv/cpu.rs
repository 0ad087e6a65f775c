//! The architectural state of one RV64 hart (Unprivileged ISA ch. 2, Privileged ISA ch. 3–4),
//! laid out `#[repr(C)]` behind the engine's `CpuCommon` so generated code reaches guest
//! registers at fixed offsets (IR globals).

use emu_devices::clock::{HartClock, VirtualTime, NS_PER_MTIME_TICK};
use emu_devices::Bus;
use emu_jit::codemap::CodeMap;
use emu_jit::env::{CpuCommon, MemSlowPath, NB_MMU_MODES, TLB_ENTRIES};
use emu_jit::helper::GuestState;
use std::collections::HashSet;
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
    /// Maps this hart's retired instructions to virtual time (the `time` CSR).
    pub clock: HartClock,
    /// The machine's virtual time, published before every MMIO access and time read.
    pub time: Arc<VirtualTime>,
    /// `--strict`: an unimplemented encoding is a host error (the run loop checks
    /// `unimplemented`).
    pub strict: bool,
    /// The first unimplemented encoding met: (pc, raw instruction).
    pub unimplemented: Option<(u64, u32)>,
    /// Encodings already logged as unimplemented (log once each).
    pub unimplemented_logged: HashSet<u32>,
    /// Guest physical page of each TLB entry (QEMU's `CPUTLBEntryFull`), for fetch keys.
    /// One row per MMU mode (`NB_MMU_MODES` rows), on the heap like the TLB itself.
    pub tlb_phys: Box<[[u64; TLB_ENTRIES]]>,
    /// Virtual range `[lo, hi]` covering every superpage with entries in the TLB since the
    /// last full flush (page-selective sfence.vma flushes everything inside it).
    pub large_pages: Option<(u64, u64)>,
    /// What the TLB evicted, looked up before a page walk (mmu.rs).
    pub victim_tlb: super::mmu::VictimTlb,
    /// `CodeMap::generation` as of this hart's TLB write entries (see `sync_code_pages`).
    pub code_generation_seen: u64,
    /// Sees traps, guest errors and unimplemented encodings (`-d int,guest_errors,unimp`).
    pub observer: Option<Box<dyn super::debug::CpuObserver>>,
    /// Debugger watchpoints (debug.rs); their pages take the memory slow path.
    pub watchpoints: Vec<super::debug::Watchpoint>,
    /// The first watchpoint hit since the debugger last looked.
    pub watch_hit: Option<super::debug::WatchHit>,
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

impl RiscvCpu {
    /// A hart in its reset state (Privileged ISA §3.4; as QEMU's `riscv_cpu_reset`): M-mode,
    /// mstatus.SXL = UXL = 2, misa = RV64 IMAFDC + S + U. The caller sets `common.pc` to the
    /// reset vector.
    pub fn new(
        hart_id: u64,
        bus: Arc<Bus>,
        code_map: Arc<CodeMap>,
        time: Arc<VirtualTime>,
    ) -> Box<RiscvCpu> {
        let slow = MemSlowPath {
            load: super::mmu::slow_load,
            store: super::mmu::slow_store,
        };
        let mut common = CpuCommon::new(slow);
        // Every fill goes through `CpuCommon::tlb_set` (mmu.rs `tlb_fill`): flushes may clear
        // only the filled entries.
        common.tlb_fill_tracked = true;
        Box::new(RiscvCpu {
            common,
            x: [0; 32],
            f: [0; 32],
            frm: 0,
            fflags: 0,
            privilege: Privilege::Machine as u64,
            reservation: u64::MAX,
            reservation_value: 0,
            pending_cause: 0,
            pending_tval: 0,
            csr: Csrs::reset(),
            hart_id,
            irq_lines: Arc::new(AtomicU64::new(0)),
            bus,
            code_map,
            clock: HartClock::default(),
            time,
            strict: false,
            unimplemented: None,
            unimplemented_logged: HashSet::new(),
            tlb_phys: vec![[0; TLB_ENTRIES]; NB_MMU_MODES].into_boxed_slice(),
            large_pages: None,
            victim_tlb: super::mmu::VictimTlb::default(),
            code_generation_seen: 0,
            observer: None,
            watchpoints: Vec::new(),
            watch_hit: None,
        })
    }

    /// The current privilege level.
    pub fn priv_level(&self) -> Privilege {
        Privilege::from_bits(self.privilege)
    }

    /// Virtual time now, in nanoseconds, published to the machine's clock (so devices reading
    /// `mtime` never see it behind this hart).
    pub fn publish_time(&self) -> u64 {
        let ns = self.clock.now_ns(self.common.insn_count);
        self.time.advance_to(ns);
        ns
    }

    /// The `time` CSR (mtime ticks), after publishing the hart's time.
    pub fn mtime(&self) -> u64 {
        self.publish_time() / NS_PER_MTIME_TICK
    }
}

impl Privilege {
    /// Decode an mstatus.MPP-style field; the reserved encoding 2 reads as U (MPP is WARL and
    /// never holds it).
    pub fn from_bits(bits: u64) -> Privilege {
        match bits & 3 {
            3 => Privilege::Machine,
            1 => Privilege::Supervisor,
            _ => Privilege::User,
        }
    }
}

/// A hart over 1 MiB of RAM at 0x8000_0000 (unit tests of the privileged architecture).
#[cfg(test)]
pub(crate) fn test_cpu() -> Box<RiscvCpu> {
    test_cpu_with(Bus::new())
}

/// As [`test_cpu`], adding the RAM to a bus that may already hold devices.
#[cfg(test)]
pub(crate) fn test_cpu_with(mut bus: Bus) -> Box<RiscvCpu> {
    let ram = emu_devices::GuestRam::new(TEST_RAM_BASE, TEST_RAM_SIZE).expect("test RAM");
    bus.add_ram(Arc::new(ram));
    let mut cpu = RiscvCpu::new(
        0,
        Arc::new(bus),
        Arc::new(CodeMap::new()),
        Arc::new(VirtualTime::new()),
    );
    cpu.common.pc = TEST_RAM_BASE;
    cpu
}

#[cfg(test)]
pub(crate) const TEST_RAM_BASE: u64 = 0x8000_0000;
#[cfg(test)]
pub(crate) const TEST_RAM_SIZE: u64 = 0x10_0000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_state_is_m_mode_rv64() {
        let mut cpu = test_cpu();
        assert_eq!(cpu.priv_level(), Privilege::Machine);
        assert_eq!(cpu.csr_read(0x301), Some(super::super::csr::MISA_VALUE));
        let ms = cpu.csr_read(0x300).unwrap_or(0);
        assert_eq!((ms >> 32) & 3, 2, "UXL");
        assert_eq!((ms >> 34) & 3, 2, "SXL");
        assert_eq!(cpu.reservation, u64::MAX);
    }

    #[test]
    fn time_follows_instructions_and_is_published() {
        let mut cpu = test_cpu();
        cpu.common.insn_count = 1000;
        assert_eq!(
            cpu.mtime(),
            1000 * emu_devices::clock::NS_PER_INSN / NS_PER_MTIME_TICK
        );
        assert_eq!(cpu.time.now_ns(), 1000 * emu_devices::clock::NS_PER_INSN);
    }
}
