//! Exceptions, interrupts and trap return (Privileged ISA §3.1.6–§3.1.9, §3.3.2, §4.1.1–§4.1.3),
//! after QEMU 7.2 `target/riscv/cpu_helper.c` (`riscv_cpu_do_interrupt`) and `op_helper.c`.

use emu_jit::env::CpuCommon;
use emu_jit::helper::{state_of, HelperDef};
use emu_jit::ir::HelperEffects;

use super::cpu::{Privilege, RiscvCpu};
use super::csr::*;
use emu_devices::clock::NS_PER_MTIME_TICK;

/// Synchronous exceptions, named after the Privileged ISA Table 3.6, with their trap value
/// (xtval) where the architecture gives one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exception {
    InstructionAddressMisaligned(u64),
    InstructionAccessFault(u64),
    /// The trap value is the instruction's encoding.
    IllegalInstruction(u64),
    /// The trap value is the breakpoint's address.
    Breakpoint(u64),
    LoadAddressMisaligned(u64),
    LoadAccessFault(u64),
    StoreAmoAddressMisaligned(u64),
    StoreAmoAccessFault(u64),
    EnvironmentCallFromUMode,
    EnvironmentCallFromSMode,
    EnvironmentCallFromMMode,
    InstructionPageFault(u64),
    LoadPageFault(u64),
    StoreAmoPageFault(u64),
}

impl Exception {
    /// The exception code written to xcause (Table 3.6).
    pub fn cause(self) -> u64 {
        use Exception::*;
        match self {
            InstructionAddressMisaligned(_) => 0,
            InstructionAccessFault(_) => 1,
            IllegalInstruction(_) => 2,
            Breakpoint(_) => 3,
            LoadAddressMisaligned(_) => 4,
            LoadAccessFault(_) => 5,
            StoreAmoAddressMisaligned(_) => 6,
            StoreAmoAccessFault(_) => 7,
            EnvironmentCallFromUMode => 8,
            EnvironmentCallFromSMode => 9,
            EnvironmentCallFromMMode => 11,
            InstructionPageFault(_) => 12,
            LoadPageFault(_) => 13,
            StoreAmoPageFault(_) => 15,
        }
    }

    /// The value written to xtval.
    pub fn tval(self) -> u64 {
        use Exception::*;
        match self {
            InstructionAddressMisaligned(v)
            | InstructionAccessFault(v)
            | IllegalInstruction(v)
            | Breakpoint(v)
            | LoadAddressMisaligned(v)
            | LoadAccessFault(v)
            | StoreAmoAddressMisaligned(v)
            | StoreAmoAccessFault(v)
            | InstructionPageFault(v)
            | LoadPageFault(v)
            | StoreAmoPageFault(v) => v,
            EnvironmentCallFromUMode | EnvironmentCallFromSMode | EnvironmentCallFromMMode => 0,
        }
    }
}

/// Distinct unimplemented encodings logged before logging stops.
const MAX_LOGGED_UNIMPLEMENTED: usize = 256;

/// Interrupt codes in decreasing priority order (Privileged ISA §3.1.9): MEI, MSI, MTI, SEI,
/// SSI, STI.
const IRQ_PRIORITY: [u64; 6] = [
    IRQ_M_EXT,
    IRQ_M_SOFT,
    IRQ_M_TIMER,
    IRQ_S_EXT,
    IRQ_S_SOFT,
    IRQ_S_TIMER,
];

impl RiscvCpu {
    /// Record a guest exception for the run loop (or the executing block) to deliver.
    pub fn raise(&mut self, e: Exception) {
        self.pending_cause = e.cause();
        self.pending_tval = e.tval();
        self.common.exception_pending = 1;
    }

    /// Take the pending exception recorded by a helper or the slow path (if any): trap entry
    /// at `common.pc`.
    pub fn deliver_exception(&mut self) {
        if self.common.exception_pending == 0 {
            return;
        }
        self.common.exception_pending = 0;
        let (cause, tval) = (self.pending_cause, self.pending_tval);
        self.trap_enter(cause, tval, false);
    }

