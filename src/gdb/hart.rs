//! The hart side of the GDB stub: runs the guest through the engine, notices stops, and
//! serves the server's requests while stopped (on the hart's own thread).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use emu_frontends::riscv::cpu::RiscvCpu;
use emu_frontends::riscv::debug::GDB_REG_CSR0;
use emu_jit::engine::{Engine, RunExit};

use super::{Event, Link, Reply, Request, StopKind};

/// Most bytes one memory read returns (GDB asks for a packet's worth at a time).
const MAX_READ: usize = 1 << 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// No GDB: run freely.
    Free,
    /// Run until a breakpoint, watchpoint or Ctrl-C.
    Continue,
    /// Run one instruction.
    Step,
}

/// One hart's debugger state.
pub struct HartDebug {
    link: Arc<Link>,
    index: usize,
    mode: Mode,
    /// A stop to report before running again (a step that ended in a trap is reported once
    /// the run loop has entered the handler).
    pending: Option<StopKind>,
}

impl HartDebug {
    pub(super) fn new(link: Arc<Link>, index: usize, start_halted: bool) -> HartDebug {
        HartDebug {
            link,
            index,
            mode: Mode::Free,
            pending: start_halted.then_some(StopKind::Attach),
        }
    }

    /// Run the hart as `Engine::run` does, stopping for the debugger as needed.
    pub fn run(&mut self, cpu: &mut RiscvCpu, engine: &mut Engine) -> RunExit {
        if self.link.detach.swap(false, Ordering::AcqRel) {
            self.detach(cpu, engine);
        }
        if let Some(kind) = self.pending.take() {
            self.stop(kind, cpu, engine);
        }
        if self.link.interrupt.swap(false, Ordering::AcqRel) {
            let kind = if self.mode == Mode::Free {
                StopKind::Attach
            } else {
                StopKind::Interrupt
            };
            self.stop(kind, cpu, engine);
        }
        let start = cpu.common.insn_count;
        if self.mode == Mode::Step {
            cpu.common.insn_limit = cpu.common.insn_limit.min(start.saturating_add(1));
        }
        let exit = engine.run(cpu);
        if engine.take_breakpoint_hit().is_some() {
            self.stop(StopKind::Breakpoint, cpu, engine);
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
            self.stop(kind, cpu, engine);
            return RunExit::Yield;
        }
        if self.mode == Mode::Step {
            match exit {
                // The trap is entered by the run loop: report at the handler.
                RunExit::Exception => self.pending = Some(StopKind::Step),
                _ if cpu.common.insn_count > start || exit == RunExit::Halt => {
                    self.stop(StopKind::Step, cpu, engine)
                }
                _ => {}
            }
        }
        exit
    }

    /// Report a stop and serve requests until GDB resumes the hart.
    fn stop(&mut self, kind: StopKind, cpu: &mut RiscvCpu, engine: &mut Engine) {
        // Debug mode while GDB looks: breakpoints and steps need instruction-sized blocks.
        engine.set_debug_mode(true);
        self.link.stopped.store(true, Ordering::Release);
        let _ = self.link.events.0.send(Event::Stopped {
            hart: self.index,
            kind,
        });
        self.serve(cpu, engine);
        self.link.stopped.store(false, Ordering::Release);
    }

    fn serve(&mut self, cpu: &mut RiscvCpu, engine: &mut Engine) {
        loop {
            let req = self.link.requests.1.lock().recv();
            let Ok(req) = req else {
                // The server is gone: run on without it.
                self.detach(cpu, engine);
                return;
            };
            let reply = match req {
                Request::ReadRegs => Reply::Regs(read_core_regs(cpu)),
                Request::WriteRegs(v) => {
                    write_core_regs(cpu, &v);
                    Reply::Done(true)
                }
                Request::ReadReg(n) => Reply::Value(cpu.gdb_read_register(n).ok()),
                Request::WriteReg(n, v) => Reply::Done(cpu.gdb_write_register(n, v).is_ok()),
                Request::ReadMem(addr, len) => Reply::Bytes(read_mem(cpu, addr, len)),
                Request::WriteMem(addr, data) => Reply::Done(cpu.debug_write(addr, &data).is_ok()),
                Request::AddBreakpoint(pc) => {
                    engine.add_breakpoint(pc);
                    Reply::Done(true)
                }
                Request::RemoveBreakpoint(pc) => Reply::Done(engine.remove_breakpoint(pc)),
                Request::AddWatchpoint(w) => {
                    cpu.add_watchpoint(w);
                    Reply::Done(true)
                }
                Request::RemoveWatchpoint(w) => Reply::Done(cpu.remove_watchpoint(w)),
                Request::Continue | Request::Step => {
                    self.mode = if req == Request::Step {
                        Mode::Step
                    } else {
                        Mode::Continue
                    };
                    // Leaving a breakpoint: don't stop at it again before moving.
                    engine.skip_breakpoint_once(cpu.common.pc);
                    cpu.watch_hit = None;
                    return;
                }
                Request::Detach => {
                    self.detach(cpu, engine);
                    return;
                }
            };
            if self.link.events.0.send(Event::Reply(reply)).is_err() {
                self.detach(cpu, engine);
                return;
            }
        }
    }

    fn detach(&mut self, cpu: &mut RiscvCpu, engine: &mut Engine) {
        let bps: Vec<u64> = engine.breakpoints().iter().copied().collect();
        for pc in bps {
            engine.remove_breakpoint(pc);
        }
        for w in std::mem::take(&mut cpu.watchpoints) {
            cpu.remove_watchpoint(w);
        }
        cpu.watch_hit = None;
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
    // Shorten to the readable prefix, byte by byte from the failing page on.
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
