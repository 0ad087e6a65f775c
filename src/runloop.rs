//! The run loop of one hart (DESIGN.md §2, §5): it arms the instruction budget up to the next
//! event, lets the engine run guest code, and handles what made it stop — an exception to
//! deliver, a WFI to sleep through, an interrupt to take, the program's exit.
//!
//! The loop is written against [`Vcpu`], so it can be tested with a scripted hart; the machine
//! implements `Vcpu` for a real RISC-V hart and engine.

use thiserror::Error;

/// Instructions a hart runs before the loop looks at the world again when no timer is due
/// sooner: bounds the latency of noticing an HTIF exit, while keeping loop overhead small.
pub const SLICE_INSNS: u64 = 100_000;

/// Why the engine returned to the loop (mirrors `emu_jit::engine::RunExit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepExit {
    /// An exception is pending in the hart's state.
    Exception,
    /// Translation state changed or an interrupt check was requested.
    Yield,
    /// The hart executed WFI.
    Halt,
    /// The instruction budget is spent.
    Budget,
}

/// What the loop needs from a hart and its engine.
pub trait Vcpu {
    /// Run guest code until the engine returns.
    fn run(&mut self) -> StepExit;
    /// The PC of the next instruction (for error messages).
    fn pc(&self) -> u64;
    /// Retired instructions so far.
    fn insn_count(&self) -> u64;
    /// Arm the budget: generated code leaves when `insn_count >= limit`.
    fn set_insn_limit(&mut self, limit: u64);
    /// The hart's current virtual time.
    fn now_ns(&self) -> u64;
    /// Instructions the hart retires before reaching virtual time `ns`.
    fn insns_until(&self, ns: u64) -> u64;
    /// Sleep (WFI) until virtual time `ns`.
    fn skip_to(&mut self, ns: u64);
    /// Enter the trap handler for the pending exception. In strict mode, an exception caused by
    /// an encoding the emulator does not implement is returned instead: `(pc, bits)`.
    fn deliver_exception(&mut self, strict: bool) -> Result<(), (u64, u32)>;
    /// Take a pending, enabled interrupt (trap entry); true if one was taken.
    fn check_interrupts(&mut self) -> bool;
    /// Whether an interrupt is pending that wakes the hart from WFI (even if disabled).
    fn interrupt_pending_for_wfi(&self) -> bool;
    /// The hart's own next timer deadline (e.g. Sstc `stimecmp`), if any.
    fn next_timer_deadline_ns(&self) -> Option<u64>;
}

/// What the loop needs from the machine around the hart.
pub trait Platform {
    /// Publish the hart's time to the devices and recompute their interrupt lines.
    fn sync_time(&mut self, now_ns: u64);
    /// Earliest device deadline (virtual ns), if any.
    fn next_deadline_ns(&self) -> Option<u64>;
    /// The program's exit code, once it has asked to exit.
    fn exit_code(&self) -> Option<u64>;
    /// `--trace`: the engine ran from `pc` with `insns` retired and stopped for `exit`.
    fn trace(&mut self, _pc: u64, _insns: u64, _exit: StepExit) {}
}

/// Ways a run ends other than the program's exit.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RunError {
    /// The `--max-insns` guard (retired instructions plus trap entries).
    #[error("the guest ran {0} instructions without exiting (the --max-insns limit)")]
    InsnLimit(u64),
    /// WFI with no interrupt pending and no timer armed.
    #[error(
        "guest is waiting for an interrupt that can never come (WFI at pc {pc:#x} with no \
         interrupt pending and no timer armed)"
    )]
    WaitForever { pc: u64 },
    /// `--strict`: the guest executed an encoding emu does not implement.
    #[error("unimplemented instruction {bits:#010x} at pc {pc:#x} (--strict)")]
    Unimplemented { pc: u64, bits: u32 },
}

/// Options of one run.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopOptions {
    pub strict: bool,
    pub max_insns: Option<u64>,
    /// Run one block per engine call and report each to [`Platform::trace`].
    pub trace: bool,
}

