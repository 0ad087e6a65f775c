//! The host side of the guest console (`-serial mon:stdio|stdio|file:PATH|null`).
//!
//! - [`TerminalGuard`] puts the terminal in raw mode and restores it on every exit path: drop
//!   (normal return and errors), and SIGINT/SIGTERM/SIGHUP/SIGQUIT (the handler restores the saved
//!   settings, then re-raises the signal with its default action).
//! - [`ConsoleInput`] reads host input without blocking, only when the run loop asks (at slice
//!   boundaries, DESIGN.md §5), and applies QEMU's Ctrl-A keys in `mon:stdio` mode. When one
//!   stdio chardev (`mux=on`) serves several devices (UART0 and virtio consoles), its input
//!   goes to the one that has the focus, and Ctrl-A c moves the focus, as QEMU's mux does.
//! - [`ConsoleOutput`] collects the UART's bytes; the run loop flushes them to the host at slice
//!   boundaries, so a prompt without a newline still appears.

use parking_lot::Mutex;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Ctrl-A, QEMU's escape character for `mon:stdio`.
pub const ESCAPE: u8 = 0x01;

/// Help printed by Ctrl-A h (the keys emu implements from QEMU's list).
pub const ESCAPE_HELP: &str = "\r\nC-a h    print this help\r\nC-a x    exit emu\r\n\
C-a c    switch input between the devices sharing the terminal\r\n\
C-a C-a  send C-a to the guest\r\n";

/// What the console asks of the machine besides guest input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleEvent {
    /// Ctrl-A x: quit emu.
    Quit,
}

/// QEMU's `mon:stdio` escape handling: Ctrl-A is a prefix for emu's own keys.
#[derive(Debug, Default)]
pub struct EscapeFilter {
    pending_escape: bool,
    /// The device that receives input (an index into the `guest` buffers of `feed`).
    focus: usize,
}

impl EscapeFilter {
    /// Filter host bytes: guest bytes go to `guest[focus]`, help text to `echo`; Ctrl-A c
    /// moves the focus to the next of `guest`. Returns Quit on Ctrl-A x (later bytes are
    /// dropped).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        guest: &mut [Vec<u8>],
        echo: &mut Vec<u8>,
    ) -> Option<ConsoleEvent> {
        for &b in bytes {
            let n = guest.len().max(1);
            self.focus %= n;
            if self.pending_escape {
                self.pending_escape = false;
                match b {
                    b'x' | b'X' => return Some(ConsoleEvent::Quit),
                    b'h' | b'H' | b'?' => echo.extend_from_slice(ESCAPE_HELP.as_bytes()),
                    b'c' | b'C' => self.focus = (self.focus + 1) % n,
                    ESCAPE => push(guest, self.focus, ESCAPE),
                    // Unknown keys are dropped, as QEMU does.
                    _ => {}
                }
            } else if b == ESCAPE {
                self.pending_escape = true;
            } else {
                push(guest, self.focus, b);
            }
        }
        None
    }

    /// The device that receives input.
    pub fn focus(&self) -> usize {
        self.focus
    }

    pub fn set_focus(&mut self, focus: usize) {
        self.focus = focus;
    }
}

fn push(guest: &mut [Vec<u8>], i: usize, b: u8) {
    if let Some(g) = guest.get_mut(i) {
        g.push(b);
    }
}

/// The saved terminal settings, for the signal handler. Written once before the handlers are
/// installed; read (never written) by the handler.
static SAVED_TERMIOS: Mutex<Option<libc::termios>> = Mutex::new(None);
/// A copy the signal handler can read without a lock (a lock in a handler could deadlock).
static mut SAVED_FOR_SIGNAL: Option<libc::termios> = None;
static RAW_ACTIVE: AtomicBool = AtomicBool::new(false);

extern "C" fn restore_and_reraise(sig: libc::c_int) {
    if RAW_ACTIVE.swap(false, Ordering::SeqCst) {
        // SAFETY: SAVED_FOR_SIGNAL was written before RAW_ACTIVE became true and is never
        // written again while it is true; tcsetattr is async-signal-safe (POSIX.1-2017 §2.4.3).
        unsafe {
            if let Some(t) = (*std::ptr::addr_of!(SAVED_FOR_SIGNAL)).as_ref() {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
            }
        }
    }
    // SAFETY: signal() and raise() are async-signal-safe; restoring the default action and
    // re-raising ends the process as the signal would have.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Raw mode on the terminal for as long as this lives.
pub struct TerminalGuard {
    active: bool,
}

impl TerminalGuard {
    /// Put stdin's terminal in raw mode (as QEMU's `-serial mon:stdio`); a no-op when stdin is
    /// not a terminal.
    pub fn raw_stdin() -> TerminalGuard {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(libc::STDIN_FILENO) } != 1 {
            return TerminalGuard { active: false };
        }
        // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `t` is a valid, writable termios.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } != 0 {
            return TerminalGuard { active: false };
        }
        *SAVED_TERMIOS.lock() = Some(t);
        // SAFETY: written before RAW_ACTIVE is set, i.e. before any handler may read it.
        unsafe {
            *std::ptr::addr_of_mut!(SAVED_FOR_SIGNAL) = Some(t);
        }
        let mut raw = t;
        // cfmakeraw keeps output post-processing off: the guest sends "\r\n" itself.
        // SAFETY: `raw` is a valid termios.
        unsafe { libc::cfmakeraw(&mut raw) };
        RAW_ACTIVE.store(true, Ordering::SeqCst);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            // SAFETY: the handler only calls async-signal-safe functions.
            unsafe {
                libc::signal(
                    sig,
                    restore_and_reraise as extern "C" fn(libc::c_int) as libc::sighandler_t,
                );
            }
        }
        // SAFETY: `raw` is a valid termios for this terminal.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) } != 0 {
            RAW_ACTIVE.store(false, Ordering::SeqCst);
            return TerminalGuard { active: false };
        }
        TerminalGuard { active: true }
    }

    pub fn is_raw(&self) -> bool {
        self.active
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        if self.active && RAW_ACTIVE.swap(false, Ordering::SeqCst) {
            if let Some(t) = SAVED_TERMIOS.lock().as_ref() {
                // SAFETY: `t` holds the settings read from this terminal.
                unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t) };
            }
        }
    }
}