    /// Trap entry (Privileged ISA §3.1.6.1, §3.1.8, §4.1.1): choose M or S by delegation, save
    /// pc/cause/tval and the interrupt-enable stack, jump to xtvec.
    pub fn trap_enter(&mut self, cause: u64, tval: u64, interrupt: bool) {
        let prv = self.priv_level();
        let deleg = if interrupt {
            self.csr.mideleg
        } else {
            self.csr.medeleg
        };
        let to_s = prv <= Privilege::Supervisor && cause < 64 && (deleg >> cause) & 1 != 0;
        let xcause = cause | if interrupt { 1 << 63 } else { 0 };
        let ms = self.csr.mstatus;
        let (tvec, new_priv) = if to_s {
            self.csr.scause = xcause;
            self.csr.sepc = self.common.pc;
            self.csr.stval = tval;
            let mut s = ms & !(MSTATUS_SPIE | MSTATUS_SIE | MSTATUS_SPP);
            if ms & MSTATUS_SIE != 0 {
                s |= MSTATUS_SPIE;
            }
            if prv != Privilege::User {
                s |= MSTATUS_SPP;
            }
            self.csr.mstatus = s;
            (self.csr.stvec, Privilege::Supervisor)
        } else {
            self.csr.mcause = xcause;
            self.csr.mepc = self.common.pc;
            self.csr.mtval = tval;
            let mut s = ms & !(MSTATUS_MPIE | MSTATUS_MIE | MSTATUS_MPP);
            if ms & MSTATUS_MIE != 0 {
                s |= MSTATUS_MPIE;
            }
            s |= (prv as u64) << MSTATUS_MPP_SHIFT;
            self.csr.mstatus = s;
            (self.csr.mtvec, Privilege::Machine)
        };
        // xtvec MODE 1 (vectored): interrupts go to BASE + 4 * cause (§3.1.7).
        let base = tvec & !3;
        self.common.pc = if interrupt && tvec & 3 == 1 {
            base.wrapping_add(4 * cause)
        } else {
            base
        };
        self.privilege = new_priv as u64;
        if let Some(o) = self.observer.as_mut() {
            o.trap(&super::debug::TrapEvent {
                hart_id: self.hart_id,
                cause,
                interrupt,
                epc: if to_s { self.csr.sepc } else { self.csr.mepc },
                tval,
                from: prv,
                to: new_priv,
                target: self.common.pc,
            });
        }
        // An SC after a trap must fail (Unprivileged ISA §8.2, as QEMU clears load_res).
        self.reservation = u64::MAX;
    }

    /// mip as the hart sees it: software-written bits, device lines and the Sstc timer.
    pub fn effective_mip(&self) -> u64 {
        self.effective_mip_at(self.common.insn_count)
    }

    /// mip as the hart will see it once `insn_count` instructions have retired (the Sstc
    /// timer reads the time at that count).
    fn effective_mip_at(&self, insn_count: u64) -> u64 {
        let lines = self.irq_lines.load(std::sync::atomic::Ordering::Acquire);
        let mut mip = self.csr.mip | (lines & (MIP_MEIP | MIP_MTIP | MIP_MSIP | MIP_SEIP));
        if self.csr.menvcfg & MENVCFG_STCE != 0 {
            mip &= !MIP_STIP;
            // The hart's own time, as `mtime()` gives it, without publishing it to the devices
            // (a locked read-modify-write): the run loop asks at every turn.
            let mtime = self.clock.now_ns(insn_count) / NS_PER_MTIME_TICK;
            if mtime >= self.csr.stimecmp {
                mip |= MIP_STIP;
            }
        }
        mip
    }

