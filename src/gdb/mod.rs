//! The GDB stub (QEMU's `-s`, `-S`, `-gdb tcp::PORT`), on the gdbstub crate.
//!
//! Two sides joined by channels:
//! - the **server thread** ([`GdbServer`]) accepts a GDB connection and runs gdbstub's
//!   blocking event loop; its [`target::GdbTarget`] turns every request (registers, memory,
//!   breakpoints, resume) into a message to the hart;
//! - the **hart side** ([`HartDebug`]), called by the machine instead of `Engine::run`, runs
//!   the guest and, when it stops (breakpoint, watchpoint, finished step, Ctrl-C, `-S`),
//!   answers the server's requests with full access to the hart until GDB resumes it.
//!
//! So the hart's state is only ever touched on its own thread, and only while it is stopped.
//! While a GDB is attached, the engine runs in debug mode (one-instruction blocks, no
//! chaining), under any `--engine`: breakpoints are checked before each instruction, a step
//! is a budget of one instruction, and watchpoints report right after the accessing
//! instruction. GDB threads are harts (thread id = hart index + 1). A step runs the stepped
//! hart alone; a continue runs every hart, or with scheduler locking only the harts GDB names.

pub mod hart;
pub mod target;
pub mod xml;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use emu_frontends::riscv::debug::{WatchKind, Watchpoint};
use parking_lot::Mutex;
use std::sync::mpsc::{channel, Receiver, Sender};

pub use hart::{HartDebug, HartSet};

/// Host errors of the GDB stub.
#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    /// `-gdb` was given something other than `tcp:[HOST]:PORT`.
    #[error("invalid '-gdb' device '{0}': use tcp::PORT or tcp:HOST:PORT")]
    BadSpec(String),
    /// The listening socket could not be opened.
    #[error("could not open gdbserver on '{spec}': {source}")]
    Listen {
        spec: String,
        source: std::io::Error,
    },
    /// The server thread could not be started.
    #[error("could not start the gdbserver thread: {0}")]
    Thread(std::io::Error),
    /// `-S` without a stub to continue from.
    #[error("-S waits for a debugger: give -s or -gdb tcp::PORT too")]
    NoStub,
}

/// Start the stub the options ask for, if any.
pub fn start_from(opts: &DebugOptions) -> Result<Option<GdbServer>, GdbError> {
    match &opts.gdb {
        Some(spec) => GdbServer::start(spec).map(Some),
        None if opts.start_halted => Err(GdbError::NoStub),
        None => Ok(None),
    }
}

/// The debugging and tracing options of the command line (`-s`, `-S`, `-gdb`, `-d`, `-D`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DebugOptions {
    /// Where the GDB stub listens (`-gdb tcp::PORT`; `-s` is `tcp::1234`).
    pub gdb: Option<String>,
    /// `-S`: wait for GDB before the first instruction.
    pub start_halted: bool,
    /// `-d ITEM,...` (see `crate::trace`); `help` lists the items.
    pub log_items: Option<String>,
    /// `-D FILE`: where `-d` output goes (default stderr).
    pub log_file: Option<std::path::PathBuf>,
}

impl DebugOptions {
    /// Take a flag (`-s`, `-S`); false if it is not one of these.
    pub fn flag(&mut self, name: &str) -> bool {
        match name {
            "-s" => self.gdb = Some("tcp::1234".to_string()),
            "-S" => self.start_halted = true,
            _ => return false,
        }
        true
    }

    /// Take an option with a value (`-gdb`, `-d`, `-D`); false if it is not one of these.
    pub fn option(&mut self, name: &str, value: String) -> bool {
        match name {
            "-gdb" | "--gdb" => self.gdb = Some(value),
            "-d" => {
                // Repeated -d options add up, as in QEMU.
                self.log_items = Some(match self.log_items.take() {
                    Some(old) => format!("{old},{value}"),
                    None => value,
                })
            }
            "-D" => self.log_file = Some(value.into()),
            _ => return false,
        }
        true
    }
}

/// `-gdb tcp::PORT` / `tcp:HOST:PORT` → `HOST:PORT` to bind (an empty host means every
/// interface, as in QEMU).
pub fn parse_spec(spec: &str) -> Result<String, GdbError> {
    let bad = || GdbError::BadSpec(spec.to_string());
    let rest = spec.strip_prefix("tcp:").unwrap_or(spec);
    let (host, port) = rest.rsplit_once(':').unwrap_or(("", rest));
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    if host.contains(':') && !host.starts_with('[') {
        return Err(bad());
    }
    Ok(format!("{host}:{port}"))
}

