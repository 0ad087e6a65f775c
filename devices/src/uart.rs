//! NS16550A UART for the console, as QEMU's `virt` board has it at 0x1000_0000 (IRQ 10,
//! reg-shift 0, reg-io-width 1) and as described in the National Semiconductor PC16550D data
//! sheet (§8 "Registers", Table II) and QEMU's hw/char/serial.c:
//!
//! ```text
//! off  DLAB=0 read / write      DLAB=1
//!  0   RBR / THR                DLL
//!  1   IER                      DLM
//!  2   IIR / FCR
//!  3   LCR
//!  4   MCR
//!  5   LSR
//!  6   MSR
//!  7   SCR
//! ```
//!
//! Own state machine rather than vm-superio's `Serial`: that one signals interrupts through an
//! edge-only `Trigger` (an eventfd for KVM irqfd) with no way to deassert a level-triggered
//! line, which the PLIC on `virt` needs; and it ignores FCR (FIFO enable/clear), whose effect on
//! IIR bits 7:6 Linux's 8250 autoconfig reads.
//!
//! Transmission is instantaneous: a THR write goes to the injected output at once and THRE/TEMT
//! stay set, as QEMU without a baud-rate model. Host input enters through
//! [`Ns16550a::enqueue_input`], which the run loop calls only at slice boundaries (DESIGN.md §5);
//! it is bounded, and what does not fit stays with the caller.

use crate::bus::BusDevice;
use crate::irq::IrqLine;
use std::collections::VecDeque;
use std::io::Write;

/// QEMU virt: `VIRT_UART0`.
pub const UART0_BASE: u64 = 0x1000_0000;
/// QEMU virt: size of the `VIRT_UART0` window.
pub const UART0_SIZE: u64 = 0x100;
/// QEMU virt: `UART0_IRQ`.
pub const UART0_IRQ: u32 = 10;
/// QEMU virt's UART input clock (the DT's clock-frequency, 3.6864 MHz).
pub const UART_CLOCK_HZ: u32 = 3_686_400;

// Register offsets (PC16550D Table II).
pub const UART_RBR: u64 = 0; // read, DLAB=0
pub const UART_THR: u64 = 0; // write, DLAB=0
pub const UART_DLL: u64 = 0; // DLAB=1
pub const UART_IER: u64 = 1; // DLAB=0
pub const UART_DLM: u64 = 1; // DLAB=1
pub const UART_IIR: u64 = 2; // read
pub const UART_FCR: u64 = 2; // write
pub const UART_LCR: u64 = 3;
pub const UART_MCR: u64 = 4;
pub const UART_LSR: u64 = 5;
pub const UART_MSR: u64 = 6;
pub const UART_SCR: u64 = 7;

// IER bits.
pub const UART_IER_RDI: u8 = 0x01; // received data available
pub const UART_IER_THRI: u8 = 0x02; // transmitter holding register empty
pub const UART_IER_RLSI: u8 = 0x04; // receiver line status
pub const UART_IER_MSI: u8 = 0x08; // modem status

// IIR values (bits 3:0) and FIFO bits.
pub const UART_IIR_NO_INT: u8 = 0x01;
pub const UART_IIR_MSI: u8 = 0x00;
pub const UART_IIR_THRI: u8 = 0x02;
pub const UART_IIR_RDI: u8 = 0x04;
pub const UART_IIR_RLSI: u8 = 0x06;
pub const UART_IIR_FIFO_ENABLED: u8 = 0xc0;

// FCR bits.
pub const UART_FCR_ENABLE_FIFO: u8 = 0x01;
pub const UART_FCR_CLEAR_RCVR: u8 = 0x02;
pub const UART_FCR_CLEAR_XMIT: u8 = 0x04;

// LCR bits.
pub const UART_LCR_DLAB: u8 = 0x80;

// MCR bits.
pub const UART_MCR_DTR: u8 = 0x01;
pub const UART_MCR_RTS: u8 = 0x02;
pub const UART_MCR_OUT1: u8 = 0x04;
pub const UART_MCR_OUT2: u8 = 0x08;
pub const UART_MCR_LOOP: u8 = 0x10;