    /// The interrupt to take now, if any (§3.1.9; QEMU `riscv_cpu_local_irq_pending`):
    /// interrupts for M first, then those delegated to S, each in priority order.
    pub fn pending_interrupt(&self) -> Option<u64> {
        self.pending_interrupt_at(self.common.insn_count)
    }

    /// [`RiscvCpu::pending_interrupt`] once `insn_count` instructions have retired.
    pub fn pending_interrupt_at(&self, insn_count: u64) -> Option<u64> {
        let pending = self.effective_mip_at(insn_count) & self.csr.mie;
        if pending == 0 {
            return None;
        }
        let prv = self.priv_level();
        let ms = self.csr.mstatus;
        let m_enabled = prv < Privilege::Machine || ms & MSTATUS_MIE != 0;
        let s_enabled =
            prv < Privilege::Supervisor || (prv == Privilege::Supervisor && ms & MSTATUS_SIE != 0);
        let m_irqs = if m_enabled {
            pending & !self.csr.mideleg
        } else {
            0
        };
        let s_irqs = if s_enabled {
            pending & self.csr.mideleg
        } else {
            0
        };
        let pick = |set: u64| IRQ_PRIORITY.iter().copied().find(|&i| set & (1 << i) != 0);
        pick(m_irqs).or_else(|| pick(s_irqs))
    }

    /// Take the highest-priority pending and enabled interrupt: trap entry at `common.pc`.
    /// Returns whether one was taken.
    pub fn check_interrupts(&mut self) -> bool {
        match self.pending_interrupt() {
            Some(irq) => {
                self.trap_enter(irq, 0, true);
                true
            }
            None => false,
        }
    }

    /// WFI wakes up on any locally enabled pending interrupt, regardless of the global
    /// enables (Privileged ISA §3.3.3).
    pub fn interrupt_pending_for_wfi(&self) -> bool {
        self.effective_mip() & self.csr.mie != 0
    }

    /// Virtual time (ns) at which the Sstc timer will fire, when it is enabled (menvcfg.STCE),
    /// can interrupt (mie.STIE) and has not fired yet. A timer already due is visible in mip,
    /// so it needs no deadline (which would otherwise shrink every run slice to one
    /// instruction while the guest keeps the interrupt masked).
    pub fn next_timer_deadline_ns(&self) -> Option<u64> {
        if self.csr.menvcfg & MENVCFG_STCE == 0 || self.csr.mie & MIP_STIP == 0 {
            return None;
        }
        let ns = self
            .csr
            .stimecmp
            .saturating_mul(emu_devices::clock::NS_PER_MTIME_TICK);
        (ns > self.clock.now_ns(self.common.insn_count)).then_some(ns)
    }

    /// mret (§3.3.2): only in M-mode. Returns the new pc.
    fn mret(&mut self, insn: u64) -> Result<u64, Exception> {
        if self.priv_level() != Privilege::Machine {
            return Err(Exception::IllegalInstruction(insn));
        }
        let ms = self.csr.mstatus;
        let mpp = Privilege::from_bits(ms >> MSTATUS_MPP_SHIFT);
        let mut s = ms & !(MSTATUS_MIE | MSTATUS_MPP);
        if ms & MSTATUS_MPIE != 0 {
            s |= MSTATUS_MIE;
        }
        s |= MSTATUS_MPIE;
        // Priv 1.12: xRET to a mode below M clears MPRV.
        if mpp != Privilege::Machine {
            s &= !MSTATUS_MPRV;
        }
        self.csr.mstatus = s;
        self.privilege = mpp as u64;
        self.reservation = u64::MAX;
        Ok(self.csr.mepc & epc_mask())
    }

