//! Debugger and tracing access to a hart: registers by GDB number, guest memory through the
//! MMU without side effects, watchpoints, and an observer of traps and guest mistakes
//! (QEMU's `-d int,guest_errors,unimp`).
//!
//! GDB register numbers are those of GDB's RISC-V target description (gdb/features/riscv/
//! *.xml and `riscv_register_names` in gdb/riscv-tdep.c): x0..x31 = 0..31, pc = 32,
//! f0..f31 = 33..64, and CSR number `n` = 65 + n (so fflags = 66, frm = 67, fcsr = 68).

use emu_jit::env::{AccessKind, PAGE_MASK, PAGE_SIZE};

use super::cpu::{Privilege, RiscvCpu};
use super::mmu::MmuMode;

/// GDB number of `pc`.
pub const GDB_REG_PC: usize = 32;
/// GDB number of `f0`.
pub const GDB_REG_F0: usize = 33;
/// GDB number of CSR 0.
pub const GDB_REG_CSR0: usize = 65;
/// One past the last GDB register number (CSR 0xfff).
pub const GDB_REG_END: usize = GDB_REG_CSR0 + 4096;

/// A trap taken by the hart (for `-d int`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapEvent {
    pub hart_id: u64,
    /// Cause number without the interrupt bit.
    pub cause: u64,
    pub interrupt: bool,
    /// The PC the trap was taken at (saved into xepc).
    pub epc: u64,
    pub tval: u64,
    pub from: Privilege,
    pub to: Privilege,
    /// The handler's address.
    pub target: u64,
}

/// Receives what the hart does that `-d` may want to show. Called on the hart's thread.
pub trait CpuObserver: Send {
    /// Every interrupt and exception taken (trap entry).
    fn trap(&mut self, _ev: &TrapEvent) {}
    /// A guest mistake the hart handles as the architecture says (an access to an unmapped
    /// physical address, ...).
    fn guest_error(&mut self, _hart_id: u64, _msg: &str) {}
    /// An encoding emu does not implement.
    fn unimplemented(&mut self, _hart_id: u64, _pc: u64, _insn: u32) {}
}

/// Which accesses a watchpoint reports (GDB's `Z2`/`Z3`/`Z4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatchKind {
    Write,
    Read,
    Access,
}

/// A watched range of guest virtual addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watchpoint {
    pub addr: u64,
    pub len: u64,
    pub kind: WatchKind,
}

impl Watchpoint {
    fn overlaps(&self, addr: u64, len: u64) -> bool {
        let end = self.addr.saturating_add(self.len.max(1));
        addr < end && self.addr < addr.saturating_add(len.max(1))
    }

    fn reports(&self, store: bool) -> bool {
        match self.kind {
            WatchKind::Write => store,
            WatchKind::Read => !store,
            WatchKind::Access => true,
        }
    }
}

/// A watchpoint that fired: the watchpoint and the access's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchHit {
    pub watch: Watchpoint,
    pub addr: u64,
}

/// Why a debugger access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DebugAccessError {
    /// No such register number.
    #[error("no register {0}")]
    NoRegister(usize),
    /// The address does not translate, or is not RAM.
    #[error("cannot access guest address {0:#x}")]
    Address(u64),
}

impl RiscvCpu {
    /// Read register `n` (GDB numbering). CSRs read as M-mode would, through their read
    /// functions.
    pub fn gdb_read_register(&mut self, n: usize) -> Result<u64, DebugAccessError> {
        match n {
            0..=31 => Ok(self.x.get(n).copied().unwrap_or(0)),
            GDB_REG_PC => Ok(self.common.pc),
            GDB_REG_F0..GDB_REG_CSR0 => self
                .f
                .get(n - GDB_REG_F0)
                .copied()
                .ok_or(DebugAccessError::NoRegister(n)),
            GDB_REG_CSR0..GDB_REG_END => self
                .csr_read((n - GDB_REG_CSR0) as u16)
                .ok_or(DebugAccessError::NoRegister(n)),
            _ => Err(DebugAccessError::NoRegister(n)),
        }
    }

