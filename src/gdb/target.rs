//! The server side of the GDB stub: gdbstub's `Arch` and `Target` for emu's RISC-V harts,
//! each request forwarded to the stopped hart ([`super::hart`]), and the blocking event loop
//! that waits for the hart to stop or for GDB's Ctrl-C.

use std::net::{TcpListener, TcpStream};
use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use emu_frontends::riscv::debug::{WatchKind, Watchpoint, GDB_REG_CSR0, GDB_REG_END};
use gdbstub::arch::{Arch, RegId, Registers};
use gdbstub::common::{Signal, Tid};
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event as LoopEvent, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps,
};
use gdbstub::target::ext::target_description_xml_override::{
    TargetDescriptionXmlOverride, TargetDescriptionXmlOverrideOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};

use super::{Event, Link, Reply, Request, StopKind};

/// emu's RISC-V as gdbstub sees it: 64-bit, registers described by our own target XML.
pub enum RiscvEmu {}

/// A register by GDB number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegNum(pub usize);

impl RegId for RegNum {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        (id < GDB_REG_END).then(|| (RegNum(id), NonZeroUsize::new(8)))
    }
}

/// The `g` packet: x0..x31, pc, f0..f31 (GDB numbers 0..64), little-endian.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreRegs(pub Vec<u64>);

impl Registers for CoreRegs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.0.get(32).copied().unwrap_or(0)
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        for i in 0..GDB_REG_CSR0 {
            let v = self.0.get(i).copied().unwrap_or(0);
            for b in v.to_le_bytes() {
                write_byte(Some(b));
            }
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        if !bytes.len().is_multiple_of(8) || bytes.len() > GDB_REG_CSR0 * 8 {
            return Err(());
        }
        self.0 = bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect();
        Ok(())
    }
}

impl Arch for RiscvEmu {
    type Usize = u64;
    type Registers = CoreRegs;
    type BreakpointKind = usize;
    type RegId = RegNum;
}

/// The hart went away (the machine stopped) while GDB was asking.
#[derive(Debug, thiserror::Error)]
#[error("the hart is gone (the machine stopped)")]
pub struct HartGone;

/// gdbstub's target: forwards to the stopped hart.
pub struct GdbTarget {
    link: Arc<Link>,
    /// Whether the next resume is a step.
    step: Option<usize>,
    /// Harts GDB named with a continue action (bit i = hart i).
    continue_mask: u64,
    /// Scheduler locking: only the harts GDB named run (no default continue in the vCont).
    locked: bool,
    /// Exit status, once the machine has finished.
    exited: Option<u8>,
    xml: String,
}

impl GdbTarget {
    fn new(link: Arc<Link>) -> GdbTarget {
        GdbTarget {
            link,
            step: None,
            continue_mask: 0,
            locked: false,
            exited: None,
            xml: super::xml::target_xml(),
        }
    }

    /// Send a request and wait for its reply (skipping stray stop events).
    fn ask(&mut self, req: Request) -> Result<Reply, HartGone> {
        if self.exited.is_some() {
            return Err(HartGone);
        }
        self.link.requests.0.send(req).map_err(|_| HartGone)?;
        let events = self.link.events.1.lock();
        loop {
            match events.recv() {
                Ok(Event::Reply(r)) => return Ok(r),
                Ok(Event::Exited(code)) => {
                    self.exited = Some(code);
                    return Err(HartGone);
                }
                Ok(Event::Stopped { .. }) => {}
                Err(_) => return Err(HartGone),
            }
        }
    }

    fn ask_done(&mut self, req: Request) -> TargetResult<bool, Self> {
        match self.ask(req) {
            Ok(Reply::Done(ok)) => Ok(ok),
            Ok(_) => Err(TargetError::NonFatal),
            Err(e) => Err(TargetError::Fatal(e)),
        }
    }
}

fn tid_of(hart: usize) -> Tid {
    NonZeroUsize::new(hart + 1).unwrap_or(NonZeroUsize::MIN)
}