    /// sret (§3.3.2, §4.1.1): S or M mode; illegal in S when mstatus.TSR.
    fn sret(&mut self, insn: u64) -> Result<u64, Exception> {
        let prv = self.priv_level();
        let ms = self.csr.mstatus;
        if prv < Privilege::Supervisor || (prv == Privilege::Supervisor && ms & MSTATUS_TSR != 0) {
            return Err(Exception::IllegalInstruction(insn));
        }
        let spp = if ms & MSTATUS_SPP != 0 {
            Privilege::Supervisor
        } else {
            Privilege::User
        };
        let mut s = ms & !(MSTATUS_SIE | MSTATUS_SPP | MSTATUS_MPRV);
        if ms & MSTATUS_SPIE != 0 {
            s |= MSTATUS_SIE;
        }
        s |= MSTATUS_SPIE;
        self.csr.mstatus = s;
        self.privilege = spp as u64;
        self.reservation = u64::MAX;
        Ok(self.csr.sepc & epc_mask())
    }

    /// wfi (§3.3.3; QEMU `helper_wfi`): illegal in U-mode, and in S-mode when mstatus.TW.
    fn wfi(&mut self, insn: u64) -> Result<(), Exception> {
        let prv = self.priv_level();
        let tw = self.csr.mstatus & MSTATUS_TW != 0;
        if prv == Privilege::User || (prv == Privilege::Supervisor && tw) {
            return Err(Exception::IllegalInstruction(insn));
        }
        Ok(())
    }

    /// sfence.vma (§4.2.1): illegal in U-mode and in S-mode when mstatus.TVM. With rs1 = x0
    /// every translation goes; with an address, that page's (or, inside a cached superpage,
    /// everything).
    pub(crate) fn sfence_vma(&mut self, vaddr: u64, insn: u64) -> Result<(), Exception> {
        let prv = self.priv_level();
        if prv == Privilege::User
            || (prv == Privilege::Supervisor && self.csr.mstatus & MSTATUS_TVM != 0)
        {
            return Err(Exception::IllegalInstruction(insn));
        }
        if (insn >> 15) & 0x1f == 0 {
            // rs2 != x0 names one ASID, whose non-global translations go (§4.2.1).
            if (insn >> 20) & 0x1f == 0 {
                self.tlb_flush_all();
            } else {
                self.tlb_flush_non_global();
            }
        } else {
            self.tlb_flush_vaddr(vaddr);
        }
        Ok(())
    }

    /// An encoding emu does not implement (DESIGN.md §9): log once, remember it for
    /// `--strict`, raise illegal instruction.
    fn unimplemented_insn(&mut self, insn: u32) {
        let pc = self.common.pc;
        // The set is bounded so a guest cycling through encodings cannot grow it without
        // limit; past the bound, nothing more is logged.
        if self.unimplemented_logged.len() < MAX_LOGGED_UNIMPLEMENTED
            && self.unimplemented_logged.insert(insn)
        {
            let ext = super::decode::extension_gap(insn).unwrap_or("?");
            log::warn!(
                "riscv: unimplemented instruction {insn:#010x} at pc {pc:#x} ({ext} extension)"
            );
        }
        if self.unimplemented.is_none() {
            self.unimplemented = Some((pc, insn));
        }
        let id = self.hart_id;
        if let Some(o) = self.observer.as_mut() {
            o.unimplemented(id, pc, insn);
        }
        self.raise(Exception::IllegalInstruction(u64::from(insn)));
    }
}

/// xEPC bit 0 is always zero; bit 1 is masked on read when IALIGN = 32 (misa.C clear). misa is
/// read-only here with C set, so only bit 0 is cleared.
fn epc_mask() -> u64 {
    !1
}

const RAISES: HelperEffects = HelperEffects {
    reads_state: true,
    writes_state: true,
    may_raise: true,
};

extern "C" fn helper_raise(env: *mut CpuCommon, cause: u64, tval: u64, _: u64, _: u64) -> u64 {
    let cpu = state_of::<RiscvCpu>(env);
    cpu.pending_cause = cause;
    cpu.pending_tval = tval;
    cpu.common.exception_pending = 1;
    0
}