    /// Write register `n` (GDB numbering). x0 ignores writes; a CSR write has exactly the
    /// effects of the CSR's write function (WARL masking, TLB flush on satp, ...).
    pub fn gdb_write_register(&mut self, n: usize, v: u64) -> Result<(), DebugAccessError> {
        match n {
            0 => Ok(()),
            1..=31 => {
                if let Some(r) = self.x.get_mut(n) {
                    *r = v;
                }
                Ok(())
            }
            GDB_REG_PC => {
                self.common.pc = v;
                Ok(())
            }
            GDB_REG_F0..GDB_REG_CSR0 => {
                let r = self
                    .f
                    .get_mut(n - GDB_REG_F0)
                    .ok_or(DebugAccessError::NoRegister(n))?;
                *r = v;
                Ok(())
            }
            GDB_REG_CSR0..GDB_REG_END => {
                if self.csr_write_debug((n - GDB_REG_CSR0) as u16, v) {
                    Ok(())
                } else {
                    Err(DebugAccessError::NoRegister(n))
                }
            }
            _ => Err(DebugAccessError::NoRegister(n)),
        }
    }

    /// Translate a data address as the hart's current data accesses would, without touching
    /// the TLB or setting A/D bits.
    pub fn debug_translate(&mut self, vaddr: u64) -> Result<u64, DebugAccessError> {
        let mode = MmuMode::from_idx(u32::from(self.data_mmu_idx()));
        self.translate_debug(vaddr, AccessKind::Load, mode)
            .or_else(|_| {
                // Code that is execute-only still shows in the debugger.
                let fetch = MmuMode::from_idx(u32::from(self.fetch_mmu_idx()));
                self.translate_debug(vaddr, AccessKind::Fetch, fetch)
            })
            .map_err(|_| DebugAccessError::Address(vaddr))
    }

    /// Read guest virtual memory for a debugger (RAM only: device registers are not read,
    /// since reads may have side effects).
    pub fn debug_read(&mut self, vaddr: u64, buf: &mut [u8]) -> Result<(), DebugAccessError> {
        let mut done = 0usize;
        while done < buf.len() {
            let va = vaddr.wrapping_add(done as u64);
            let in_page = (PAGE_SIZE - (va & !PAGE_MASK)) as usize;
            let n = in_page.min(buf.len() - done);
            let phys = self.debug_translate(va)?;
            let chunk = buf
                .get_mut(done..done + n)
                .ok_or(DebugAccessError::Address(va))?;
            let ram = self
                .bus
                .ram_at(phys, n as u64)
                .ok_or(DebugAccessError::Address(va))?;
            if !ram.read(phys, chunk) {
                return Err(DebugAccessError::Address(va));
            }
            done += n;
        }
        Ok(())
    }

    /// Write guest virtual memory for a debugger (RAM only); translations of the written
    /// code are invalidated as for a guest store.
    pub fn debug_write(&mut self, vaddr: u64, data: &[u8]) -> Result<(), DebugAccessError> {
        let mut done = 0usize;
        while done < data.len() {
            let va = vaddr.wrapping_add(done as u64);
            let in_page = (PAGE_SIZE - (va & !PAGE_MASK)) as usize;
            let n = in_page.min(data.len() - done);
            let phys = self.debug_translate(va)?;
            let chunk = data
                .get(done..done + n)
                .ok_or(DebugAccessError::Address(va))?;
            let ram = self
                .bus
                .ram_at(phys, n as u64)
                .ok_or(DebugAccessError::Address(va))?;
            if !ram.write(phys, chunk) {
                return Err(DebugAccessError::Address(va));
            }
            if self.code_map.note_write(phys) {
                self.common.insn_limit = 0;
            }
            done += n;
        }
        Ok(())
    }