/// A request from the server to the stopped machine. The first `usize` is the hart (GDB
/// thread id - 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// x0..x31, pc, f0..f31.
    ReadRegs(usize),
    WriteRegs(usize, Vec<u64>),
    ReadReg(usize, usize),
    WriteReg(usize, usize, u64),
    /// Read up to `len` bytes through the hart's MMU; the reply is shorter if memory ends.
    ReadMem(usize, u64, usize),
    WriteMem(usize, u64, Vec<u8>),
    AddBreakpoint(u64),
    RemoveBreakpoint(u64),
    AddWatchpoint(Watchpoint),
    RemoveWatchpoint(Watchpoint),
    /// Run until the next stop (no reply): every hart, or with scheduler locking (`vCont;c:2`
    /// without a default action) only the harts in this mask (bit i = hart i).
    Continue(Option<u64>),
    /// Run one instruction on this hart, the others held (no reply; a stop follows).
    Step(usize),
    /// GDB went away: drop breakpoints and watchpoints and run freely (no reply).
    Detach,
}

/// A hart's answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Regs(Vec<u64>),
    Value(Option<u64>),
    Bytes(Vec<u8>),
    Done(bool),
}

/// Why a hart stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// Started halted (`-S`), or stopped for a newly attached GDB.
    Attach,
    /// GDB's Ctrl-C.
    Interrupt,
    /// A breakpoint at the PC.
    Breakpoint,
    /// A single step finished.
    Step,
    /// A watchpoint fired at `addr`.
    Watch { kind: WatchKind, addr: u64 },
}

/// What the hart side tells the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Stopped {
        hart: usize,
        kind: StopKind,
    },
    Reply(Reply),
    /// The machine finished with this exit code.
    Exited(u8),
}

/// The channels and flags the two sides share.
pub struct Link {
    pub requests: (Sender<Request>, Mutex<Receiver<Request>>),
    pub events: (Sender<Event>, Mutex<Receiver<Event>>),
    /// Set by the server when the running hart must stop (Ctrl-C, a new connection).
    pub interrupt: AtomicBool,
    /// A GDB is connected.
    pub attached: AtomicBool,
    /// The hart is stopped, serving requests.
    pub stopped: AtomicBool,
    /// GDB went away while the hart ran: drop the debug state at the next engine return.
    pub detach: AtomicBool,
    /// Number of harts (GDB threads).
    pub harts: std::sync::atomic::AtomicUsize,
}

impl Link {
    pub fn new() -> Arc<Link> {
        let (rt, rr) = channel();
        let (et, er) = channel();
        Arc::new(Link {
            requests: (rt, Mutex::new(rr)),
            events: (et, Mutex::new(er)),
            interrupt: AtomicBool::new(false),
            attached: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            detach: AtomicBool::new(false),
            harts: std::sync::atomic::AtomicUsize::new(1),
        })
    }
}

/// The listening stub and its thread.
pub struct GdbServer {
    link: Arc<Link>,
    thread: Option<JoinHandle<()>>,
    done: Receiver<()>,
}

impl GdbServer {
    /// Listen on `spec` (`tcp::1234`) and serve one GDB at a time on a thread of its own.
    /// The hart side is [`GdbServer::hart`].
    pub fn start(spec: &str) -> Result<GdbServer, GdbError> {
        let addr = parse_spec(spec)?;
        let listener = TcpListener::bind(&addr).map_err(|source| GdbError::Listen {
            spec: spec.to_string(),
            source,
        })?;
        Self::start_on(listener)
    }

    /// As [`GdbServer::start`], on a socket already bound (tests bind port 0).
    pub fn start_on(listener: TcpListener) -> Result<GdbServer, GdbError> {
        let link = Link::new();
        let (done_tx, done) = channel();
        let l = link.clone();
        let thread = std::thread::Builder::new()
            .name("emu-gdbstub".into())
            .spawn(move || {
                target::serve(listener, &l);
                let _ = done_tx.send(());
            })
            .map_err(GdbError::Thread)?;
        Ok(GdbServer {
            link,
            thread: Some(thread),
            done,
        })
    }

    /// The machine side, for a machine of `harts` harts; `start_halted` is `-S`.
    pub fn debugger(&self, harts: usize, start_halted: bool) -> HartDebug {
        self.link
            .harts
            .store(harts.max(1), std::sync::atomic::Ordering::Release);
        HartDebug::new(self.link.clone(), start_halted)
    }

    /// The machine finished: tell an attached GDB (`W` packet) and wait a little for the
    /// server to send it.
    pub fn finish(mut self, code: u64) {
        let status = (code & 0xff) as u8 | u8::from(code != 0 && code & 0xff == 0);
        let _ = self.link.events.0.send(Event::Exited(status));
        if self.link.attached.load(Ordering::Acquire)
            && self.done.recv_timeout(Duration::from_secs(5)).is_ok()
        {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
        // Otherwise the thread is blocked in accept(): it ends with the process.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_as_qemu_takes_them() {
        assert_eq!(parse_spec("tcp::1234").unwrap(), "0.0.0.0:1234");
        assert_eq!(parse_spec("tcp:localhost:4321").unwrap(), "localhost:4321");
        assert_eq!(parse_spec("1234").unwrap(), "0.0.0.0:1234");
        for bad in ["tcp::", "tcp::x", "tcp::99999", "unix:/tmp/x"] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }
}