fn hart_of(tid: Tid) -> usize {
    tid.get() - 1
}

impl Target for GdbTarget {
    type Arch = RiscvEmu;
    type Error = HartGone;

    fn base_ops(&mut self) -> BaseOps<'_, RiscvEmu, HartGone> {
        BaseOps::MultiThread(self)
    }

    // Breakpoints are the emulator's own (checked before each instruction), not memory
    // patches, so GDB's software breakpoints are implemented here.
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_target_description_xml_override(
        &mut self,
    ) -> Option<TargetDescriptionXmlOverrideOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadBase for GdbTarget {
    fn read_registers(&mut self, regs: &mut CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        match self.ask(Request::ReadRegs(hart_of(tid))) {
            Ok(Reply::Regs(v)) => {
                regs.0 = v;
                Ok(())
            }
            Ok(_) => Err(TargetError::NonFatal),
            Err(e) => Err(TargetError::Fatal(e)),
        }
    }

    fn write_registers(&mut self, regs: &CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        self.ask_done(Request::WriteRegs(hart_of(tid), regs.0.clone()))
            .map(|_| ())
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        match self.ask(Request::ReadMem(hart_of(tid), start, data.len())) {
            Ok(Reply::Bytes(b)) => {
                let n = b.len().min(data.len());
                if n == 0 && !data.is_empty() {
                    return Err(TargetError::Errno(14));
                }
                if let (Some(dst), Some(src)) = (data.get_mut(..n), b.get(..n)) {
                    dst.copy_from_slice(src);
                }
                Ok(n)
            }
            Ok(_) => Err(TargetError::NonFatal),
            Err(e) => Err(TargetError::Fatal(e)),
        }
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        match self.ask_done(Request::WriteMem(hart_of(tid), start, data.to_vec()))? {
            true => Ok(()),
            false => Err(TargetError::Errno(14)),
        }
    }

    fn list_active_threads(
        &mut self,
        thread_is_active: &mut dyn FnMut(Tid),
    ) -> Result<(), HartGone> {
        for h in 0..self.link.harts.load(Ordering::Acquire) {
            thread_is_active(tid_of(h));
        }
        Ok(())
    }

    fn is_thread_alive(&mut self, tid: Tid) -> Result<bool, HartGone> {
        Ok(hart_of(tid) < self.link.harts.load(Ordering::Acquire))
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<Tid> for GdbTarget {
    fn read_register(
        &mut self,
        tid: Tid,
        reg: RegNum,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        match self.ask(Request::ReadReg(hart_of(tid), reg.0)) {
            Ok(Reply::Value(Some(v))) => {
                let bytes = v.to_le_bytes();
                let n = buf.len().min(8);
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), bytes.get(..n)) {
                    dst.copy_from_slice(src);
                }
                Ok(n)
            }
            // An unimplemented CSR: GDB shows it as unavailable.
            Ok(_) => Ok(0),
            Err(e) => Err(TargetError::Fatal(e)),
        }
    }

    fn write_register(&mut self, tid: Tid, reg: RegNum, val: &[u8]) -> TargetResult<(), Self> {
        let mut b = [0u8; 8];
        let n = val.len().min(8);
        if let (Some(dst), Some(src)) = (b.get_mut(..n), val.get(..n)) {
            dst.copy_from_slice(src);
        }
        match self.ask_done(Request::WriteReg(
            hart_of(tid),
            reg.0,
            u64::from_le_bytes(b),
        ))? {
            true => Ok(()),
            false => Err(TargetError::NonFatal),
        }
    }
}

impl MultiThreadResume for GdbTarget {
    fn resume(&mut self) -> Result<(), HartGone> {
        // A step always runs the stepped hart alone, with or without scheduler locking: in
        // all-stop mode the others' continue (`vCont;s:2;c`) lasts only until the step's stop,
        // and running them for none of it keeps steps exact and deterministic.
        let req = match self.step {
            Some(h) => Request::Step(h),
            None if self.locked => Request::Continue(Some(self.continue_mask)),
            None => Request::Continue(None),
        };
        self.link.requests.0.send(req).map_err(|_| HartGone)
    }