// LSR bits.
pub const UART_LSR_DR: u8 = 0x01;
pub const UART_LSR_OE: u8 = 0x02;
pub const UART_LSR_BI: u8 = 0x10;
pub const UART_LSR_THRE: u8 = 0x20;
pub const UART_LSR_TEMT: u8 = 0x40;

// MSR bits.
pub const UART_MSR_DCTS: u8 = 0x01;
pub const UART_MSR_DDSR: u8 = 0x02;
pub const UART_MSR_TERI: u8 = 0x04;
pub const UART_MSR_DDCD: u8 = 0x08;
pub const UART_MSR_CTS: u8 = 0x10;
pub const UART_MSR_DSR: u8 = 0x20;
pub const UART_MSR_RI: u8 = 0x40;
pub const UART_MSR_DCD: u8 = 0x80;
const UART_MSR_DELTAS: u8 = 0x0f;

/// Bytes of host input the device holds (the guest-visible FIFO plus what the host typed
/// ahead). `enqueue_input` takes no more.
pub const UART_INPUT_CAPACITY: usize = 4096;

/// Output write errors logged before going quiet.
const MAX_LOGGED_ERRORS: u32 = 8;

/// The NS16550A state machine.
pub struct Ns16550a {
    irq: IrqLine,
    out: Box<dyn Write + Send>,
    rx: VecDeque<u8>,
    dll: u8,
    dlm: u8,
    ier: u8,
    fcr: u8,
    lcr: u8,
    mcr: u8,
    lsr: u8,
    msr: u8,
    scr: u8,
    /// THRE interrupt latched (PC16550D Table IV: cleared by reading IIR or writing THR).
    thr_ipending: bool,
    irq_level: bool,
    out_errors: u32,
}

impl Ns16550a {
    /// A UART in its reset state (PC16550D Table III) whose interrupt is `irq` and whose
    /// transmitted bytes go to `out`.
    pub fn new(irq: IrqLine, out: Box<dyn Write + Send>) -> Self {
        let mut u = Ns16550a {
            irq,
            out,
            rx: VecDeque::new(),
            dll: 0,
            dlm: 0,
            ier: 0,
            fcr: 0,
            lcr: 0,
            // QEMU resets MCR to OUT2 and MSR to DCD|DSR|CTS (a connected terminal).
            mcr: UART_MCR_OUT2,
            lsr: UART_LSR_THRE | UART_LSR_TEMT,
            msr: UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS,
            scr: 0,
            thr_ipending: false,
            irq_level: false,
            out_errors: 0,
        };
        u.update_irq();
        u
    }

