//! The machine side of the GDB stub: runs a hart through the engine, notices stops, and
//! serves the server's requests while stopped (on the machine's own thread), for any hart of
//! the machine.
//!
//! All-stop: the harts of a board run on one host thread, so while one hart is stopped and
//! serving, none runs. A step runs the hart GDB names for one instruction and holds the others
//! (the machine asks [`HartDebug::holds`] before each hart's turn), as QEMU's gdbstub does for
//! `vCont;s:N`; a continue resumes every hart, or under scheduler locking only the named ones.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use emu_frontends::riscv::cpu::RiscvCpu;
use emu_frontends::riscv::debug::GDB_REG_CSR0;
use emu_jit::engine::{Engine, RunExit};

use super::{Event, Link, Reply, Request, StopKind};

/// Most bytes one memory read returns (GDB asks for a packet's worth at a time).
const MAX_READ: usize = 1 << 16;

/// The harts of a machine, for the debugger.
pub trait HartSet {
    fn hart_count(&self) -> usize;
    fn hart(&mut self, i: usize) -> Option<&mut RiscvCpu>;
}

/// A machine with one hart.
impl HartSet for RiscvCpu {
    fn hart_count(&self) -> usize {
        1
    }

    fn hart(&mut self, i: usize) -> Option<&mut RiscvCpu> {
        (i == 0).then_some(self)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// No GDB: run freely.
    Free,
    /// Run until a breakpoint, watchpoint or Ctrl-C: every hart, or only those in the mask
    /// (bit i = hart i; scheduler locking).
    Continue(Option<u64>),
    /// Run one instruction of this hart.
    Step(usize),
}

/// The debugger state of a machine.
pub struct HartDebug {
    link: Arc<Link>,
    mode: Mode,
    /// A stop to report before running again (a step that ended in a trap is reported once
    /// the machine has entered the handler).
    pending: Option<(usize, StopKind)>,
    /// The hart of the last stop reported (whose breakpoint a continue steps over).
    stopped_hart: usize,
}

impl HartDebug {
    pub(super) fn new(link: Arc<Link>, start_halted: bool) -> HartDebug {
        HartDebug {
            link,
            mode: Mode::Free,
            pending: start_halted.then_some((0, StopKind::Attach)),
            stopped_hart: 0,
        }
    }

    /// Whether hart `i` must not run now: another hart is being stepped, or scheduler locking
    /// resumed only other harts. A step or mask naming no existing hart holds nobody, so a
    /// bogus `vCont` cannot freeze the machine.
    pub fn holds(&self, i: usize) -> bool {
        let harts = self.link.harts.load(Ordering::Acquire);
        let exists = |mask: u64| mask & 1u64.checked_shl(harts as u32).map_or(u64::MAX, |b| b - 1);
        match self.mode {
            Mode::Step(s) => s != i && s < harts,
            Mode::Continue(Some(mask)) => {
                exists(mask) != 0 && mask & 1u64.checked_shl(i as u32).unwrap_or(0) == 0
            }
            _ => false,
        }
    }

    /// Hart `i` cannot run (stopped through SBI HSM): a step of it ends at once, with nothing
    /// retired, instead of holding every hart forever.
    pub fn hart_stopped(&mut self, i: usize, harts: &mut dyn HartSet, engine: &mut Engine) {
        if self.mode == Mode::Step(i) {
            self.stop(i, StopKind::Step, harts, engine);
        }
    }

    /// Run hart `i` of `harts` as `Engine::run` does, stopping for the debugger as needed.
    pub fn run(&mut self, i: usize, harts: &mut dyn HartSet, engine: &mut Engine) -> RunExit {
        if self.link.detach.swap(false, Ordering::AcqRel) {
            self.detach(harts, engine);
        }
        if let Some((hart, kind)) = self.pending.take() {
            self.stop(hart, kind, harts, engine);
        }
        if self.link.interrupt.swap(false, Ordering::AcqRel) {
            let kind = if self.mode == Mode::Free {
                StopKind::Attach
            } else {
                StopKind::Interrupt
            };
            self.stop(i, kind, harts, engine);
        }
        // GDB resumed with this hart held (a step of another hart): the machine asks
        // `holds` before running it again.
        if self.holds(i) {
            return RunExit::Yield;
        }
        let stepping = self.mode == Mode::Step(i);
        let Some(cpu) = harts.hart(i) else {
            return RunExit::Yield;
        };
        let start = cpu.common.insn_count;
        if stepping {
            cpu.common.insn_limit = cpu.common.insn_limit.min(start.saturating_add(1));
        }
        let exit = engine.run(cpu);
        if engine.take_breakpoint_hit().is_some() {
            self.stop(i, StopKind::Breakpoint, harts, engine);
            return exit;
        }
        if let Some(hit) = cpu.watch_hit.take() {
            // The accessing instruction stopped before its access, like a fault without a
            // cause (debug.rs): nothing to deliver; report the stop at that instruction.
            cpu.common.exception_pending = 0;
            let kind = StopKind::Watch {
                kind: hit.watch.kind,
                addr: hit.addr,
            };
            self.stop(i, kind, harts, engine);
            return RunExit::Yield;
        }
        if stepping {
            let retired = cpu.common.insn_count > start;
            match exit {
                // The trap is entered by the machine: report at the handler.
                RunExit::Exception => self.pending = Some((i, StopKind::Step)),
                _ if retired || exit == RunExit::Halt => {
                    self.stop(i, StopKind::Step, harts, engine)
                }
                _ => {}
            }
        }
        exit
    }