extern "C" fn helper_illegal(env: *mut CpuCommon, insn: u64, _: u64, _: u64, _: u64) -> u64 {
    state_of::<RiscvCpu>(env).raise(Exception::IllegalInstruction(insn & 0xffff_ffff));
    0
}

extern "C" fn helper_unimplemented(env: *mut CpuCommon, insn: u64, _: u64, _: u64, _: u64) -> u64 {
    state_of::<RiscvCpu>(env).unimplemented_insn(insn as u32);
    0
}

extern "C" fn helper_mret(env: *mut CpuCommon, insn: u64, _: u64, _: u64, _: u64) -> u64 {
    let cpu = state_of::<RiscvCpu>(env);
    cpu.mret(insn).unwrap_or_else(|e| {
        cpu.raise(e);
        0
    })
}

extern "C" fn helper_sret(env: *mut CpuCommon, insn: u64, _: u64, _: u64, _: u64) -> u64 {
    let cpu = state_of::<RiscvCpu>(env);
    cpu.sret(insn).unwrap_or_else(|e| {
        cpu.raise(e);
        0
    })
}

extern "C" fn helper_wfi(env: *mut CpuCommon, insn: u64, _: u64, _: u64, _: u64) -> u64 {
    let cpu = state_of::<RiscvCpu>(env);
    if let Err(e) = cpu.wfi(insn) {
        cpu.raise(e);
    }
    0
}

extern "C" fn helper_sfence_vma(
    env: *mut CpuCommon,
    vaddr: u64,
    _asid: u64,
    insn: u64,
    _: u64,
) -> u64 {
    let cpu = state_of::<RiscvCpu>(env);
    if let Err(e) = cpu.sfence_vma(vaddr, insn) {
        cpu.raise(e);
    }
    0
}

/// `raise(cause, tval)`: record a pending exception (ecall, ebreak, misaligned jump targets).
pub static HELPER_RAISE: HelperDef = HelperDef {
    name: "rv.raise",
    func: helper_raise,
    args: 2,
    ret: false,
    effects: RAISES,
};
/// `illegal(insn)`: illegal-instruction trap for a reserved or illegal encoding.
pub static HELPER_ILLEGAL: HelperDef = HelperDef {
    name: "rv.illegal",
    func: helper_illegal,
    args: 1,
    ret: false,
    effects: RAISES,
};
/// `unimplemented(insn)`: an encoding emu does not implement (logged once, `--strict`).
pub static HELPER_UNIMPLEMENTED: HelperDef = HelperDef {
    name: "rv.unimplemented",
    func: helper_unimplemented,
    args: 1,
    ret: false,
    effects: RAISES,
};
/// `mret(insn) -> new pc`.
pub static HELPER_MRET: HelperDef = HelperDef {
    name: "rv.mret",
    func: helper_mret,
    args: 1,
    ret: true,
    effects: RAISES,
};
/// `sret(insn) -> new pc`.
pub static HELPER_SRET: HelperDef = HelperDef {
    name: "rv.sret",
    func: helper_sret,
    args: 1,
    ret: true,
    effects: RAISES,
};
/// `wfi(insn)`: checks mstatus.TW; the block then exits with `Halt`.
pub static HELPER_WFI: HelperDef = HelperDef {
    name: "rv.wfi",
    func: helper_wfi,
    args: 1,
    ret: false,
    effects: RAISES,
};
/// `sfence_vma(vaddr, asid, insn)`: checks privilege and TVM, flushes the TLB.
pub static HELPER_SFENCE_VMA: HelperDef = HelperDef {
    name: "rv.sfence_vma",
    func: helper_sfence_vma,
    args: 3,
    ret: false,
    effects: RAISES,
};

#[cfg(test)]
mod tests {
    use super::super::cpu::test_cpu;
    use super::*;
    use std::sync::atomic::Ordering;

    fn env(cpu: &mut RiscvCpu) -> *mut CpuCommon {
        &mut cpu.common as *mut CpuCommon
    }