    /// Add a watchpoint. Pages holding watched addresses take the memory slow path (their
    /// TLB data entries are flagged), which reports hits in `watch_hit`.
    pub fn add_watchpoint(&mut self, w: Watchpoint) {
        if !self.watchpoints.contains(&w) {
            self.watchpoints.push(w);
        }
        self.tlb_flush_all();
    }

    /// Remove a watchpoint; false if there was none.
    pub fn remove_watchpoint(&mut self, w: Watchpoint) -> bool {
        let before = self.watchpoints.len();
        self.watchpoints.retain(|x| *x != w);
        self.tlb_flush_all();
        self.watchpoints.len() != before
    }

    /// Whether a watchpoint lies in the guest virtual page of `vaddr`.
    pub(crate) fn page_is_watched(&self, vaddr: u64) -> bool {
        let page = vaddr & PAGE_MASK;
        self.watchpoints.iter().any(|w| w.overlaps(page, PAGE_SIZE))
    }

    /// Slow path: if an access of `len` bytes at `vaddr` hits a watchpoint, note it and stop
    /// the instruction before it accesses memory, as a fault would (`exception_pending` with
    /// no cause: the debugger side clears it and reports the stop at the instruction, which
    /// is what GDB expects of RISC-V watchpoints: they fire before the access, and GDB steps
    /// over the instruction with its watchpoints removed). Returns whether the access must
    /// not be performed.
    pub(crate) fn check_watchpoints(&mut self, vaddr: u64, len: u64, store: bool) -> bool {
        if self.watch_hit.is_some() {
            // Not reported yet: the instruction is already stopping.
            return true;
        }
        let hit = self
            .watchpoints
            .iter()
            .find(|w| w.reports(store) && w.overlaps(vaddr, len))
            .copied();
        match hit {
            Some(watch) => {
                self.watch_hit = Some(WatchHit { watch, addr: vaddr });
                self.common.exception_pending = 1;
                true
            }
            None => false,
        }
    }