/// Run `cpu` on `platform` until the program exits; returns its exit code.
pub fn run(
    cpu: &mut dyn Vcpu,
    platform: &mut dyn Platform,
    opts: LoopOptions,
) -> Result<u64, RunError> {
    // Exceptions delivered so far: the --max-insns guard counts them with retired
    // instructions, so a guest stuck re-raising a fault (which retires nothing) still stops.
    let mut traps = 0u64;
    loop {
        let now = cpu.now_ns();
        platform.sync_time(now);
        if let Some(code) = platform.exit_code() {
            return Ok(code);
        }
        let count = cpu.insn_count();
        if let Some(max) = opts.max_insns {
            if count.saturating_add(traps) >= max {
                return Err(RunError::InsnLimit(max));
            }
        }
        cpu.check_interrupts();

        // Re-arm every time: the slow path zeroes the limit to force an exit.
        let mut limit = count.saturating_add(SLICE_INSNS);
        if let Some(d) = next_deadline(cpu, platform) {
            limit = limit.min(count.saturating_add(cpu.insns_until(d).max(1)));
        }
        if let Some(max) = opts.max_insns {
            limit = limit.min(max.saturating_sub(traps));
        }
        if opts.trace {
            // Blocks check the budget on entry, so this runs exactly one block.
            limit = limit.min(count.saturating_add(1));
        }
        cpu.set_insn_limit(limit);

        let pc = cpu.pc();
        let exit = cpu.run();
        if opts.trace {
            platform.trace(pc, count, exit);
        }
        match exit {
            StepExit::Exception => {
                traps += 1;
                cpu.deliver_exception(opts.strict)
                    .map_err(|(pc, bits)| RunError::Unimplemented { pc, bits })?
            }
            StepExit::Halt => {
                platform.sync_time(cpu.now_ns());
                if platform.exit_code().is_some() || cpu.interrupt_pending_for_wfi() {
                    continue;
                }
                match next_deadline(cpu, platform) {
                    Some(d) => cpu.skip_to(d),
                    None => return Err(RunError::WaitForever { pc: cpu.pc() }),
                }
            }
            StepExit::Yield | StepExit::Budget => {}
        }
    }
}