    #[test]
    fn exception_from_u_delegated_to_s() {
        let mut cpu = test_cpu();
        cpu.csr.medeleg = 1 << 13;
        cpu.csr.stvec = 0x8000_1001; // vectored: exceptions still go to BASE
        cpu.csr.mstatus |= MSTATUS_SIE;
        cpu.privilege = Privilege::User as u64;
        cpu.common.pc = 0x1000;
        cpu.reservation = 0x2000;
        cpu.raise(Exception::LoadPageFault(0xdead));
        cpu.deliver_exception();
        assert_eq!(cpu.common.exception_pending, 0);
        assert_eq!(cpu.priv_level(), Privilege::Supervisor);
        assert_eq!(cpu.common.pc, 0x8000_1000);
        assert_eq!(
            (cpu.csr.scause, cpu.csr.sepc, cpu.csr.stval),
            (13, 0x1000, 0xdead)
        );
        let ms = cpu.csr.mstatus;
        assert_eq!(ms & (MSTATUS_SPP | MSTATUS_SIE), 0);
        assert_ne!(ms & MSTATUS_SPIE, 0);
        assert_eq!(cpu.reservation, u64::MAX);
    }

    #[test]
    fn exceptions_in_m_are_never_delegated() {
        let mut cpu = test_cpu();
        cpu.csr.medeleg = u64::MAX;
        cpu.csr.mtvec = 0x8000_0100;
        cpu.csr.mstatus |= MSTATUS_MIE;
        cpu.common.pc = 0x8000_0040;
        cpu.raise(Exception::IllegalInstruction(0x13));
        cpu.deliver_exception();
        assert_eq!(cpu.priv_level(), Privilege::Machine);
        assert_eq!(cpu.common.pc, 0x8000_0100);
        assert_eq!(
            (cpu.csr.mcause, cpu.csr.mepc, cpu.csr.mtval),
            (2, 0x8000_0040, 0x13)
        );
        let ms = cpu.csr.mstatus;
        assert_eq!(ms & MSTATUS_MPP, MSTATUS_MPP);
        assert_ne!(ms & MSTATUS_MPIE, 0);
        assert_eq!(ms & MSTATUS_MIE, 0);
    }