    /// Tell the observer (if any) about a guest mistake.
    pub(crate) fn report_guest_error(&mut self, msg: impl FnOnce() -> String) {
        let id = self.hart_id;
        if let Some(o) = self.observer.as_mut() {
            o.guest_error(id, &msg());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::{test_cpu, TEST_RAM_BASE};
    use super::*;
    use emu_jit::ir::MemOp;

    #[test]
    fn registers_by_gdb_number() {
        let mut cpu = test_cpu();
        cpu.gdb_write_register(5, 42).unwrap();
        cpu.gdb_write_register(0, 42).unwrap();
        cpu.gdb_write_register(GDB_REG_F0 + 3, 0x4000_0000_0000_0000)
            .unwrap();
        cpu.gdb_write_register(GDB_REG_PC, TEST_RAM_BASE + 8)
            .unwrap();
        assert_eq!(cpu.x[5], 42);
        assert_eq!(cpu.gdb_read_register(0), Ok(0));
        assert_eq!(cpu.f[3], 0x4000_0000_0000_0000);
        assert_eq!(cpu.common.pc, TEST_RAM_BASE + 8);
        // mscratch (0x340) through the CSR table; fcsr = frm << 5 | fflags.
        cpu.gdb_write_register(GDB_REG_CSR0 + 0x340, 0x1234)
            .unwrap();
        assert_eq!(cpu.csr.mscratch, 0x1234);
        cpu.gdb_write_register(GDB_REG_CSR0 + 3, (2 << 5) | 1)
            .unwrap();
        assert_eq!(cpu.gdb_read_register(GDB_REG_CSR0 + 2), Ok(2));
        assert_eq!(cpu.gdb_read_register(GDB_REG_CSR0 + 1), Ok(1));
        assert_eq!(
            cpu.gdb_read_register(GDB_REG_CSR0 + 0x7ff),
            Err(DebugAccessError::NoRegister(GDB_REG_CSR0 + 0x7ff))
        );
        assert!(cpu.gdb_read_register(GDB_REG_END).is_err());
    }

    #[test]
    fn memory_reads_and_writes_cross_pages_and_refuse_holes() {
        let mut cpu = test_cpu();
        let at = TEST_RAM_BASE + 0xffe;
        cpu.debug_write(at, &[1, 2, 3, 4]).unwrap();
        let mut b = [0u8; 4];
        cpu.debug_read(at, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        assert_eq!(
            cpu.debug_read(0x10, &mut b),
            Err(DebugAccessError::Address(0x10))
        );
    }

    #[test]
    fn watchpoints_fire_on_the_slow_path() {
        let mut cpu = test_cpu();
        let addr = TEST_RAM_BASE + 0x2000;
        let dword = MemOp::new(3, false, false);
        // Fill the TLB first: adding a watchpoint must take the page off the fast path.
        cpu.common.store(addr + 0x100, 0, dword, 3);
        cpu.add_watchpoint(Watchpoint {
            addr,
            len: 8,
            kind: WatchKind::Write,
        });
        cpu.common.insn_limit = u64::MAX;
        let _ = cpu.common.load(addr, dword, 3);
        assert_eq!(
            cpu.watch_hit, None,
            "a load does not fire a write watchpoint"
        );
        cpu.common.store(addr + 0x100, 7, dword, 3);
        assert_eq!(cpu.watch_hit, None, "same page, other address");
        cpu.common
            .store(addr + 4, 7, MemOp::new(2, false, false), 3);
        assert_eq!(cpu.watch_hit.map(|h| h.addr), Some(addr + 4));
        assert_eq!(cpu.common.exception_pending, 1, "the instruction stops");
        let mut b = [0u8; 4];
        cpu.debug_read(addr + 4, &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), 0, "before its store");
        // The debugger takes the hit and steps over with the watchpoint removed.
        cpu.watch_hit = None;
        cpu.common.exception_pending = 0;
        assert!(cpu.remove_watchpoint(Watchpoint {
            addr,
            len: 8,
            kind: WatchKind::Write,
        }));
        cpu.common
            .store(addr + 4, 7, MemOp::new(2, false, false), 3);
        assert_eq!(cpu.common.exception_pending, 0);
        cpu.debug_read(addr + 4, &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), 7);
    }

    /// The engine's debugging hooks on a real hart, on every engine: a breakpoint inside what
    /// would be one block stops before its instruction (debug mode), a budget of one steps,
    /// and with `exec` tracing every block run is seen, even a compiled self-loop.
    #[test]
    fn engine_breakpoints_steps_and_exec_trace() {
        use crate::riscv::translate::testutil::{b_type, hart, i_type, program, RAM_BASE};
        use emu_jit::engine::{Engine, EngineKind, RunExit, TraceSink, TraceWants};
        use emu_jit::guest::BlockKey;
        use emu_jit::tb::TbId;
        use std::sync::{Arc, Mutex};

        struct Runs(Arc<Mutex<Vec<u64>>>);
        impl TraceSink for Runs {
            fn before_exec(&mut self, _: &mut dyn std::any::Any, key: &BlockKey, _: TbId) {
                if let Ok(mut v) = self.0.lock() {
                    v.push(key.pc);
                }
            }
        }

        for kind in [EngineKind::Interp, EngineKind::Jit, EngineKind::Tiered] {
            let mut cpu = hart();
            let addi = |rd, rs, imm| i_type("addi", rd, rs, imm);
            let end = program(
                &cpu,
                &[addi(5, 0, 1), addi(5, 5, 1), addi(5, 5, 1), addi(5, 5, 1)],
            );
            let mut e = Engine::new(kind, cpu.code_map.clone()).unwrap();
            e.set_tier_up_threshold(1);
            e.set_debug_mode(true);
            e.add_breakpoint(RAM_BASE + 8);
            cpu.common.insn_limit = 100;
            assert_eq!(e.run(&mut *cpu), RunExit::Yield, "{kind:?}");
            assert_eq!(e.take_breakpoint_hit(), Some(RAM_BASE + 8));
            assert_eq!((cpu.common.pc, cpu.x[5]), (RAM_BASE + 8, 2), "{kind:?}");
            // One step from the breakpoint.
            e.skip_breakpoint_once(cpu.common.pc);
            cpu.common.insn_limit = cpu.common.insn_count + 1;
            assert_eq!(e.run(&mut *cpu), RunExit::Budget, "{kind:?}");
            assert_eq!((cpu.common.pc, cpu.x[5]), (RAM_BASE + 12, 3), "{kind:?}");
            assert!(e.remove_breakpoint(RAM_BASE + 8));
            cpu.common.insn_limit = 50;
            assert_eq!(e.run(&mut *cpu), RunExit::Budget);
            assert_eq!((cpu.common.pc, cpu.x[5]), (end, 4), "{kind:?}");

            // A counted loop (one block jumping to itself), traced with exec.
            let mut cpu = hart();
            program(&cpu, &[addi(5, 5, 1), b_type("bne", 5, 6, -4)]);
            cpu.x[6] = 10;
            let runs = Arc::new(Mutex::new(Vec::new()));
            let mut e = Engine::new(kind, cpu.code_map.clone()).unwrap();
            e.set_tier_up_threshold(1);
            let wants = TraceWants {
                translate: false,
                exec: true,
            };
            e.set_tracer(Some(Box::new(Runs(runs.clone()))), wants);
            for _ in 0..3 {
                cpu.common.insn_limit = cpu.common.insn_count + 7;
                e.run(&mut *cpu);
                e.wait_for_compiles();
            }
            cpu.common.insn_limit = 100;
            assert_eq!(e.run(&mut *cpu), RunExit::Budget);
            let runs = runs.lock().unwrap().clone();
            let loop_runs = runs.iter().filter(|&&pc| pc == RAM_BASE).count();
            assert_eq!(loop_runs, 10, "{kind:?}: {runs:x?}");
            let s = e.stats();
            assert_eq!(runs.len() as u64, s.interp_runs + s.native_runs, "{kind:?}");
            assert_eq!(s.chain_links, 0);
        }
    }

    /// The observer sees traps (with the privilege change) and guest errors.
    #[test]
    fn observer_sees_traps_and_guest_errors() {
        use emu_jit::guest::Guest;
        use std::sync::{Arc, Mutex};

        #[derive(Default)]
        struct Seen {
            traps: Vec<TrapEvent>,
            errors: Vec<String>,
        }
        struct Obs(Arc<Mutex<Seen>>);
        impl CpuObserver for Obs {
            fn trap(&mut self, ev: &TrapEvent) {
                if let Ok(mut s) = self.0.lock() {
                    s.traps.push(*ev);
                }
            }
            fn guest_error(&mut self, _: u64, msg: &str) {
                if let Ok(mut s) = self.0.lock() {
                    s.errors.push(msg.to_string());
                }
            }
        }
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut cpu = test_cpu();
        cpu.observer = Some(Box::new(Obs(seen.clone())));
        cpu.csr.mtvec = TEST_RAM_BASE + 0x100;
        cpu.common.pc = 0x1000;
        assert!(cpu.block_key().is_none(), "nothing at 0x1000");
        cpu.deliver_exception();
        let _ = cpu.common.load(0x2000, MemOp::new(3, false, false), 3);
        let s = seen.lock().unwrap();
        assert_eq!(s.traps.len(), 1);
        let t = s.traps[0];
        assert_eq!(
            (t.cause, t.interrupt, t.epc, t.tval),
            (1, false, 0x1000, 0x1000)
        );
        assert_eq!(
            (t.from, t.to, t.target),
            (
                Privilege::Machine,
                Privilege::Machine,
                TEST_RAM_BASE + 0x100
            )
        );
        assert_eq!(s.errors.len(), 2, "{:?}", s.errors);
        assert!(s.errors[0].contains("fetch from non-RAM physical address 0x1000"));
        assert!(s.errors[1].contains("load from unmapped physical address 0x2000"));
    }
}