/// The earliest deadline still in the hart's future (a compare already reached is a pending
/// interrupt line, not a deadline).
fn next_deadline(cpu: &dyn Vcpu, platform: &dyn Platform) -> Option<u64> {
    let now = cpu.now_ns();
    [platform.next_deadline_ns(), cpu.next_timer_deadline_ns()]
        .into_iter()
        .flatten()
        .filter(|&d| d > now)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hart that retires one instruction per step and follows a script of exits.
    #[derive(Default)]
    struct Scripted {
        count: u64,
        limit: u64,
        time_base: u64,
        script: Vec<StepExit>,
        delivered: u32,
        taken: u32,
        pending_irq: bool,
        unimplemented: Option<(u64, u32)>,
    }

    impl Vcpu for Scripted {
        fn run(&mut self) -> StepExit {
            if self.script.is_empty() {
                // Spin like a guest looping after its exit: run to the budget.
                self.count = self.count.max(self.limit);
                return StepExit::Budget;
            }
            self.count += 1;
            self.script.remove(0)
        }
        fn pc(&self) -> u64 {
            0x8000_0000
        }
        fn insn_count(&self) -> u64 {
            self.count
        }
        fn set_insn_limit(&mut self, limit: u64) {
            self.limit = limit;
        }
        fn now_ns(&self) -> u64 {
            self.time_base + self.count
        }
        fn insns_until(&self, ns: u64) -> u64 {
            ns.saturating_sub(self.now_ns())
        }
        fn skip_to(&mut self, ns: u64) {
            self.time_base = ns - self.count;
            self.pending_irq = true;
        }
        fn deliver_exception(&mut self, strict: bool) -> Result<(), (u64, u32)> {
            match self.unimplemented {
                Some(u) if strict => Err(u),
                _ => {
                    self.delivered += 1;
                    Ok(())
                }
            }
        }
        fn check_interrupts(&mut self) -> bool {
            if self.pending_irq {
                self.pending_irq = false;
                self.taken += 1;
                return true;
            }
            false
        }
        fn interrupt_pending_for_wfi(&self) -> bool {
            self.pending_irq
        }
        fn next_timer_deadline_ns(&self) -> Option<u64> {
            None
        }
    }

    #[derive(Default)]
    struct Board {
        now: u64,
        deadline: Option<u64>,
        exit_at: Option<(u64, u64)>,
        traced: Vec<(u64, StepExit)>,
    }

    impl Platform for Board {
        fn sync_time(&mut self, now_ns: u64) {
            self.now = now_ns;
        }
        fn next_deadline_ns(&self) -> Option<u64> {
            self.deadline.filter(|&d| d > self.now)
        }
        fn exit_code(&self) -> Option<u64> {
            self.exit_at
                .and_then(|(at, code)| (self.now >= at).then_some(code))
        }
        fn trace(&mut self, _pc: u64, insns: u64, exit: StepExit) {
            self.traced.push((insns, exit));
        }
    }

    #[test]
    fn trace_reports_one_step_per_engine_call() {
        let mut cpu = Scripted {
            script: vec![StepExit::Yield, StepExit::Exception],
            ..Default::default()
        };
        let mut board = Board {
            exit_at: Some((4, 0)),
            ..Default::default()
        };
        let opts = LoopOptions {
            trace: true,
            ..Default::default()
        };
        assert_eq!(run(&mut cpu, &mut board, opts), Ok(0));
        assert_eq!(
            board.traced,
            vec![
                (0, StepExit::Yield),
                (1, StepExit::Exception),
                (2, StepExit::Budget),
                (3, StepExit::Budget)
            ]
        );
    }

    #[test]
    fn exits_with_the_program_code() {
        let mut cpu = Scripted {
            script: vec![StepExit::Exception, StepExit::Yield],
            ..Default::default()
        };
        let mut board = Board {
            exit_at: Some((1000, 7)),
            ..Default::default()
        };
        assert_eq!(run(&mut cpu, &mut board, LoopOptions::default()), Ok(7));
        assert_eq!(cpu.delivered, 1);
    }

    #[test]
    fn max_insns_stops_a_spinning_guest() {
        let mut cpu = Scripted::default();
        let opts = LoopOptions {
            max_insns: Some(250_000),
            ..Default::default()
        };
        let r = run(&mut cpu, &mut Board::default(), opts);
        assert_eq!(r, Err(RunError::InsnLimit(250_000)));
        assert_eq!(cpu.count, 250_000, "the budget never overshoots the guard");
    }

    /// A hart whose every step raises without retiring.
    struct TrapLoop(u64);
    impl Vcpu for TrapLoop {
        fn run(&mut self) -> StepExit {
            StepExit::Exception
        }
        fn pc(&self) -> u64 {
            0
        }
        fn insn_count(&self) -> u64 {
            0
        }
        fn set_insn_limit(&mut self, _: u64) {}
        fn now_ns(&self) -> u64 {
            0
        }
        fn insns_until(&self, _: u64) -> u64 {
            0
        }
        fn skip_to(&mut self, _: u64) {}
        fn deliver_exception(&mut self, _: bool) -> Result<(), (u64, u32)> {
            self.0 += 1;
            Ok(())
        }
        fn check_interrupts(&mut self) -> bool {
            false
        }
        fn interrupt_pending_for_wfi(&self) -> bool {
            false
        }
        fn next_timer_deadline_ns(&self) -> Option<u64> {
            None
        }
    }

    #[test]
    fn max_insns_also_stops_a_trap_loop() {
        let mut cpu = TrapLoop(0);
        let opts = LoopOptions {
            max_insns: Some(500),
            ..Default::default()
        };
        let r = run(&mut cpu, &mut Board::default(), opts);
        assert_eq!(r, Err(RunError::InsnLimit(500)));
        assert_eq!(cpu.0, 500);
    }

    #[test]
    fn wfi_sleeps_to_the_timer_or_fails() {
        let mut cpu = Scripted {
            script: vec![StepExit::Halt],
            ..Default::default()
        };
        let mut board = Board {
            deadline: Some(5000),
            exit_at: Some((5000, 0)),
            ..Default::default()
        };
        assert_eq!(run(&mut cpu, &mut board, LoopOptions::default()), Ok(0));
        assert_eq!(cpu.count, 1, "time skipped, no instructions spent");
        assert_eq!(cpu.now_ns(), 5000);
        assert_eq!(cpu.taken, 0, "exit seen before the interrupt");

        let mut cpu = Scripted {
            script: vec![StepExit::Halt],
            ..Default::default()
        };
        let r = run(&mut cpu, &mut Board::default(), LoopOptions::default());
        assert_eq!(r, Err(RunError::WaitForever { pc: 0x8000_0000 }));
        assert!(r
            .unwrap_err()
            .to_string()
            .starts_with("guest is waiting for an interrupt"));
    }

    #[test]
    fn budget_stops_at_the_timer_deadline() {
        let mut cpu = Scripted::default();
        let mut board = Board {
            deadline: Some(1234),
            exit_at: Some((1234, 0)),
            ..Default::default()
        };
        assert_eq!(run(&mut cpu, &mut board, LoopOptions::default()), Ok(0));
        assert_eq!(cpu.count, 1234);
    }

    #[test]
    fn strict_mode_turns_unimplemented_into_an_error() {
        let mk = || Scripted {
            script: vec![StepExit::Exception],
            unimplemented: Some((0x8000_0010, 0xffff_ffff)),
            ..Default::default()
        };
        let strict = LoopOptions {
            strict: true,
            max_insns: Some(10),
            ..Default::default()
        };
        let r = run(&mut mk(), &mut Board::default(), strict);
        assert_eq!(
            r,
            Err(RunError::Unimplemented {
                pc: 0x8000_0010,
                bits: 0xffff_ffff
            })
        );
        let lax = LoopOptions {
            strict: false,
            max_insns: Some(10),
            ..Default::default()
        };
        let mut cpu = mk();
        let r = run(&mut cpu, &mut Board::default(), lax);
        assert_eq!(r, Err(RunError::InsnLimit(10)));
        assert_eq!(cpu.delivered, 1);
    }
}