    fn clear_resume_actions(&mut self) -> Result<(), HartGone> {
        self.step = None;
        self.continue_mask = 0;
        self.locked = false;
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), HartGone> {
        self.continue_mask |= 1u64.checked_shl(hart_of(tid) as u32).unwrap_or(0);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

// `set scheduler-locking on|step`: GDB resumes only the threads it names (`vCont;s:2`,
// `vCont;c:2`); the others stay stopped (src/gdb/hart.rs `HartDebug::holds`).
impl MultiThreadSchedulerLocking for GdbTarget {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), HartGone> {
        self.locked = true;
        Ok(())
    }
}

impl MultiThreadSingleStep for GdbTarget {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), HartGone> {
        self.step = Some(hart_of(tid));
        Ok(())
    }
}

impl Breakpoints for GdbTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for GdbTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.ask_done(Request::AddBreakpoint(addr))
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.ask_done(Request::RemoveBreakpoint(addr))
    }
}

impl HwBreakpoint for GdbTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.ask_done(Request::AddBreakpoint(addr))
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.ask_done(Request::RemoveBreakpoint(addr))
    }
}

fn watch_kind(kind: gdbstub::target::ext::breakpoints::WatchKind) -> WatchKind {
    use gdbstub::target::ext::breakpoints::WatchKind as G;
    match kind {
        G::Write => WatchKind::Write,
        G::Read => WatchKind::Read,
        G::ReadWrite => WatchKind::Access,
    }
}

fn gdb_watch_kind(kind: WatchKind) -> gdbstub::target::ext::breakpoints::WatchKind {
    use gdbstub::target::ext::breakpoints::WatchKind as G;
    match kind {
        WatchKind::Write => G::Write,
        WatchKind::Read => G::Read,
        WatchKind::Access => G::ReadWrite,
    }
}

impl HwWatchpoint for GdbTarget {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: gdbstub::target::ext::breakpoints::WatchKind,
    ) -> TargetResult<bool, Self> {
        self.ask_done(Request::AddWatchpoint(Watchpoint {
            addr,
            len,
            kind: watch_kind(kind),
        }))
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: gdbstub::target::ext::breakpoints::WatchKind,
    ) -> TargetResult<bool, Self> {
        self.ask_done(Request::RemoveWatchpoint(Watchpoint {
            addr,
            len,
            kind: watch_kind(kind),
        }))
    }
}

impl TargetDescriptionXmlOverride for GdbTarget {
    fn target_description_xml(
        &self,
        annex: &[u8],
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        if annex != b"target.xml" {
            return Err(TargetError::NonFatal);
        }
        let data = self.xml.as_bytes();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(length).min(data.len());
        let chunk = data.get(start..end).unwrap_or_default();
        let n = chunk.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), chunk.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }
}

type StopReason = MultiThreadStopReason<u64>;

fn stop_reason(hart: usize, kind: StopKind) -> StopReason {
    let tid = tid_of(hart);
    match kind {
        StopKind::Attach => StopReason::SignalWithThread {
            tid,
            signal: Signal::SIGTRAP,
        },
        StopKind::Interrupt => StopReason::SignalWithThread {
            tid,
            signal: Signal::SIGINT,
        },
        StopKind::Breakpoint => StopReason::SwBreak(tid),
        StopKind::Step => StopReason::DoneStep,
        StopKind::Watch { kind, addr } => StopReason::Watch {
            tid,
            kind: gdb_watch_kind(kind),
            addr,
        },
    }
}

/// gdbstub's blocking event loop: poll the hart's events and GDB's socket in turn.
enum EventLoop {}