    /// Report a stop of hart `i` and serve requests until GDB resumes the machine.
    fn stop(&mut self, i: usize, kind: StopKind, harts: &mut dyn HartSet, engine: &mut Engine) {
        // Debug mode while GDB looks: breakpoints and steps need instruction-sized blocks.
        engine.set_debug_mode(true);
        self.stopped_hart = i;
        self.link.stopped.store(true, Ordering::Release);
        let _ = self.link.events.0.send(Event::Stopped { hart: i, kind });
        self.serve(harts, engine);
        self.link.stopped.store(false, Ordering::Release);
    }

    fn serve(&mut self, harts: &mut dyn HartSet, engine: &mut Engine) {
        loop {
            let req = self.link.requests.1.lock().recv();
            let Ok(req) = req else {
                // The server is gone: run on without it.
                self.detach(harts, engine);
                return;
            };
            let reply = match req {
                Request::ReadRegs(h) => match harts.hart(h) {
                    Some(cpu) => Reply::Regs(read_core_regs(cpu)),
                    None => Reply::Done(false),
                },
                Request::WriteRegs(h, v) => Reply::Done(harts.hart(h).is_some_and(|cpu| {
                    write_core_regs(cpu, &v);
                    true
                })),
                Request::ReadReg(h, n) => {
                    Reply::Value(harts.hart(h).and_then(|c| c.gdb_read_register(n).ok()))
                }
                Request::WriteReg(h, n, v) => Reply::Done(
                    harts
                        .hart(h)
                        .is_some_and(|c| c.gdb_write_register(n, v).is_ok()),
                ),
                Request::ReadMem(h, addr, len) => match harts.hart(h) {
                    Some(cpu) => Reply::Bytes(read_mem(cpu, addr, len)),
                    None => Reply::Bytes(Vec::new()),
                },
                Request::WriteMem(h, addr, data) => Reply::Done(
                    harts
                        .hart(h)
                        .is_some_and(|c| c.debug_write(addr, &data).is_ok()),
                ),
                Request::AddBreakpoint(pc) => {
                    engine.add_breakpoint(pc);
                    Reply::Done(true)
                }
                Request::RemoveBreakpoint(pc) => Reply::Done(engine.remove_breakpoint(pc)),
                Request::AddWatchpoint(w) => {
                    for h in 0..harts.hart_count() {
                        if let Some(cpu) = harts.hart(h) {
                            cpu.add_watchpoint(w);
                        }
                    }
                    Reply::Done(true)
                }
                Request::RemoveWatchpoint(w) => {
                    let mut any = false;
                    for h in 0..harts.hart_count() {
                        if let Some(cpu) = harts.hart(h) {
                            any |= cpu.remove_watchpoint(w);
                        }
                    }
                    Reply::Done(any)
                }
                Request::Continue(only) => {
                    self.resume(Mode::Continue(only), harts, engine);
                    return;
                }
                Request::Step(h) => {
                    self.resume(Mode::Step(h), harts, engine);
                    return;
                }
                Request::Detach => {
                    self.detach(harts, engine);
                    return;
                }
            };
            if self.link.events.0.send(Event::Reply(reply)).is_err() {
                self.detach(harts, engine);
                return;
            }
        }
    }

    fn resume(&mut self, mode: Mode, harts: &mut dyn HartSet, engine: &mut Engine) {
        self.mode = mode;
        // Leaving a breakpoint: don't stop at it again before moving. (Other harts at the
        // same PC pass it once too; an accepted imprecision.)
        let h = match mode {
            Mode::Step(h) => h,
            _ => self.stopped_hart,
        };
        if let Some(cpu) = harts.hart(h) {
            engine.skip_breakpoint_once(cpu.common.pc);
        }
        for h in 0..harts.hart_count() {
            if let Some(cpu) = harts.hart(h) {
                cpu.watch_hit = None;
            }
        }
    }

    fn detach(&mut self, harts: &mut dyn HartSet, engine: &mut Engine) {
        let bps: Vec<u64> = engine.breakpoints().iter().copied().collect();
        for pc in bps {
            engine.remove_breakpoint(pc);
        }
        for h in 0..harts.hart_count() {
            if let Some(cpu) = harts.hart(h) {
                for w in std::mem::take(&mut cpu.watchpoints) {
                    cpu.remove_watchpoint(w);
                }
                cpu.watch_hit = None;
            }
        }
        engine.set_debug_mode(false);
        self.mode = Mode::Free;
    }
}

/// x0..x31, pc, f0..f31: the `g` packet's registers.
fn read_core_regs(cpu: &mut RiscvCpu) -> Vec<u64> {
    (0..GDB_REG_CSR0)
        .map(|n| cpu.gdb_read_register(n).unwrap_or(0))
        .collect()
}

fn write_core_regs(cpu: &mut RiscvCpu, v: &[u64]) {
    for (n, &val) in v.iter().enumerate().take(GDB_REG_CSR0) {
        // The g packet's x0 is ignored, as the register is.
        let _ = cpu.gdb_write_register(n, val);
    }
}

/// Read as much of `[addr, addr + len)` as is mapped RAM, from the start.
fn read_mem(cpu: &mut RiscvCpu, addr: u64, len: usize) -> Vec<u8> {
    let len = len.min(MAX_READ);
    let mut out = vec![0u8; len];
    if cpu.debug_read(addr, &mut out).is_ok() {
        return out;
    }
    // Shorten to the readable prefix.
    let mut n = 0;
    let mut byte = [0u8; 1];
    while n < len
        && cpu
            .debug_read(addr.wrapping_add(n as u64), &mut byte)
            .is_ok()
    {
        if let Some(b) = out.get_mut(n) {
            *b = byte[0];
        }
        n += 1;
    }
    out.truncate(n);
    out
}