    #[test]
    fn s_ecall_goes_to_m_with_mpp_s() {
        let mut cpu = test_cpu();
        cpu.privilege = Privilege::Supervisor as u64;
        cpu.raise(Exception::EnvironmentCallFromSMode);
        cpu.deliver_exception();
        assert_eq!(cpu.csr.mcause, 9);
        assert_eq!(
            (cpu.csr.mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT,
            Privilege::Supervisor as u64
        );
    }

    #[test]
    fn interrupt_priority_and_vectoring() {
        let mut cpu = test_cpu();
        cpu.csr.mtvec = 0x8000_0001;
        cpu.csr.mie = ALL_MIE;
        cpu.csr.mip = MIP_SSIP | MIP_STIP;
        cpu.irq_lines.store(MIP_MTIP, Ordering::Release);
        // M-mode with MIE clear: nothing is taken, but WFI would wake.
        assert!(!cpu.check_interrupts());
        assert!(cpu.interrupt_pending_for_wfi());
        cpu.csr.mstatus |= MSTATUS_MIE;
        assert!(cpu.check_interrupts());
        assert_eq!(cpu.csr.mcause, (1 << 63) | IRQ_M_TIMER);
        assert_eq!(cpu.common.pc, 0x8000_0000 + 4 * IRQ_M_TIMER);
        assert_eq!(cpu.csr.mtval, 0);
        // Next: SSI before STI (both to M, not delegated).
        cpu.irq_lines.store(0, Ordering::Release);
        cpu.privilege = Privilege::User as u64;
        assert_eq!(cpu.pending_interrupt(), Some(IRQ_S_SOFT));
        cpu.irq_lines.store(MIP_MEIP | MIP_MSIP, Ordering::Release);
        assert_eq!(cpu.pending_interrupt(), Some(IRQ_M_EXT));
        cpu.irq_lines.store(MIP_MSIP, Ordering::Release);
        assert_eq!(cpu.pending_interrupt(), Some(IRQ_M_SOFT));
    }

    #[test]
    fn delegated_interrupts_respect_s_enables() {
        let mut cpu = test_cpu();
        cpu.csr.mideleg = MIP_STIP | MIP_SSIP;
        cpu.csr.mie = ALL_MIE;
        cpu.csr.mip = MIP_STIP;
        cpu.csr.stvec = 0x8000_2000;
        // In M, S-level interrupts are disabled.
        cpu.csr.mstatus |= MSTATUS_MIE | MSTATUS_SIE;
        assert_eq!(cpu.pending_interrupt(), None);
        // In S with SIE clear: disabled; in U: enabled regardless.
        cpu.privilege = Privilege::Supervisor as u64;
        cpu.csr.mstatus &= !MSTATUS_SIE;
        assert_eq!(cpu.pending_interrupt(), None);
        // An M-level interrupt in S is taken even with mstatus.MIE clear.
        cpu.csr.mstatus &= !MSTATUS_MIE;
        cpu.irq_lines.store(MIP_MTIP, Ordering::Release);
        assert_eq!(cpu.pending_interrupt(), Some(IRQ_M_TIMER));
        cpu.irq_lines.store(0, Ordering::Release);
        cpu.privilege = Privilege::User as u64;
        assert!(cpu.check_interrupts());
        assert_eq!(cpu.priv_level(), Privilege::Supervisor);
        assert_eq!(cpu.csr.scause, (1 << 63) | IRQ_S_TIMER);
        assert_eq!(cpu.common.pc, 0x8000_2000);
    }

    #[test]
    fn sstc_timer_interrupt_vectored_to_s() {
        let mut cpu = test_cpu();
        cpu.csr.menvcfg = MENVCFG_STCE;
        cpu.csr.mideleg = MIP_STIP;
        cpu.csr.mie = MIP_STIP;
        cpu.csr.stvec = 0x8000_4001;
        cpu.csr.stimecmp = 3;
        cpu.privilege = Privilege::User as u64;
        cpu.common.pc = 0x1234;
        let tick = emu_devices::clock::NS_PER_MTIME_TICK;
        cpu.common.insn_count = 3 * tick - 1;
        assert!(!cpu.check_interrupts());
        assert_eq!(cpu.next_timer_deadline_ns(), Some(3 * tick));
        cpu.common.insn_count = 3 * tick;
        assert!(cpu.check_interrupts());
        assert_eq!(cpu.priv_level(), Privilege::Supervisor);
        assert_eq!(cpu.csr.scause, (1 << 63) | IRQ_S_TIMER);
        assert_eq!(cpu.csr.sepc, 0x1234);
        assert_eq!(cpu.common.pc, 0x8000_4000 + 4 * IRQ_S_TIMER);
        // In S with SIE clear, the still-pending timer waits; a new stimecmp clears it.
        assert!(!cpu.check_interrupts());
        cpu.csr.stimecmp = u64::MAX;
        assert!(!cpu.interrupt_pending_for_wfi());
    }

    const ALL_MIE: u64 = MIP_SSIP | MIP_MSIP | MIP_STIP | MIP_MTIP | MIP_SEIP | MIP_MEIP;

    #[test]
    fn mret_restores_and_clears_mprv() {
        let mut cpu = test_cpu();
        cpu.csr.mepc = 0x4001;
        cpu.csr.mstatus = (cpu.csr.mstatus & !MSTATUS_MPP)
            | (1 << MSTATUS_MPP_SHIFT)
            | MSTATUS_MPIE
            | MSTATUS_MPRV;
        cpu.reservation = 8;
        let e = env(&mut cpu);
        assert_eq!((HELPER_MRET.func)(e, 0x3020_0073, 0, 0, 0), 0x4000);
        assert_eq!(cpu.priv_level(), Privilege::Supervisor);
        let ms = cpu.csr.mstatus;
        assert_ne!(ms & MSTATUS_MIE, 0);
        assert_ne!(ms & MSTATUS_MPIE, 0);
        assert_eq!(ms & (MSTATUS_MPP | MSTATUS_MPRV), 0);
        assert_eq!(cpu.reservation, u64::MAX);
        // mret from S is illegal.
        let e = env(&mut cpu);
        (HELPER_MRET.func)(e, 0x3020_0073, 0, 0, 0);
        assert_eq!(cpu.common.exception_pending, 1);
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (2, 0x3020_0073));
    }