/// Whether stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

/// Host input for the guest console, read without blocking.
pub struct ConsoleInput {
    fd: Option<libc::c_int>,
    escape: Option<EscapeFilter>,
    eof: bool,
}

impl ConsoleInput {
    /// Read stdin; `mon` enables the Ctrl-A keys.
    pub fn stdin(mon: bool) -> ConsoleInput {
        ConsoleInput {
            fd: Some(libc::STDIN_FILENO),
            escape: mon.then(EscapeFilter::default),
            eof: false,
        }
    }

    /// No input at all.
    pub fn none() -> ConsoleInput {
        ConsoleInput {
            fd: None,
            escape: None,
            eof: true,
        }
    }

    /// No more input can come (end of file, or no input).
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Wait up to `timeout_ms` for input to be readable (0: just check).
    pub fn wait(&self, timeout_ms: i32) -> bool {
        let Some(fd) = self.fd.filter(|_| !self.eof) else {
            return false;
        };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        n > 0 && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
    }

    /// The device that receives input (always 0 without the Ctrl-A keys).
    pub fn focus(&self) -> usize {
        self.escape.as_ref().map_or(0, EscapeFilter::focus)
    }

    /// Give the input to device `focus` (with the Ctrl-A keys; without them, input goes to
    /// device 0).
    pub fn set_focus(&mut self, focus: usize) {
        if let Some(f) = &mut self.escape {
            f.set_focus(focus);
        }
    }

    /// Read what is available now, at most `max` bytes for the guest. Input goes to
    /// `guest[focus]`; help text for the user goes to `echo`.
    pub fn poll(
        &mut self,
        max: usize,
        guest: &mut [Vec<u8>],
        echo: &mut Vec<u8>,
    ) -> Option<ConsoleEvent> {
        let fd = self.fd?;
        if self.eof || max == 0 || !self.wait(0) {
            return None;
        }
        let mut buf = [0u8; 256];
        let want = max.min(buf.len());
        // SAFETY: `buf` has room for `want` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), want) };
        if n == 0 {
            self.eof = true;
            return None;
        }
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted
                && e.kind() != std::io::ErrorKind::WouldBlock
            {
                self.eof = true;
            }
            return None;
        }
        let bytes = buf.get(..n as usize).unwrap_or(&[]);
        match &mut self.escape {
            Some(f) => f.feed(bytes, guest, echo),
            None => {
                if let Some(g) = guest.first_mut() {
                    g.extend_from_slice(bytes);
                }
                None
            }
        }
    }
}

/// A device's output: a buffer the device writes into and the run loop drains.
#[derive(Clone, Default)]
pub struct ConsoleOutput(Arc<Mutex<Vec<u8>>>);

impl ConsoleOutput {
    pub fn new() -> Self {
        Self::default()
    }

    /// Take what was written so far.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock())
    }
}

impl Write for ConsoleOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_a_keys() {
        let mut f = EscapeFilter::default();
        let (mut g, mut e) = ([Vec::new()], Vec::new());
        assert_eq!(f.feed(b"ls\x01\x01a\x01h", &mut g, &mut e), None);
        assert_eq!(g[0], b"ls\x01a");
        assert_eq!(e, ESCAPE_HELP.as_bytes());
        // The escape may arrive split across reads.
        let mut g = [Vec::new()];
        assert_eq!(f.feed(b"q\x01", &mut g, &mut e), None);
        assert_eq!(f.feed(b"xzz", &mut g, &mut e), Some(ConsoleEvent::Quit));
        assert_eq!(g[0], b"q");
        // An unknown key after Ctrl-A is dropped; with one device, Ctrl-A c changes nothing.
        let mut g = [Vec::new()];
        assert_eq!(f.feed(b"\x01zk\x01cl", &mut g, &mut e), None);
        assert_eq!(g[0], b"kl");
    }

    #[test]
    fn ctrl_a_c_moves_the_focus_between_devices() {
        let mut f = EscapeFilter::default();
        f.set_focus(1);
        let (mut g, mut e) = ([Vec::new(), Vec::new()], Vec::new());
        assert_eq!(f.feed(b"ab\x01cde\x01", &mut g, &mut e), None);
        assert_eq!(f.feed(b"cf", &mut g, &mut e), None);
        assert_eq!(g[1], b"abf");
        assert_eq!(g[0], b"de");
        assert_eq!(f.focus(), 1);
        assert!(e.is_empty());
    }

    #[test]
    fn output_buffer_drains() {
        let mut o = ConsoleOutput::new();
        o.write_all(b"ab").unwrap();
        let o2 = o.clone();
        assert_eq!(o2.take(), b"ab");
        assert!(o.take().is_empty());
    }
}