impl BlockingEventLoop for EventLoop {
    type Target = GdbTarget;
    type Connection = TcpStream;
    type StopReason = StopReason;

    fn wait_for_stop_reason(
        target: &mut GdbTarget,
        conn: &mut TcpStream,
    ) -> Result<
        LoopEvent<StopReason>,
        WaitForStopReasonError<HartGone, <TcpStream as Connection>::Error>,
    > {
        loop {
            let ev = target
                .link
                .events
                .1
                .lock()
                .recv_timeout(Duration::from_millis(5));
            match ev {
                Ok(Event::Stopped { hart, kind }) => {
                    return Ok(LoopEvent::TargetStopped(stop_reason(hart, kind)))
                }
                Ok(Event::Exited(code)) => {
                    target.exited = Some(code);
                    return Ok(LoopEvent::TargetStopped(StopReason::Exited(code)));
                }
                Ok(Event::Reply(_)) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(WaitForStopReasonError::Target(HartGone))
                }
            }
            match conn.peek() {
                Ok(Some(_)) => {
                    let byte = conn.read().map_err(WaitForStopReasonError::Connection)?;
                    return Ok(LoopEvent::IncomingData(byte));
                }
                Ok(None) => {}
                Err(e) => return Err(WaitForStopReasonError::Connection(e)),
            }
        }
    }

    fn on_interrupt(target: &mut GdbTarget) -> Result<Option<StopReason>, HartGone> {
        // The hart stops at its next engine return and reports SIGINT then.
        target.link.interrupt.store(true, Ordering::Release);
        Ok(None)
    }
}

/// GDB went away: let the machine run freely. A stopped machine is released and waited for
/// (briefly), so a next connection does not find it still marked stopped.
fn detach(link: &Link) {
    if link.stopped.load(Ordering::Acquire) {
        let _ = link.requests.0.send(Request::Detach);
        let start = std::time::Instant::now();
        while link.stopped.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(1));
        }
    } else {
        link.detach.store(true, Ordering::Release);
    }
}

/// The server thread: one GDB connection after another, until the machine exits.
pub fn serve(listener: TcpListener, link: &Arc<Link>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let _ = conn.set_nodelay(true);
        link.attached.store(true, Ordering::Release);
        link.detach.store(false, Ordering::Release);
        let mut target = GdbTarget::new(link.clone());
        // Stale stop reports of an earlier session.
        let mut stopped = false;
        {
            let events = link.events.1.lock();
            while let Ok(ev) = events.try_recv() {
                if let Event::Exited(_) = ev {
                    link.attached.store(false, Ordering::Release);
                    return;
                }
            }
        }
        if link.stopped.load(Ordering::Acquire) {
            stopped = true;
        } else {
            // Stop the hart before GDB's first questions.
            link.interrupt.store(true, Ordering::Release);
        }
        while !stopped {
            match link.events.1.lock().recv() {
                Ok(Event::Stopped { .. }) => stopped = true,
                Ok(Event::Exited(_)) | Err(_) => {
                    link.attached.store(false, Ordering::Release);
                    return;
                }
                Ok(Event::Reply(_)) => {}
            }
        }
        link.interrupt.store(false, Ordering::Release);
        let result = GdbStub::new(conn).run_blocking::<EventLoop>(&mut target);
        link.attached.store(false, Ordering::Release);
        match result {
            Ok(DisconnectReason::TargetExited(_)) | Ok(DisconnectReason::TargetTerminated(_)) => {
                return
            }
            Ok(DisconnectReason::Kill) => {
                // QEMU ends the emulator when GDB kills the target.
                eprintln!("emu: terminated via GDBstub");
                std::process::exit(0);
            }
            Err(e) => {
                log::warn!("gdbstub: {e}");
                if target.exited.is_some() {
                    return;
                }
                detach(link);
            }
            Ok(DisconnectReason::Disconnect) => {
                if target.exited.is_some() {
                    return;
                }
                detach(link);
            }
        }
    }
}