    #[test]
    fn sret_and_tsr() {
        let mut cpu = test_cpu();
        cpu.privilege = Privilege::Supervisor as u64;
        cpu.csr.sepc = 0x5000;
        cpu.csr.mstatus |= MSTATUS_SPIE;
        let e = env(&mut cpu);
        assert_eq!((HELPER_SRET.func)(e, 0x1020_0073, 0, 0, 0), 0x5000);
        assert_eq!(cpu.priv_level(), Privilege::User);
        assert_ne!(cpu.csr.mstatus & MSTATUS_SIE, 0);
        cpu.privilege = Privilege::Supervisor as u64;
        cpu.csr.mstatus |= MSTATUS_TSR;
        let e = env(&mut cpu);
        (HELPER_SRET.func)(e, 0x1020_0073, 0, 0, 0);
        assert_eq!(cpu.common.exception_pending, 1);
        assert_eq!(cpu.priv_level(), Privilege::Supervisor);
    }

    #[test]
    fn wfi_and_sfence_privilege_rules() {
        let mut cpu = test_cpu();
        let e = env(&mut cpu);
        (HELPER_WFI.func)(e, 0x1050_0073, 0, 0, 0);
        assert_eq!(cpu.common.exception_pending, 0);
        cpu.privilege = Privilege::Supervisor as u64;
        let e = env(&mut cpu);
        (HELPER_WFI.func)(e, 0x1050_0073, 0, 0, 0);
        assert_eq!(cpu.common.exception_pending, 0);
        cpu.csr.mstatus |= MSTATUS_TW;
        let e = env(&mut cpu);
        (HELPER_WFI.func)(e, 0x1050_0073, 0, 0, 0);
        assert_eq!(cpu.common.exception_pending, 1);
        cpu.common.exception_pending = 0;
        cpu.csr.mstatus |= MSTATUS_TVM;
        let e = env(&mut cpu);
        (HELPER_SFENCE_VMA.func)(e, 0, 0, 0x1200_0073, 0);
        assert_eq!(cpu.common.exception_pending, 1);
        cpu.common.exception_pending = 0;
        cpu.privilege = Privilege::User as u64;
        cpu.csr.mstatus &= !MSTATUS_TVM;
        let e = env(&mut cpu);
        (HELPER_SFENCE_VMA.func)(e, 0, 0, 0x1200_0073, 0);
        assert_eq!(cpu.common.exception_pending, 1);
    }

    #[test]
    fn unimplemented_is_recorded_once_and_raises() {
        let mut cpu = test_cpu();
        cpu.common.pc = 0x8000_0010;
        let e = env(&mut cpu);
        (HELPER_UNIMPLEMENTED.func)(e, 0xffff_ffff, 0, 0, 0);
        assert_eq!(cpu.unimplemented, Some((0x8000_0010, 0xffff_ffff)));
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (2, 0xffff_ffff));
        let e = env(&mut cpu);
        (HELPER_RAISE.func)(e, 3, 0x8000_0010, 0, 0);
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (3, 0x8000_0010));
    }
}