    /// Host input: take as many of `bytes` as fit (see [`UART_INPUT_CAPACITY`]); returns how
    /// many were taken. Call only at slice boundaries. Dropped while in loopback mode (the
    /// receiver is connected to the transmitter), which counts as taken.
    pub fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        if self.mcr & UART_MCR_LOOP != 0 {
            return bytes.len();
        }
        let n = bytes.len().min(self.input_space());
        self.rx.extend(bytes.iter().take(n));
        self.after_rx();
        n
    }

    /// How many bytes `enqueue_input` would take now.
    pub fn input_space(&self) -> usize {
        UART_INPUT_CAPACITY.saturating_sub(self.rx.len())
    }

    /// The current divisor latch (baud = clock / (16 * divisor)).
    pub fn divisor(&self) -> u16 {
        u16::from_le_bytes([self.dll, self.dlm])
    }

    fn after_rx(&mut self) {
        if !self.rx.is_empty() {
            self.lsr |= UART_LSR_DR;
        }
        self.update_irq();
    }

    /// The highest-priority pending interrupt (PC16550D Table IV), as IIR bits 3:0.
    fn iir_id(&self) -> u8 {
        if self.ier & UART_IER_RLSI != 0 && self.lsr & (UART_LSR_OE | UART_LSR_BI) != 0 {
            UART_IIR_RLSI
        } else if self.ier & UART_IER_RDI != 0 && self.lsr & UART_LSR_DR != 0 {
            UART_IIR_RDI
        } else if self.ier & UART_IER_THRI != 0 && self.thr_ipending {
            UART_IIR_THRI
        } else if self.ier & UART_IER_MSI != 0 && self.msr & UART_MSR_DELTAS != 0 {
            UART_IIR_MSI
        } else {
            UART_IIR_NO_INT
        }
    }

    fn update_irq(&mut self) {
        let level = self.iir_id() != UART_IIR_NO_INT;
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set(level);
        }
    }

    fn transmit(&mut self, byte: u8) {
        if self.mcr & UART_MCR_LOOP != 0 {
            if self.rx.len() < UART_INPUT_CAPACITY {
                self.rx.push_back(byte);
                self.lsr |= UART_LSR_DR;
            } else {
                self.lsr |= UART_LSR_OE;
            }
        } else if let Err(e) = self.out.write_all(&[byte]).and_then(|()| self.out.flush()) {
            self.out_errors = self.out_errors.saturating_add(1);
            if self.out_errors <= MAX_LOGGED_ERRORS {
                log::warn!("UART: console output failed: {e}");
            }
        }
        // The transmitter empties at once: THRE and TEMT stay set, the THRE interrupt latches.
        self.lsr |= UART_LSR_THRE | UART_LSR_TEMT;
        self.thr_ipending = true;
    }

    /// MSR's status bits 7:4 as the modem lines (or, in loopback, MCR) drive them; changes set
    /// the delta bits 3:0 (PC16550D §8.7).
    fn set_modem_status(&mut self, status: u8) {
        let old = self.msr;
        let changed = (old ^ status) & 0xf0;
        let mut deltas = 0;
        if changed & UART_MSR_CTS != 0 {
            deltas |= UART_MSR_DCTS;
        }
        if changed & UART_MSR_DSR != 0 {
            deltas |= UART_MSR_DDSR;
        }
        if changed & UART_MSR_DCD != 0 {
            deltas |= UART_MSR_DDCD;
        }
        // TERI: RI went from on to off.
        if old & UART_MSR_RI != 0 && status & UART_MSR_RI == 0 {
            deltas |= UART_MSR_TERI;
        }
        self.msr = (status & 0xf0) | ((old | deltas) & UART_MSR_DELTAS);
    }

    fn read_reg(&mut self, reg: u64) -> u8 {
        let dlab = self.lcr & UART_LCR_DLAB != 0;
        match reg {
            UART_DLL if dlab => self.dll,
            UART_RBR => {
                let byte = self.rx.pop_front().unwrap_or(0);
                if self.rx.is_empty() {
                    self.lsr &= !UART_LSR_DR;
                }
                byte
            }
            UART_DLM if dlab => self.dlm,
            UART_IER => self.ier,
            UART_IIR => {
                let id = self.iir_id();
                // Reading IIR while it reports THRE clears that interrupt (PC16550D Table IV).
                if id == UART_IIR_THRI {
                    self.thr_ipending = false;
                }
                let fifo = if self.fcr & UART_FCR_ENABLE_FIFO != 0 {
                    UART_IIR_FIFO_ENABLED
                } else {
                    0
                };
                id | fifo
            }
            UART_LCR => self.lcr,
            UART_MCR => self.mcr,
            UART_LSR => {
                let v = self.lsr;
                // Reading LSR clears the error bits (PC16550D §8.4).
                self.lsr &= !(UART_LSR_OE | UART_LSR_BI);
                v
            }
            UART_MSR => {
                let v = self.msr;
                self.msr &= !UART_MSR_DELTAS;
                v
            }
            UART_SCR => self.scr,
            _ => 0,
        }
    }

    fn write_reg(&mut self, reg: u64, value: u8) {
        let dlab = self.lcr & UART_LCR_DLAB != 0;
        match reg {
            UART_DLL if dlab => self.dll = value,
            UART_THR => {
                self.thr_ipending = false;
                self.transmit(value);
            }
            UART_DLM if dlab => self.dlm = value,
            UART_IER => {
                let old = self.ier;
                self.ier = value & 0x0f;
                // Enabling ETBEI while THR is empty raises THRE at once (a 16550 reasserts it
                // whenever the transmitter is idle; Linux's 8250 startup tests exactly this).
                if (old ^ self.ier) & UART_IER_THRI != 0 {
                    self.thr_ipending =
                        self.ier & UART_IER_THRI != 0 && self.lsr & UART_LSR_THRE != 0;
                }
            }
            UART_FCR => {
                if value & UART_FCR_CLEAR_RCVR != 0 {
                    self.rx.clear();
                    self.lsr &= !UART_LSR_DR;
                }
                // UART_FCR_CLEAR_XMIT: the transmit FIFO is always empty.
                // Bits 7:6 (RX trigger level) are kept but the RDA interrupt fires on any data.
                self.fcr = value & !(UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
            }
            UART_LCR => self.lcr = value,
            UART_MCR => {
                self.mcr = value & 0x1f;
                if self.mcr & UART_MCR_LOOP != 0 {
                    // Loopback (PC16550D §8.6): DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
                    let m = self.mcr;
                    let mut status = 0;
                    if m & UART_MCR_DTR != 0 {
                        status |= UART_MSR_DSR;
                    }
                    if m & UART_MCR_RTS != 0 {
                        status |= UART_MSR_CTS;
                    }
                    if m & UART_MCR_OUT1 != 0 {
                        status |= UART_MSR_RI;
                    }
                    if m & UART_MCR_OUT2 != 0 {
                        status |= UART_MSR_DCD;
                    }
                    self.set_modem_status(status);
                } else {
                    self.set_modem_status(UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
                }
            }
            UART_LSR | UART_MSR => {
                log::debug!("UART: write {value:#x} to read-only register {reg} ignored");
            }
            UART_SCR => self.scr = value,
            _ => {}
        }
    }
}

impl BusDevice for Ns16550a {
    /// Registers are one byte wide (reg-io-width 1); a wider access reaches the register at
    /// `offset` in its low byte, upper bytes read 0.
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let Some(b) = data.first_mut() {
            *b = self.read_reg(offset);
        }
        self.update_irq();
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let Some(&b) = data.first() {
            self.write_reg(offset, b);
        }
        self.update_irq();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::IrqLevels;
    use parking_lot::Mutex;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn setup() -> (Arc<IrqLevels>, Sink, Ns16550a) {
        let irq = Arc::new(IrqLevels::new());
        let out = Sink::default();
        let u = Ns16550a::new(IrqLine::new(irq.clone(), UART0_IRQ), Box::new(out.clone()));
        (irq, out, u)
    }

    fn rd(u: &mut Ns16550a, off: u64) -> u8 {
        let mut b = [0u8];
        u.read(off, &mut b);
        b[0]
    }

    fn wr(u: &mut Ns16550a, off: u64, v: u8) {
        u.write(off, &[v]);
    }

    #[test]
    fn reset_state() {
        let (irq, _, mut u) = setup();
        assert_eq!(rd(&mut u, UART_IIR), UART_IIR_NO_INT);
        assert_eq!(rd(&mut u, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
        assert_eq!(rd(&mut u, UART_MSR), 0xb0);
        assert_eq!(rd(&mut u, UART_IER), 0);
        assert!(!irq.level(UART0_IRQ));
    }

    #[test]
    fn transmit_and_thre_interrupt() {
        let (irq, out, mut u) = setup();
        wr(&mut u, UART_THR, b'h');
        wr(&mut u, UART_THR, b'i');
        assert_eq!(&*out.0.lock(), b"hi");
        assert!(!irq.level(UART0_IRQ), "THRE interrupt not enabled");
        // Enabling ETBEI while THR is empty interrupts at once.
        wr(&mut u, UART_IER, UART_IER_THRI);
        assert!(irq.level(UART0_IRQ));
        assert_eq!(rd(&mut u, UART_IIR), UART_IIR_THRI);
        // Reading IIR cleared it.
        assert!(!irq.level(UART0_IRQ));
        assert_eq!(rd(&mut u, UART_IIR), UART_IIR_NO_INT);
        // Each transmitted byte re-latches THRE.
        wr(&mut u, UART_THR, b'!');
        assert!(irq.level(UART0_IRQ));
        // Disabling and re-enabling ETBEI re-raises it (Linux's THRE test).
        wr(&mut u, UART_IER, 0);
        assert!(!irq.level(UART0_IRQ));
        wr(&mut u, UART_IER, UART_IER_THRI);
        assert_eq!(rd(&mut u, UART_IIR), UART_IIR_THRI);
        assert_eq!(&*out.0.lock(), b"hi!");
    }

    #[test]
    fn receive_with_interrupts_and_lsr() {
        let (irq, _, mut u) = setup();
        assert_eq!(u.enqueue_input(b"ab"), 2);
        assert_eq!(rd(&mut u, UART_LSR) & UART_LSR_DR, UART_LSR_DR);
        assert!(!irq.level(UART0_IRQ));
        wr(&mut u, UART_IER, UART_IER_RDI | UART_IER_THRI);
        // RDA outranks THRE.
        assert_eq!(rd(&mut u, UART_IIR), UART_IIR_RDI);
        assert!(irq.level(UART0_IRQ));
        assert_eq!(rd(&mut u, UART_RBR), b'a');
        assert_eq!(rd(&mut u, UART_RBR), b'b');
        assert_eq!(rd(&mut u, UART_LSR) & UART_LSR_DR, 0);
        assert_eq!(rd(&mut u, UART_IIR), UART_IIR_THRI);
        assert_eq!(rd(&mut u, UART_IIR), UART_IIR_NO_INT);
        assert!(!irq.level(UART0_IRQ));
        assert_eq!(rd(&mut u, UART_RBR), 0, "empty FIFO reads 0");
        // Bounded input.
        let big = vec![b'x'; UART_INPUT_CAPACITY + 10];
        assert_eq!(u.enqueue_input(&big), UART_INPUT_CAPACITY);
        assert_eq!(u.input_space(), 0);
        assert_eq!(u.enqueue_input(b"y"), 0);
        // FCR clears the receiver FIFO.
        wr(&mut u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
        assert_eq!(rd(&mut u, UART_LSR) & UART_LSR_DR, 0);
        assert_eq!(
            rd(&mut u, UART_IIR),
            UART_IIR_FIFO_ENABLED | UART_IIR_NO_INT
        );
        assert!(!irq.level(UART0_IRQ));
    }

    #[test]
    fn divisor_latch_and_scratch() {
        let (_, out, mut u) = setup();
        wr(&mut u, UART_LCR, UART_LCR_DLAB | 0x03);
        wr(&mut u, UART_DLL, 0x0c);
        wr(&mut u, UART_DLM, 0x01);
        assert_eq!(u.divisor(), 0x010c);
        assert_eq!(rd(&mut u, UART_DLL), 0x0c);
        assert_eq!(rd(&mut u, UART_DLM), 0x01);
        wr(&mut u, UART_LCR, 0x03);
        assert_eq!(rd(&mut u, UART_LCR), 0x03);
        assert_eq!(rd(&mut u, UART_IER), 0, "DLM did not touch IER");
        assert!(out.0.lock().is_empty(), "DLL did not transmit");
        wr(&mut u, UART_SCR, 0x5a);
        assert_eq!(rd(&mut u, UART_SCR), 0x5a);
    }

    #[test]
    fn loopback_mode() {
        let (_, out, mut u) = setup();
        wr(
            &mut u,
            UART_MCR,
            UART_MCR_LOOP | UART_MCR_RTS | UART_MCR_OUT2,
        );
        assert_eq!(
            rd(&mut u, UART_MSR) & 0xf0,
            UART_MSR_CTS | UART_MSR_DCD,
            "MCR drives MSR in loopback"
        );
        wr(&mut u, UART_THR, 0x42);
        assert!(out.0.lock().is_empty());
        assert_eq!(rd(&mut u, UART_RBR), 0x42);
        assert_eq!(u.enqueue_input(b"zz"), 2);
        assert_eq!(rd(&mut u, UART_LSR) & UART_LSR_DR, 0, "host input dropped");
        wr(&mut u, UART_MCR, UART_MCR_OUT2);
        assert_eq!(rd(&mut u, UART_MSR), 0xb0 | UART_MSR_DDSR);
        assert_eq!(rd(&mut u, UART_MSR), 0xb0, "reading MSR clears deltas");
    }

    #[test]
    fn modem_status_interrupt() {
        let (irq, _, mut u) = setup();
        wr(&mut u, UART_IER, UART_IER_MSI);
        wr(&mut u, UART_MCR, UART_MCR_LOOP);
        assert!(irq.level(UART0_IRQ));
        assert_eq!(rd(&mut u, UART_IIR), UART_IIR_MSI);
        rd(&mut u, UART_MSR);
        assert!(!irq.level(UART0_IRQ));
    }

    #[test]
    fn random_accesses_never_panic_and_irq_matches_iir() {
        let (irq, _, mut u) = setup();
        for seed in 1..50u64 {
            u.enqueue_input(&seed.to_le_bytes());
            crate::irq::test_util::random_accesses(&mut u, UART0_SIZE, seed, 2000);
            assert!(u.rx.len() <= UART_INPUT_CAPACITY);
            assert_eq!(irq.level(UART0_IRQ), u.iir_id() != UART_IIR_NO_INT);
            assert_eq!(u.lsr & UART_LSR_DR != 0, !u.rx.is_empty());
        }
    }

    /// The register dance of Linux's 8250 driver (drivers/tty/serial/8250/8250_port.c:
    /// `autoconfig`, `autoconfig_16550a`, and the THRE test of `serial8250_do_startup`), which
    /// must find a working 16550A.
    #[test]
    fn linux_8250_probe_finds_a_16550a() {
        let (irq, out, mut u) = setup();
        // Existence test: IER holds 0 and then 0x0f.
        wr(&mut u, UART_IER, 0);
        assert_eq!(rd(&mut u, UART_IER) & 0x0f, 0);
        wr(&mut u, UART_IER, 0x0f);
        assert_eq!(rd(&mut u, UART_IER) & 0x0f, 0x0f);
        wr(&mut u, UART_IER, 0);
        // Loopback test: MCR = LOOP | OUT2 | RTS reads back as MSR DCD | CTS.
        let save_mcr = rd(&mut u, UART_MCR);
        wr(&mut u, UART_MCR, UART_MCR_LOOP | 0x0a);
        assert_eq!(rd(&mut u, UART_MSR) & 0xf0, UART_MSR_DCD | UART_MSR_CTS);
        wr(&mut u, UART_MCR, save_mcr);
        // FIFO test: IIR bits 7:6 = 3 with the FIFO enabled.
        wr(&mut u, UART_FCR, UART_FCR_ENABLE_FIFO);
        assert_eq!(rd(&mut u, UART_IIR) >> 6, 3);
        // EFR probe (LCR = 0xbf, offset 2) must not read 0, or it would be an ST16650.
        wr(&mut u, UART_LCR, 0xbf);
        assert_ne!(rd(&mut u, 2), 0);
        // 16750 probe: IIR bit 5 (64-byte FIFO) stays clear.
        wr(&mut u, UART_LCR, 0x80);
        wr(&mut u, UART_FCR, UART_FCR_ENABLE_FIFO | 0x20);
        assert_eq!(rd(&mut u, UART_IIR) & 0x20, 0);
        wr(&mut u, UART_LCR, 0x03);
        // Startup: clear FIFOs, read LSR/RBR/IIR/MSR; LSR is not 0xff.
        wr(
            &mut u,
            UART_FCR,
            UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT,
        );
        assert_ne!(rd(&mut u, UART_LSR), 0xff);
        rd(&mut u, UART_RBR);
        rd(&mut u, UART_IIR);
        rd(&mut u, UART_MSR);
        // THRE test: THRE must be reasserted each time ETBEI is enabled (else UART_BUG_THRE).
        wr(&mut u, UART_IER, UART_IER_THRI);
        let iir1 = rd(&mut u, UART_IIR);
        wr(&mut u, UART_IER, 0);
        wr(&mut u, UART_IER, UART_IER_THRI);
        let iir2 = rd(&mut u, UART_IIR);
        wr(&mut u, UART_IER, 0);
        assert_eq!(iir1 & UART_IIR_NO_INT, 0);
        assert_eq!(iir2 & UART_IIR_NO_INT, 0);
        assert!(!irq.level(UART0_IRQ));
        assert!(out.0.lock().is_empty(), "probing transmitted nothing");
    }
}
