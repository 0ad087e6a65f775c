//! QEMU's riscv `virt` board (QEMU 7.2 hw/riscv/virt.c): the same memory map, interrupt numbers
//! and device-tree node names, so that a stock Linux kernel boots as it does under QEMU.
//!
//! ```text
//! 0x0010_0000  sifive_test finisher      0x0c00_0000  PLIC (96 sources, M+S context per hart)
//! 0x0010_1000  goldfish RTC  (IRQ 11)    0x1000_0000  UART0 NS16550A (IRQ 10)
//! 0x0200_0000  CLINT                     0x1000_1000 + 0x1000*i  virtio-mmio i (IRQ 1 + i)
//! 0x8000_0000  RAM
//! ```
//!
//! Boot (DESIGN.md §8): by default emu's built-in SBI — each hart is set up as OpenSBI leaves
//! it (delegation, counters, Sstc, a PMP entry for S/U) and the boot hart enters the kernel in
//! S-mode with a0 = hartid, a1 = fdt; an `ecall` from S-mode is answered by the board through
//! [`emu_firmware::sbi::handle_ecall`] (the board is its [`SbiHost`]; the other harts start in
//! the HSM STOPPED state). With `-bios FILE` (OpenSBI `fw_dynamic.bin`) every hart starts in M-mode at
//! the firmware. `-bios none` starts an ELF kernel in M-mode at its entry.
//!
//! SMP (DESIGN.md §5): the harts are interleaved round-robin on one host thread. Each round ends
//! at a virtual time target (a slice, or the next device deadline, whichever is sooner); every
//! started hart runs until its own clock reaches the target, a hart in WFI or stopped by HSM
//! just has its clock moved there. When every hart sleeps, time jumps to the next deadline —
//! or, while host input may still arrive (terminal, open pipe, network peer), moves with the
//! host clock. Host input (UART0, virtio consoles, network backends) enters only between
//! rounds, so with none, runs are identical.
//!
//! Virtio consoles (`-device virtconsole,chardev=ID`): output goes to the chardev — a file
//! written through at every transmit as QEMU's file chardev does, nothing for `null`, stdout for
//! `stdio` (buffered until the round ends, as UART0's). A console sharing UART0's chardev
//! (`mux=on`) writes into UART0's buffer, so their bytes keep their order; stdin then feeds
//! the device with the focus (Ctrl-A c). Without `chardev=`, the output joins UART0's.

use crate::cli::{Bios, ChardevOpt, DeviceOpt, EngineChoice, NetdevKind, SerialOpt, VirtOptions};
use crate::console::{ConsoleEvent, ConsoleInput, ConsoleOutput, TerminalGuard};
use emu_devices::clint::Clint;
use emu_devices::clock::VirtualTime;
use emu_devices::goldfish_rtc::{GoldfishRtc, DEFAULT_RTC_BASE_NS};
use emu_devices::irq::{IrqLine, IrqSink};
use emu_devices::memory::{GuestRam, MemoryError};
use emu_devices::plic::Plic;
use emu_devices::sched::{EventId, Scheduler, Timer};
use emu_devices::sifive_test::{FinisherHandle, FinisherRequest, SifiveTest};
use emu_devices::uart::Ns16550a;
use emu_devices::virtio::{
    self, FileBackend, GuestMemory, HostPoll, NetBackend, StreamBackend, TapBackend, VirtioBlk,
    VirtioConsole, VirtioMmio, VirtioNet, VirtioRng, XorShiftEntropy,
};
use emu_devices::{Bus, BusDevice, BusError};
use emu_firmware::fdt::{self, build_fdt, HartDesc, PlatformDesc};
use emu_firmware::fw_dynamic::{self, EntryMode, EntryRegs, FwDynamicInfo};
use emu_firmware::image::{self, LoadError, RamRange};
use emu_firmware::sbi::{self, HartSuspend, ResetReason, ResetType, SbiError, SbiHost};
use emu_frontends::riscv::cpu::RiscvCpu;
use emu_frontends::riscv::csr::{
    CSR_OP_RW, MENVCFG_STCE, MIP_SEIP, MIP_SSIP, MIP_STIP, MSTATUS_MPP, MSTATUS_SPP,
};
use emu_jit::codemap::CodeMap;
use emu_jit::engine::{Engine, EngineError, EngineKind, RunExit};
use parking_lot::Mutex;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use thiserror::Error;

/// Virtual nanoseconds each round of the round-robin lasts at most: bounds the latency of
/// host input and of one hart seeing another's store (IPIs go through the CLINT or SBI).
pub const ROUND_NS: u64 = 100_000;
/// Exceptions one hart may take in one slice before the run loop looks at the world again.
const MAX_TRAPS_PER_SLICE: u32 = 100_000;
/// The RTC alarm's scheduler event.
const EVENT_RTC: EventId = EventId(0);
/// Fixed `rng-seed` in `/chosen`: boots must be identical (DESIGN.md §5).
const RNG_SEED: [u8; 32] = *b"emu deterministic rng-seed v1...";
/// Host pause while every hart sleeps with nothing scheduled and input may still come.
const IDLE_POLL_MS: i32 = 10;

/// The first MAC address given to a virtio-net device without `mac=` (QEMU's default).
const DEFAULT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// `ecall` from S-mode (Privileged ISA Table 3.6).
const CAUSE_SUPERVISOR_ECALL: u64 = 9;
const A0: usize = 10;
const A1: usize = 11;
const A2: usize = 12;

/// CSR numbers the built-in SBI sets up (Privileged ISA Table 2.5).
const CSR_PMPCFG0: u16 = 0x3a0;
const CSR_PMPADDR0: u16 = 0x3b0;
/// pmpcfg: R | W | X | A=NAPOT (§3.7.1).
const PMP_RWX_NAPOT: u64 = 0x1f;

/// Exceptions OpenSBI delegates to S-mode (sbi_hart.c delegate_traps), plus the ones it would
/// otherwise emulate in M-mode (illegal instruction, misaligned and access faults): with no
/// M-mode firmware the kernel handles them itself.
const MEDELEG_BUILTIN: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 7)
    | (1 << 8)
    | (1 << 12)
    | (1 << 13)
    | (1 << 15);
/// Interrupts OpenSBI delegates: SSIP, STIP, SEIP.
const MIDELEG_BUILTIN: u64 = MIP_SSIP | MIP_STIP | MIP_SEIP;

/// Errors building or running the board.
#[derive(Debug, Error)]
pub enum VirtError {
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("could not map {what}: {source}")]
    Map { what: String, source: BusError },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot build the device tree: {0}")]
    Fdt(String),
    #[error("could not load device tree '{path}': {why}")]
    Dtb { path: String, why: String },
    #[error("could not write the device tree to '{path}': {source}")]
    DumpDtb {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Block(#[from] virtio::BlockError),
    #[error("-netdev {id}: {why}")]
    Netdev { id: String, why: String },
    #[error("-device: {0}")]
    Device(String),
    #[error("could not open serial output '{path}': {source}")]
    Serial {
        path: String,
        source: std::io::Error,
    },
    #[error("-chardev {id}: could not open '{path}': {source}")]
    Chardev {
        id: String,
        path: String,
        source: std::io::Error,
    },
    #[error("no kernel given (use -kernel FILE)")]
    NoKernel,
    #[error(
        "kernel '{0}' is not an ELF file: -bios none needs an ELF kernel that starts in M-mode"
    )]
    BiosNoneNeedsElf(String),
    #[error("more than 8 virtio devices")]
    TooManyVirtio,
    #[error("the guest ran {0} instructions without powering off (the --max-insns limit)")]
    InsnLimit(u64),
    #[error(
        "guest is waiting for an interrupt that can never come (every hart is stopped or in WFI \
         with nothing scheduled)"
    )]
    WaitForever,
    #[error("unimplemented instruction {bits:#010x} at pc {pc:#x} (--strict)")]
    Unimplemented { pc: u64, bits: u32 },
    #[error(
        "hart {hart} trapped to M-mode (cause {cause:#x}, mepc {mepc:#x}, mtval {mtval:#x}), \
         which the built-in SBI does not handle"
    )]
    MachineTrap {
        hart: usize,
        cause: u64,
        mepc: u64,
        mtval: u64,
    },
}

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtExit {
    /// The guest powered off with this status (sifive_test or SBI SRST).
    PowerOff(i32),
    /// The guest asked for a reboot.
    Reset,
    /// The user quit (Ctrl-A x).
    Quit,
}

/// How to build the board.
#[derive(Clone, Debug)]
pub struct VirtConfig {
    pub kernel: Option<PathBuf>,
    pub ram_size: u64,
    pub engine: EngineChoice,
    pub strict: bool,
    pub max_insns: Option<u64>,
    pub opts: VirtOptions,
}

/// HSM state of a hart (SBI spec §9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HartState {
    Started,
    Stopped,
}

/// One hart and its scheduling state.
struct Hart {
    cpu: Box<RiscvCpu>,
    state: HartState,
    /// In WFI: skipped until an interrupt is pending.
    wfi: bool,
}

impl Hart {
    fn now_ns(&self) -> u64 {
        self.cpu.clock.now_ns(self.cpu.common.insn_count)
    }
    fn skip_to(&mut self, ns: u64) {
        let c = self.cpu.common.insn_count;
        self.cpu.clock.skip_to(c, ns);
    }
}

/// A virtio-mmio transport with no device behind it: MagicValue, Version 2, DeviceID 0,
/// VendorID; every other register reads 0 and writes are ignored.
struct EmptyTransport;

impl BusDevice for EmptyTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let v: u32 = match offset {
            virtio::mmio::VIRTIO_MMIO_MAGIC_VALUE => virtio::mmio::VIRTIO_MMIO_MAGIC,
            virtio::mmio::VIRTIO_MMIO_VERSION => 2,
            virtio::mmio::VIRTIO_MMIO_VENDOR_ID => virtio::mmio::VIRTIO_MMIO_VENDOR,
            _ => 0,
        };
        let bytes = u64::from(v).to_le_bytes();
        for (d, b) in data
            .iter_mut()
            .zip(bytes.iter().chain(std::iter::repeat(&0)))
        {
            *d = *b;
        }
    }
    fn write(&mut self, _offset: u64, _data: &[u8]) {}
}

/// A virtio device the command line asks for.
enum Want {
    Blk(usize),
    Rng,
    Console(Option<ChardevOpt>),
    Net(usize, Option<[u8; 6]>),
}

/// A device that takes host input from stdin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frontend {
    Uart,
    /// An index into `Virt::consoles`.
    Console(usize),
}

/// Where the host side of the virtio consoles goes, built while the devices are created.
struct ConsoleHosts<'a> {
    opts: &'a VirtOptions,
    /// UART0's output buffer.
    uart_out: ConsoleOutput,
    /// stdout of consoles on a stdio chardev UART0 does not use (flushed at round ends).
    stdout: Option<ConsoleOutput>,
    /// Whether a console on stdio needs its own stdin reader (UART0 is not on stdio).
    own_stdin: Option<bool>,
    frontends: Vec<Frontend>,
}

impl ConsoleHosts<'_> {
    /// The writer for console `k` on `chardev`; notes which consoles read stdin.
    fn open(
        &mut self,
        k: usize,
        chardev: Option<&ChardevOpt>,
    ) -> Result<Box<dyn Write + Send>, VirtError> {
        let Some(c) = chardev else {
            return Ok(Box::new(self.uart_out.clone()));
        };
        let stdio = matches!(c.backend, SerialOpt::MonStdio | SerialOpt::Stdio);
        if self.opts.serial_chardev.as_deref() == Some(c.id.as_str()) {
            // UART0's own chardev (mux=on, checked by the command line): one stream.
            if stdio {
                self.frontends.push(Frontend::Console(k));
            }
            return Ok(Box::new(self.uart_out.clone()));
        }
        Ok(match &c.backend {
            SerialOpt::Null => Box::new(std::io::sink()),
            SerialOpt::MonStdio | SerialOpt::Stdio => {
                self.own_stdin = Some(c.mux);
                self.frontends.push(Frontend::Console(k));
                Box::new(self.stdout.get_or_insert_with(ConsoleOutput::new).clone())
            }
            SerialOpt::File(p) => Box::new(open_chardev_file(&c.id, p)?),
        })
    }
}

/// A virtio console and its host side.
struct ConsoleDev {
    dev: Arc<Mutex<VirtioMmio<VirtioConsole>>>,
}

/// Host input not yet taken by its device, per stdin frontend.
struct StdinState {
    pending: Vec<Vec<u8>>,
}

/// The running board.
pub struct Virt {
    harts: Vec<Hart>,
    engine: Engine,
    time: Arc<VirtualTime>,
    sched: Arc<Mutex<Scheduler>>,
    clint: Arc<Mutex<Clint>>,
    uart: Arc<Mutex<Ns16550a>>,
    rtc: Arc<Mutex<GoldfishRtc>>,
    finisher: FinisherHandle,
    /// Devices with host backends to poll at slice boundaries.
    polled: Vec<Arc<Mutex<dyn HostPoll>>>,
    console_out: ConsoleOutput,
    /// The virtio consoles, polled for host input at round boundaries.
    consoles: Vec<ConsoleDev>,
    /// The devices stdin feeds, in the order Ctrl-A c visits them.
    frontends: Vec<Frontend>,
    /// Output of consoles on a stdio chardev of their own, for stdout.
    console_stdout: Option<ConsoleOutput>,
    /// stdin for those consoles (UART0 is not on stdio); `Some(mux)` until `run` opens it.
    own_stdin: Option<bool>,
    /// Whether stdin belongs to the consoles (then Ctrl-A h's help goes to stdout too).
    consoles_own_stdin: bool,
    own_input: Option<ConsoleInput>,
    /// Raw terminal for a `mux=on` stdio chardev of the consoles' own.
    raw: Option<TerminalGuard>,
    ram: Arc<GuestRam>,
    builtin_sbi: bool,
    strict: bool,
    max_insns: Option<u64>,
    /// Where the SBI SRST or the finisher asked the run to end.
    exit: Option<VirtExit>,
    /// Trap entries (for the --max-insns guard, as on spike).
    traps: u64,
    /// The GDB stub's machine side, which runs the engine itself (src/gdb).
    debug: Option<crate::gdb::HartDebug>,
}

/// The harts, for the GDB stub.
impl crate::gdb::HartSet for Vec<Hart> {
    fn hart_count(&self) -> usize {
        self.len()
    }

    fn hart(&mut self, i: usize) -> Option<&mut RiscvCpu> {
        self.get_mut(i).map(|h| &mut *h.cpu)
    }
}

/// A bus device wrapper for a device shared behind `Arc<Mutex<T>>`.
fn map<T: BusDevice + 'static>(
    bus: &mut Bus,
    base: u64,
    len: u64,
    dev: Arc<Mutex<T>>,
    what: &str,
) -> Result<(), VirtError> {
    bus.add_device(base, len, dev)
        .map_err(|source| VirtError::Map {
            what: what.to_string(),
            source,
        })
}

/// The ISA the harts implement, as the device tree says it.
fn hart_desc(hart_id: u32) -> HartDesc {
    HartDesc {
        hart_id,
        isa_base: "rv64i".into(),
        // Canonical order (Unprivileged ISA ch. 36): single letters, then Z names by their
        // second letter's category (Zi*, then Zb*), then S names. QEMU 7.2's default hart has
        // the same Zb* and Zihintpause (pause runs as the fence it is encoded as).
        extensions: "i m a f d c zicntr zicond zicsr zifencei zihintpause zba zbb zbc zbs sstc"
            .split(' ')
            .map(String::from)
            .collect(),
        // Sv39: the kernel then walks three levels per TLB miss instead of five.
        mmu_type: "riscv,sv39".into(),
    }
}

/// The device tree of this board (before `/chosen` is filled).
pub fn platform_desc(smp: u32, ram_size: u64) -> PlatformDesc {
    PlatformDesc::riscv_virt((0..smp).map(hart_desc).collect(), ram_size)
}

fn open_netdev(id: &str, kind: &NetdevKind) -> Result<Box<dyn NetBackend>, VirtError> {
    let fail = |e: std::io::Error| VirtError::Netdev {
        id: id.to_string(),
        why: e.to_string(),
    };
    Ok(match kind {
        NetdevKind::Listen(a) => Box::new(StreamBackend::listen_tcp(a).map_err(fail)?),
        NetdevKind::Connect(a) => Box::new(StreamBackend::connect_tcp(a).map_err(fail)?),
        NetdevKind::Tap(name) => Box::new(TapBackend::open(name).map_err(fail)?),
    })
}

/// Where UART0's bytes go on the host (`file:PATH` truncates the file, as QEMU's file chardev).
pub fn open_serial(serial: &SerialOpt) -> Result<Box<dyn Write + Send>, VirtError> {
    Ok(match serial {
        SerialOpt::MonStdio | SerialOpt::Stdio => Box::new(std::io::stdout()),
        SerialOpt::Null => Box::new(std::io::sink()),
        SerialOpt::File(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(p)
                .map_err(|source| VirtError::Serial {
                    path: p.display().to_string(),
                    source,
                })?,
        ),
    })
}

impl Virt {
    /// Build the board, load the images and set up the harts.
    pub fn new(config: &VirtConfig) -> Result<Virt, VirtError> {
        let o = &config.opts;
        let smp = o.smp.max(1) as usize;
        let ram_range = RamRange {
            base: fdt::virt::DRAM_BASE,
            size: config.ram_size,
        };
        let time = Arc::new(VirtualTime::new());
        let sched = Arc::new(Mutex::new(Scheduler::new()));
        let ram = Arc::new(GuestRam::new(ram_range.base, ram_range.size)?);
        let mut bus = Bus::new();
        bus.add_ram(ram.clone());

        let irq_lines: Vec<Arc<AtomicU64>> =
            (0..smp).map(|_| Arc::new(AtomicU64::new(0))).collect();
        let clint = Arc::new(Mutex::new(Clint::new(time.clone(), irq_lines.clone())));
        map(
            &mut bus,
            fdt::virt::CLINT.0,
            fdt::virt::CLINT.1,
            clint.clone(),
            "the CLINT",
        )?;
        let plic = Plic::new(irq_lines.clone());
        let plic_sink: Arc<dyn IrqSink> = Arc::new(plic.clone());
        map(
            &mut bus,
            fdt::virt::PLIC.0,
            fdt::virt::PLIC.1,
            Arc::new(Mutex::new(plic)),
            "the PLIC",
        )?;
        let line = |src: u32| IrqLine::new(plic_sink.clone(), src);

        let console_out = ConsoleOutput::new();
        let uart = Arc::new(Mutex::new(Ns16550a::new(
            line(fdt::virt::UART0_IRQ),
            Box::new(console_out.clone()),
        )));
        map(
            &mut bus,
            fdt::virt::UART0.0,
            fdt::virt::UART0.1,
            uart.clone(),
            "UART0",
        )?;
        let rtc = Arc::new(Mutex::new(GoldfishRtc::new(
            time.clone(),
            DEFAULT_RTC_BASE_NS,
            line(fdt::virt::RTC_IRQ),
            Timer::new(sched.clone(), EVENT_RTC),
        )));
        map(
            &mut bus,
            fdt::virt::RTC.0,
            fdt::virt::RTC.1,
            rtc.clone(),
            "the RTC",
        )?;
        let test = SifiveTest::new();
        let finisher = test.handle();
        map(
            &mut bus,
            fdt::virt::TEST.0,
            fdt::virt::TEST.1,
            Arc::new(Mutex::new(test)),
            "the test finisher",
        )?;

        let code_map = Arc::new(CodeMap::new());
        let hook = dma_write_hook(code_map.clone());
        // QEMU gives the first virtio device the transport at the highest address (its buses
        // are prepended), which the kernel probes first. `-drive if=virtio` come first.
        let mut wanted: Vec<Want> = Vec::new();
        let mut used_drives = vec![false; o.drives.len()];
        for (i, d) in o.drives.iter().enumerate() {
            if d.if_virtio {
                used_drives[i] = true;
                wanted.push(Want::Blk(i));
            }
        }
        for dev in &o.devices {
            wanted.push(match dev {
                DeviceOpt::Blk { drive } => {
                    let idx = o
                        .drives
                        .iter()
                        .position(|d| d.id.as_deref() == Some(drive.as_str()))
                        .ok_or_else(|| VirtError::Device(format!("no -drive with id={drive}")))?;
                    if used_drives.get(idx).copied().unwrap_or(true) {
                        return Err(VirtError::Device(format!("drive '{drive}' is used twice")));
                    }
                    used_drives[idx] = true;
                    Want::Blk(idx)
                }
                DeviceOpt::Rng => Want::Rng,
                DeviceOpt::Console { chardev } => Want::Console(chardev.clone()),
                DeviceOpt::Net { netdev, mac } => {
                    let nd = o
                        .netdevs
                        .iter()
                        .position(|n| &n.id == netdev)
                        .ok_or_else(|| VirtError::Device(format!("no -netdev with id={netdev}")))?;
                    Want::Net(nd, *mac)
                }
            });
        }
        if wanted.len() > fdt::virt::VIRTIO_COUNT as usize {
            return Err(VirtError::TooManyVirtio);
        }
        let n_virtio = wanted.len();
        let mut polled: Vec<Arc<Mutex<dyn HostPoll>>> = Vec::new();
        let mut hosts = ConsoleHosts {
            opts: o,
            uart_out: console_out.clone(),
            stdout: None,
            own_stdin: None,
            frontends: if is_stdio(&o.serial) {
                vec![Frontend::Uart]
            } else {
                Vec::new()
            },
        };
        let mut consoles = Vec::new();
        let mut nics = 0u8;
        for (k, w) in wanted.into_iter().enumerate() {
            let slot = fdt::virt::VIRTIO_COUNT - 1 - k as u32;
            let base = fdt::virt::VIRTIO.0 + u64::from(slot) * fdt::virt::VIRTIO.1;
            let irq = line(fdt::virt::VIRTIO_IRQ + slot);
            let mem = GuestMemory::new(vec![ram.clone()], Some(hook.clone()));
            let dev: Arc<Mutex<dyn BusDevice>> = match w {
                Want::Blk(i) => {
                    let d = &o.drives[i];
                    let backend = FileBackend::open(&d.file, d.readonly)?;
                    let dev = VirtioBlk::new(Box::new(backend), d.readonly);
                    Arc::new(Mutex::new(VirtioMmio::new(dev, mem, irq)))
                }
                Want::Rng => {
                    let src = XorShiftEntropy::new(virtio::rng::DEFAULT_RNG_SEED);
                    let dev = VirtioRng::new(Box::new(src));
                    Arc::new(Mutex::new(VirtioMmio::new(dev, mem, irq)))
                }
                Want::Console(chardev) => {
                    let out = hosts.open(consoles.len(), chardev.as_ref())?;
                    let dev = VirtioConsole::new(out);
                    let m = Arc::new(Mutex::new(VirtioMmio::new(dev, mem, irq)));
                    consoles.push(ConsoleDev { dev: m.clone() });
                    m
                }
                Want::Net(nd, mac) => {
                    let nd = &o.netdevs[nd];
                    let backend = open_netdev(&nd.id, &nd.kind)?;
                    let mut m = DEFAULT_MAC;
                    m[5] = m[5].wrapping_add(nics);
                    nics = nics.wrapping_add(1);
                    let dev = VirtioNet::new(mac.unwrap_or(m), backend);
                    let m = Arc::new(Mutex::new(VirtioMmio::new(dev, mem, irq)));
                    polled.push(m.clone());
                    m
                }
            };
            bus.add_device(base, fdt::virt::VIRTIO.1, dev)
                .map_err(|source| VirtError::Map {
                    what: format!("virtio-mmio {slot}"),
                    source,
                })?;
        }
        // Transports without a device answer DeviceID 0 (virtio spec 1.2 §4.2.2: "the driver
        // MUST ignore a device with DeviceID 0x0"), as QEMU's empty virtio-mmio buses do.
        for slot in 0..fdt::virt::VIRTIO_COUNT.saturating_sub(n_virtio as u32) {
            let base = fdt::virt::VIRTIO.0 + u64::from(slot) * fdt::virt::VIRTIO.1;
            map(
                &mut bus,
                base,
                fdt::virt::VIRTIO.1,
                Arc::new(Mutex::new(EmptyTransport)),
                "an empty virtio-mmio transport",
            )?;
        }

        // Images.
        let builtin_sbi = o.bios == Bios::BuiltinSbi;
        let firmware = match &o.bios {
            Bios::File(p) => Some(image::load_firmware(p, &bus, ram_range)?),
            _ => None,
        };
        let kernel = match &config.kernel {
            Some(k) => Some(image::load_kernel(
                k,
                &bus,
                ram_range,
                firmware.map(|f| f.end),
            )?),
            None => None,
        };
        if kernel.is_none() && firmware.is_none() {
            return Err(VirtError::NoKernel);
        }
        let mut desc = platform_desc(smp as u32, config.ram_size);
        desc.chosen.bootargs = o.append.clone();
        desc.chosen.rng_seed = Some(RNG_SEED);
        let layout = image::boot_layout(ram_range, fdt::FDT_MAX_SIZE as u64)?;
        if let (Some(path), Some(k)) = (&o.initrd, &kernel) {
            desc.chosen.initrd = Some(image::load_initrd(
                path,
                &bus,
                ram_range,
                k,
                layout.initrd_limit,
            )?);
        }
        let blob = match &o.dtb {
            Some(p) => {
                let b = std::fs::read(p).map_err(|e| VirtError::Dtb {
                    path: p.display().to_string(),
                    why: e.to_string(),
                })?;
                if b.len() > fdt::FDT_MAX_SIZE || b.get(..4) != Some(&[0xd0, 0x0d, 0xfe, 0xed]) {
                    return Err(VirtError::Dtb {
                        path: p.display().to_string(),
                        why: "not a flattened device tree of at most 1 MiB".into(),
                    });
                }
                // QEMU fills /chosen of a given tree too (bootargs, initrd).
                let out = emu_firmware::dtb::patch_chosen(
                    &b,
                    desc.chosen.bootargs.as_deref(),
                    desc.chosen.initrd,
                )
                .map_err(|why| VirtError::Dtb {
                    path: p.display().to_string(),
                    why,
                })?;
                if out.len() > fdt::FDT_MAX_SIZE {
                    return Err(VirtError::Dtb {
                        path: p.display().to_string(),
                        why: "larger than 1 MiB once /chosen is filled in".into(),
                    });
                }
                out
            }
            None => build_fdt(&desc).map_err(|e| VirtError::Fdt(e.to_string()))?,
        };
        if !ram.write(layout.fdt_addr, &blob) {
            return Err(VirtError::Fdt("the device tree does not fit in RAM".into()));
        }

        // Harts.
        let entries: Vec<(EntryRegs, HartState)> = (0..smp as u64)
            .map(|h| match (&firmware, &kernel) {
                (Some(f), _) => Ok((
                    fw_dynamic::firmware_entry(
                        h,
                        f.entry,
                        layout.fdt_addr,
                        layout.fw_dynamic_info_addr,
                    ),
                    HartState::Started,
                )),
                (None, Some(k)) if builtin_sbi => Ok((
                    fw_dynamic::kernel_entry(h, k.entry, layout.fdt_addr),
                    if h == 0 {
                        HartState::Started
                    } else {
                        HartState::Stopped
                    },
                )),
                (None, Some(k)) => {
                    if k.format != image::KernelFormat::Elf {
                        let path = config.kernel.as_deref().unwrap_or(Path::new(""));
                        return Err(VirtError::BiosNoneNeedsElf(path.display().to_string()));
                    }
                    Ok((
                        EntryRegs {
                            pc: k.entry,
                            mode: EntryMode::Machine,
                            a0: h,
                            a1: layout.fdt_addr,
                            a2: 0,
                        },
                        HartState::Started,
                    ))
                }
                (None, None) => Err(VirtError::NoKernel),
            })
            .collect::<Result<_, _>>()?;
        if let (Some(_), Some(k)) = (&firmware, &kernel) {
            FwDynamicInfo::new(k.entry, 0).write(&bus, layout.fw_dynamic_info_addr)?;
        }

        let bus = Arc::new(bus);
        let mut harts = Vec::with_capacity(smp);
        for (h, (entry, state)) in entries.into_iter().enumerate() {
            let mut cpu = RiscvCpu::new(h as u64, bus.clone(), code_map.clone(), time.clone());
            cpu.irq_lines = irq_lines[h].clone();
            cpu.strict = config.strict;
            if builtin_sbi {
                setup_like_opensbi(&mut cpu);
            }
            enter(&mut cpu, &entry);
            harts.push(Hart {
                cpu,
                state,
                wfi: false,
            });
        }
        let kind = match config.engine {
            EngineChoice::Interp => EngineKind::Interp,
            EngineChoice::Jit => EngineKind::Jit,
            EngineChoice::Tiered => EngineKind::Tiered,
        };
        let engine = Engine::new(kind, code_map)?;
        Ok(Virt {
            harts,
            engine,
            time,
            sched,
            clint,
            uart,
            rtc,
            finisher,
            polled,
            console_out,
            consoles,
            frontends: hosts.frontends,
            console_stdout: hosts.stdout,
            own_stdin: hosts.own_stdin,
            consoles_own_stdin: hosts.own_stdin.is_some(),
            own_input: None,
            raw: None,
            ram,
            builtin_sbi,
            strict: config.strict,
            max_insns: config.max_insns,
            exit: None,
            traps: 0,
            debug: None,
        })
    }

    /// Attach the GDB stub's machine side and `-d` tracing (src/gdb, src/trace.rs).
    pub fn attach_debug(
        &mut self,
        gdb: Option<crate::gdb::HartDebug>,
        trace: Option<&(crate::trace::TraceItems, crate::trace::TraceOut)>,
    ) {
        if let Some((items, out)) = trace {
            for h in &mut self.harts {
                crate::trace::install(*items, out, &mut self.engine, &mut h.cpu);
            }
        }
        self.debug = gdb;
    }

    /// Take the GDB stub's machine side back (to attach it to the machine a reset builds).
    pub fn take_debug(&mut self) -> Option<crate::gdb::HartDebug> {
        self.debug.take()
    }

    /// Number of harts.
    pub fn hart_count(&self) -> usize {
        self.harts.len()
    }

    /// Instructions retired by all harts.
    pub fn insn_count(&self) -> u64 {
        self.harts.iter().map(|h| h.cpu.common.insn_count).sum()
    }

    /// 64-bit FNV-1a hash of guest RAM for `--stats` (each non-zero 4 KiB page with its
    /// address, as the spike board's state hash does): equal hashes at power-off show that two
    /// runs left the same memory behind.
    pub fn ram_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut page = vec![0u8; 4096];
        let mut addr = self.ram.base();
        while self.ram.read(addr, &mut page) {
            if page.iter().any(|&b| b != 0) {
                for &b in addr.to_le_bytes().iter().chain(page.iter()) {
                    h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
            addr += page.len() as u64;
        }
        h
    }

    /// The engine (for statistics).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// UART0's output so far (drained).
    pub fn take_output(&self) -> Vec<u8> {
        self.console_out.take()
    }

    /// Fire the scheduler's due events (lock order: scheduler released before the device).
    fn fire_events(&mut self, now: u64) {
        loop {
            let fired = self.sched.lock().pop_due(now);
            let Some(f) = fired else { break };
            if f.event == EVENT_RTC {
                self.rtc.lock().alarm_fired();
            }
        }
    }

    fn next_deadline(&self, now: u64) -> Option<u64> {
        let mut d = [
            self.sched.lock().next_deadline(),
            self.clint.lock().next_deadline_ns(),
        ]
        .into_iter()
        .flatten()
        .chain(
            self.harts
                .iter()
                .filter_map(|h| h.cpu.next_timer_deadline_ns()),
        )
        .filter(|&d| d > now)
        .min();
        if let Some(x) = d.as_mut() {
            *x = (*x).max(now + 1);
        }
        d
    }

    /// Run until the guest powers off or reboots, or the user quits. `input` (UART0's stdin,
    /// shared with the consoles on its chardev) is polled at round boundaries; UART0's output
    /// goes to `out` at the same points. `interactive`: a person is typing, so idle virtual
    /// time follows the host clock. Consoles on a stdio chardev UART0 does not use read stdin
    /// themselves.
    pub fn run(
        &mut self,
        input: &mut ConsoleInput,
        out: &mut dyn Write,
        interactive: bool,
    ) -> Result<VirtExit, VirtError> {
        if let Some(mux) = self.own_stdin.take() {
            // Raw mode only for the Ctrl-A keys, as for UART0 (`mon:stdio` vs `stdio`).
            if mux {
                self.raw = Some(TerminalGuard::raw_stdin());
            }
            self.own_input = Some(ConsoleInput::stdin(mux));
        }
        let mut own = self.own_input.take();
        let r = match own.as_mut() {
            Some(i) => {
                let tty = crate::console::stdin_is_tty();
                self.run_with(i, out, interactive || tty)
            }
            None => self.run_with(input, out, interactive),
        };
        self.own_input = own;
        r
    }

    /// Move host input to the devices, only between rounds (DESIGN.md §5): read stdin when
    /// every device has taken what was read before. Returns Quit on Ctrl-A x.
    fn take_input(
        &mut self,
        input: &mut ConsoleInput,
        stdin: &mut StdinState,
        echo: &mut Vec<u8>,
    ) -> Option<ConsoleEvent> {
        if stdin.pending.iter().all(Vec::is_empty) {
            let focus = self.frontends.get(input.focus()).copied();
            let space = match focus {
                Some(f) => self.input_space(f),
                None => self.uart.lock().input_space(),
            };
            if let Some(ConsoleEvent::Quit) = input.poll(space, &mut stdin.pending, echo) {
                return Some(ConsoleEvent::Quit);
            }
        }
        for (k, f) in self.frontends.iter().enumerate() {
            let Some(p) = stdin.pending.get_mut(k).filter(|p| !p.is_empty()) else {
                continue;
            };
            let n = match *f {
                Frontend::Uart => self.uart.lock().enqueue_input(p),
                Frontend::Console(c) => match self.consoles.get(c) {
                    Some(d) => {
                        let mut d = d.dev.lock();
                        let n = p.len().min(d.device().input_space());
                        d.device_mut().push_input(&p[..n]);
                        n
                    }
                    None => p.len(),
                },
            };
            p.drain(..n.min(p.len()));
        }
        // Deliver to receive buffers the guest made available since the last round.
        for c in &self.consoles {
            c.dev.lock().poll();
        }
        None
    }

    /// Bytes device `f` can take now.
    fn input_space(&self, f: Frontend) -> usize {
        match f {
            Frontend::Uart => self.uart.lock().input_space(),
            Frontend::Console(c) => self
                .consoles
                .get(c)
                .map_or(0, |d| d.dev.lock().device().input_space()),
        }
    }

    fn run_with(
        &mut self,
        input: &mut ConsoleInput,
        out: &mut dyn Write,
        interactive: bool,
    ) -> Result<VirtExit, VirtError> {
        let mut stdin = StdinState {
            pending: vec![Vec::new(); self.frontends.len().max(1)],
        };
        // QEMU's mux gives the input to the device attached last.
        input.set_focus(self.frontends.len().saturating_sub(1));
        let mut echo = Vec::new();
        loop {
            let now = self.time.now_ns();
            self.fire_events(now);
            self.clint.lock().update();

            if let Some(ConsoleEvent::Quit) = self.take_input(input, &mut stdin, &mut echo) {
                self.flush(out, &mut echo);
                return Ok(VirtExit::Quit);
            }
            for p in &self.polled {
                p.lock().poll_host();
            }
            self.flush(out, &mut echo);

            if let Some(e) = self.exit.take() {
                return Ok(e);
            }
            if let Some(r) = self.finisher.take() {
                return Ok(match r {
                    FinisherRequest::Reset => VirtExit::Reset,
                    r => VirtExit::PowerOff(r.exit_code().unwrap_or(1)),
                });
            }
            let total = self.insn_count().saturating_add(self.traps);
            if let Some(max) = self.max_insns {
                if total >= max {
                    return Err(VirtError::InsnLimit(max));
                }
            }

            let deadline = self.next_deadline(now);
            let target = deadline
                .unwrap_or(u64::MAX)
                .min(now.saturating_add(ROUND_NS));
            let mut ran = false;
            for i in 0..self.harts.len() {
                ran |= self.run_hart(i, target)?;
                if self.exit.is_some() {
                    break;
                }
            }
            if !ran && self.exit.is_none() {
                // Every hart sleeps: jump to the next deadline.
                match deadline {
                    Some(d) => {
                        // While input may still come (a person typing, a pipe not at its
                        // end, a network peer), idle virtual time follows the host clock: it
                        // moves by the host time waited (at most IDLE_POLL_MS, never past
                        // `d`), so an idle guest costs no host CPU. With no input possible it
                        // jumps straight to `d` (deterministic runs finish fast).
                        let mut to = d;
                        if (interactive || !input.at_eof() || !self.polled.is_empty())
                            && stdin.pending.iter().all(Vec::is_empty)
                        {
                            let max_ns = (d - now).min(IDLE_POLL_MS as u64 * 1_000_000);
                            let started = std::time::Instant::now();
                            idle_wait(input, max_ns.div_ceil(1_000_000) as i32);
                            let waited = started.elapsed().as_nanos() as u64;
                            to = now + waited.clamp(1, max_ns);
                        }
                        self.time.advance_to(to);
                        for h in &mut self.harts {
                            if h.now_ns() < to {
                                h.skip_to(to);
                            }
                        }
                    }
                    None => {
                        let backends = !self.polled.is_empty();
                        if input.at_eof() && stdin.pending.iter().all(Vec::is_empty) && !backends {
                            return Err(VirtError::WaitForever);
                        }
                        idle_wait(input, IDLE_POLL_MS);
                    }
                }
            }
        }
    }

    fn flush(&self, out: &mut dyn Write, echo: &mut Vec<u8>) {
        let bytes = self.console_out.take();
        // Ctrl-A h help goes to the terminal that was typed on.
        let (uart_echo, own_echo) = match self.consoles_own_stdin {
            true => (&[][..], &echo[..]),
            false => (&echo[..], &[][..]),
        };
        if !bytes.is_empty() || !uart_echo.is_empty() {
            let _ = out.write_all(&bytes);
            let _ = out.write_all(uart_echo);
            let _ = out.flush();
        }
        let own = self.console_stdout.as_ref().map(ConsoleOutput::take);
        if let Some(b) = own.filter(|b| !b.is_empty() || !own_echo.is_empty()) {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&b);
            let _ = o.write_all(own_echo);
            let _ = o.flush();
        }
        echo.clear();
    }

    /// Run hart `i` until its clock reaches `target`. Returns whether it ran (was awake).
    fn run_hart(&mut self, i: usize, target: u64) -> Result<bool, VirtError> {
        // GDB holds this hart while another is stepped (or under scheduler locking): it
        // neither runs nor moves its clock, so a step retires exactly one instruction in all.
        if self.debug.as_ref().is_some_and(|d| d.holds(i)) {
            return Ok(false);
        }
        let Some(h) = self.harts.get_mut(i) else {
            return Ok(false);
        };
        if h.state == HartState::Stopped {
            if h.now_ns() < target {
                h.skip_to(target);
            }
            if let Some(d) = self.debug.as_mut() {
                d.hart_stopped(i, &mut self.harts, &mut self.engine);
            }
            return Ok(false);
        }
        if h.wfi {
            if h.cpu.interrupt_pending_for_wfi() {
                h.wfi = false;
            } else {
                if h.now_ns() < target {
                    h.skip_to(target);
                }
                return Ok(false);
            }
        }
        // Exceptions taken in this slice: a guest stuck re-raising a fault retires nothing and
        // moves no time, so the slice also ends after MAX_TRAPS_PER_SLICE of them (host input,
        // e.g. Ctrl-A x, is then still read).
        let mut slice_traps = 0u32;
        loop {
            // GDB may have stepped another hart, or locked this one out, at a stop in this turn.
            if self.debug.as_ref().is_some_and(|d| d.holds(i)) {
                return Ok(true);
            }
            let h = &mut self.harts[i];
            let now = h.cpu.publish_time();
            if now >= target || h.state != HartState::Started {
                return Ok(true);
            }
            if let Some(max) = self.max_insns {
                let total = self
                    .harts
                    .iter()
                    .map(|h| h.cpu.common.insn_count)
                    .sum::<u64>()
                    .saturating_add(self.traps);
                if total >= max {
                    return Ok(true);
                }
            }
            let h = &mut self.harts[i];
            h.cpu.check_interrupts();
            let count = h.cpu.common.insn_count;
            let n = h.cpu.clock.insns_until(count, target).max(1);
            let mut limit = count.saturating_add(n);
            if let Some(max) = self.max_insns {
                let others: u64 = self
                    .harts
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, h)| h.cpu.common.insn_count)
                    .sum();
                limit = limit.min(max.saturating_sub(others.saturating_add(self.traps)));
            }
            let h = &mut self.harts[i];
            h.cpu.common.insn_limit = limit;
            let exit = match self.debug.as_mut() {
                Some(d) => d.run(i, &mut self.harts, &mut self.engine),
                None => self.engine.run(&mut *h.cpu),
            };
            match exit {
                RunExit::Exception => {
                    self.traps += 1;
                    self.exception(i)?;
                    slice_traps += 1;
                    if slice_traps >= MAX_TRAPS_PER_SLICE {
                        return Ok(true);
                    }
                }
                RunExit::Halt => {
                    let h = &mut self.harts[i];
                    if !h.cpu.interrupt_pending_for_wfi() {
                        h.wfi = true;
                        if h.now_ns() < target {
                            h.skip_to(target);
                        }
                        return Ok(true);
                    }
                }
                RunExit::Yield | RunExit::Budget => {}
            }
            // Device writes may have powered off or reset the machine.
            if self.finisher.request().is_some() || self.exit.is_some() {
                return Ok(true);
            }
        }
    }

    /// Deliver hart `i`'s pending exception, or answer its SBI call.
    fn exception(&mut self, i: usize) -> Result<(), VirtError> {
        let h = &mut self.harts[i];
        if self.strict {
            if let Some((pc, bits)) = h.cpu.unimplemented {
                return Err(VirtError::Unimplemented { pc, bits });
            }
        }
        if self.builtin_sbi
            && h.cpu.common.exception_pending != 0
            && h.cpu.pending_cause == CAUSE_SUPERVISOR_ECALL
        {
            h.cpu.common.exception_pending = 0;
            h.cpu.common.pc = h.cpu.common.pc.wrapping_add(4);
            let a: [u64; 8] = std::array::from_fn(|k| h.cpu.x[A0 + k]);
            let mut ctx = SbiCtx {
                harts: &mut self.harts,
                console: &mut self.console_out,
                ram: &self.ram,
                exit: &mut self.exit,
                no_return: false,
            };
            let r = sbi::handle_ecall(&mut ctx, i, a);
            let no_return = ctx.no_return;
            let h = &mut self.harts[i];
            if !no_return && h.state == HartState::Started {
                h.cpu.x[A0] = r.error as u64;
                if !r.legacy {
                    h.cpu.x[A1] = r.value;
                }
            }
            return Ok(());
        }
        h.cpu.deliver_exception();
        if self.builtin_sbi && h.cpu.privilege == 3 {
            return Err(VirtError::MachineTrap {
                hart: i,
                cause: h.cpu.csr.mcause,
                mepc: h.cpu.csr.mepc,
                mtval: h.cpu.csr.mtval,
            });
        }
        Ok(())
    }
}

/// virtio-mmio DMA writes go through the code map: a disk read over code is self-modifying
/// code too (DESIGN.md §4). The hook need not make a hart leave generated code itself: devices
/// write guest memory either while the hart's store to their registers is being performed
/// (QueueNotify), and a store that reaches a device always ends the hart's run
/// (`insn_limit = 0`, mmu.rs `store_bytes`), or between runs (host input, scheduled
/// completions). Either way the engine drops the pages' blocks before its next lookup.
fn dma_write_hook(code_map: Arc<CodeMap>) -> virtio::DmaWriteHook {
    Arc::new(move |addr: u64, len: u64| {
        let mut page = addr & !0xfff;
        let end = addr.saturating_add(len);
        while page < end {
            code_map.note_write(page);
            page = page.saturating_add(0x1000);
        }
    })
}

/// File chardevs opened so far, by id and path. A chardev lives as long as the process, as in
/// QEMU: a guest reboot (which builds the board afresh) and a second console on a `mux=on`
/// chardev write on where the first left off instead of truncating the file again.
static CHARDEV_FILES: Mutex<Vec<(String, PathBuf, std::fs::File)>> = Mutex::new(Vec::new());

/// The file of chardev `id`: truncated when first opened, written through (no buffer) as
/// QEMU's file chardev.
fn open_chardev_file(id: &str, path: &Path) -> Result<std::fs::File, VirtError> {
    let fail = |source| VirtError::Chardev {
        id: id.to_string(),
        path: path.display().to_string(),
        source,
    };
    let mut open = CHARDEV_FILES.lock();
    if let Some((_, _, f)) = open.iter().find(|(i, p, _)| i == id && p == path) {
        return f.try_clone().map_err(fail);
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(fail)?;
    let w = f.try_clone().map_err(fail)?;
    open.push((id.to_string(), path.to_path_buf(), f));
    Ok(w)
}

fn is_stdio(s: &SerialOpt) -> bool {
    matches!(s, SerialOpt::MonStdio | SerialOpt::Stdio)
}

/// Pause the host for up to `ms` milliseconds, or until console input arrives.
fn idle_wait(input: &ConsoleInput, ms: i32) {
    if input.at_eof() {
        std::thread::sleep(std::time::Duration::from_millis(ms.max(0) as u64));
    } else {
        input.wait(ms);
    }
}

/// The state OpenSBI leaves a hart in before it jumps to the kernel (sbi_hart.c, sbi_hsm.c):
/// S-level traps and interrupts delegated, counters visible to S, Sstc enabled (menvcfg.STCE;
/// emu advertises Sstc), and PMP entry 0 granting S/U all of memory (emu's PMP, like the
/// hardware's, denies S/U accesses no entry matches).
fn setup_like_opensbi(cpu: &mut RiscvCpu) {
    cpu.csr.medeleg = MEDELEG_BUILTIN;
    cpu.csr.mideleg = MIDELEG_BUILTIN;
    cpu.csr.mcounteren = 0b111;
    // OpenSBI lets U-mode read cycle, time and instret too (sbi_hart.c mstatus_init); the
    // vDSO reads `time` directly.
    cpu.csr.scounteren = 0b111;
    cpu.csr.menvcfg |= MENVCFG_STCE;
    cpu.csr.stimecmp = u64::MAX;
    // pmpaddr0 all ones with NAPOT: the whole address space (§3.7.1).
    let _ = cpu.csr_access(CSR_PMPADDR0, CSR_OP_RW, true, false, u64::MAX >> 10, 0);
    let _ = cpu.csr_access(CSR_PMPCFG0, CSR_OP_RW, true, false, PMP_RWX_NAPOT, 0);
}

/// Start `cpu` in the given state (pc, privilege, a0-a2; MMU off, S interrupts off).
fn enter(cpu: &mut RiscvCpu, e: &EntryRegs) {
    cpu.common.pc = e.pc;
    cpu.x = [0; 32];
    cpu.x[A0] = e.a0;
    cpu.x[A1] = e.a1;
    cpu.x[A2] = e.a2;
    cpu.csr.satp = 0;
    cpu.csr.mstatus &= !(MSTATUS_MPP | MSTATUS_SPP | 0b1010);
    cpu.privilege = match e.mode {
        EntryMode::Machine => 3,
        EntryMode::Supervisor => 1,
    };
    cpu.tlb_flush_all();
}

/// Write the generated device tree of `config` to `path` (`-machine dumpdtb=FILE`).
pub fn dump_dtb(config: &VirtConfig, path: &Path) -> Result<(), VirtError> {
    let mut desc = platform_desc(config.opts.smp.max(1), config.ram_size);
    desc.chosen.bootargs = config.opts.append.clone();
    desc.chosen.rng_seed = Some(RNG_SEED);
    let blob = build_fdt(&desc).map_err(|e| VirtError::Fdt(e.to_string()))?;
    std::fs::write(path, blob).map_err(|source| VirtError::DumpDtb {
        path: path.display().to_string(),
        source,
    })
}

/// The board as the built-in SBI sees it during one call.
struct SbiCtx<'a> {
    harts: &'a mut [Hart],
    console: &'a mut ConsoleOutput,
    ram: &'a GuestRam,
    exit: &'a mut Option<VirtExit>,
    /// The calling hart must not get return values (stopped, or resumed elsewhere).
    no_return: bool,
}

impl SbiCtx<'_> {
    fn hart(&mut self, hart: usize) -> Option<&mut Hart> {
        self.harts.get_mut(hart)
    }
}

impl SbiHost for SbiCtx<'_> {
    fn hart_count(&self) -> usize {
        self.harts.len()
    }
    fn set_timer(&mut self, hart: usize, stime: u64) {
        if let Some(h) = self.hart(hart) {
            // menvcfg.STCE is set: stimecmp drives mip.STIP (Sstc), as OpenSBI does on harts
            // with Sstc.
            h.cpu.csr.stimecmp = stime;
            h.cpu.csr.mip &= !MIP_STIP;
        }
    }
    fn send_ipi(&mut self, hart: usize) {
        if let Some(h) = self.hart(hart) {
            h.cpu.csr.mip |= MIP_SSIP;
        }
    }
    fn clear_ipi(&mut self, hart: usize) {
        if let Some(h) = self.hart(hart) {
            h.cpu.csr.mip &= !MIP_SSIP;
        }
    }
    fn remote_fence_i(&mut self, _hart: usize) {
        // Translated code is shared by all harts and invalidated by stores (the code map):
        // nothing is stale after another hart's fence.i.
    }
    fn remote_sfence_vma(&mut self, hart: usize, _start: u64, _size: u64, _asid: Option<u64>) {
        if let Some(h) = self.hart(hart) {
            h.cpu.tlb_flush_all();
        }
    }
    fn hart_start(&mut self, hart: usize, start_addr: u64, opaque: u64) -> Result<(), SbiError> {
        let now = self.harts.iter().map(|h| h.now_ns()).max().unwrap_or(0);
        let h = self.hart(hart).ok_or(SbiError::InvalidParam)?;
        if h.state == HartState::Started {
            return Err(SbiError::AlreadyAvailable);
        }
        enter(
            &mut h.cpu,
            &EntryRegs {
                pc: start_addr,
                mode: EntryMode::Supervisor,
                a0: hart as u64,
                a1: opaque,
                a2: 0,
            },
        );
        h.state = HartState::Started;
        h.wfi = false;
        if h.now_ns() < now {
            h.skip_to(now);
        }
        Ok(())
    }
    fn hart_stop(&mut self, hart: usize) -> Result<(), SbiError> {
        let h = self.hart(hart).ok_or(SbiError::InvalidParam)?;
        h.state = HartState::Stopped;
        self.no_return = true;
        Ok(())
    }
    fn hart_status(&self, hart: usize) -> sbi::HartState {
        match self.harts.get(hart).map(|h| h.state) {
            Some(HartState::Started) => sbi::HartState::Started,
            _ => sbi::HartState::Stopped,
        }
    }
    fn hart_suspend(&mut self, hart: usize, suspend: HartSuspend) -> Result<(), SbiError> {
        let h = self.hart(hart).ok_or(SbiError::InvalidParam)?;
        h.wfi = true;
        if let HartSuspend::NonRetentive {
            resume_addr,
            opaque,
        } = suspend
        {
            enter(
                &mut h.cpu,
                &EntryRegs {
                    pc: resume_addr,
                    mode: EntryMode::Supervisor,
                    a0: hart as u64,
                    a1: opaque,
                    a2: 0,
                },
            );
            self.no_return = true;
        }
        Ok(())
    }
    fn system_reset(&mut self, reset_type: ResetType, reason: ResetReason) {
        *self.exit = Some(match reset_type {
            ResetType::Shutdown => VirtExit::PowerOff(match reason {
                ResetReason::NoReason => 0,
                ResetReason::SystemFailure => 1,
            }),
            ResetType::ColdReboot | ResetType::WarmReboot => VirtExit::Reset,
        });
        self.no_return = true;
    }
    fn console_write(&mut self, bytes: &[u8]) {
        let _ = self.console.write_all(bytes);
    }
    fn console_read(&mut self, _buf: &mut [u8]) -> usize {
        // Console input goes to UART0; the SBI console only writes.
        0
    }
    fn read_phys(&self, addr: u64, buf: &mut [u8]) -> bool {
        self.ram.read(addr, buf)
    }
    fn write_phys(&mut self, addr: u64, buf: &[u8]) -> bool {
        self.ram.write(addr, buf)
    }
    fn read_virt_u64(&mut self, _hart: usize, _vaddr: u64) -> Option<u64> {
        // Only the legacy extensions pass pointers; Linux 6.x does not use them.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emu_devices::virtio::GuestMemory;

    const RAM_BASE: u64 = 0x8000_0000;
    const DEV_BASE: u64 = 0x1000_0000;
    /// A routine in the page of the loop calling it (so the call can be chained in generated
    /// code): `addi x7, x0, N; ret`.
    const TARGET: u64 = RAM_BASE + 0x200;

    fn i_type(opcode: u32, funct3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
        ((imm as u32) & 0xfff) << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode
    }
    fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
        i_type(0x13, 0, rd, rs1, imm)
    }
    fn jal(rd: u32, off: i32) -> u32 {
        let o = off as u32;
        (o >> 20 & 1) << 31
            | (o >> 1 & 0x3ff) << 21
            | (o >> 11 & 1) << 20
            | (o >> 12 & 0xff) << 12
            | rd << 7
            | 0x6f
    }
    fn bne(rs1: u32, rs2: u32, off: i32) -> u32 {
        let o = off as u32;
        (o >> 12 & 1) << 31
            | (o >> 5 & 0x3f) << 25
            | rs2 << 20
            | rs1 << 15
            | 1 << 12
            | (o >> 1 & 0xf) << 8
            | (o >> 11 & 1) << 7
            | 0x63
    }

    /// A device that, when its register is written with 1, writes `addi x7, x0, 1` over the
    /// first instruction of [`TARGET`] by DMA, as a virtio device completes a request
    /// synchronously inside the QueueNotify store. Other values do nothing, so the calls
    /// before have linked the caller's block to the routine's in generated code.
    struct Patcher(GuestMemory);
    impl BusDevice for Patcher {
        fn read(&mut self, _offset: u64, data: &mut [u8]) {
            data.fill(0);
        }
        fn write(&mut self, _offset: u64, data: &[u8]) {
            if data.first() == Some(&1) {
                self.0.write(TARGET, &addi(7, 0, 1).to_le_bytes());
            }
        }
    }

    /// A DMA write into a page of translated code that the hart runs right after the device
    /// store which caused it: the hart must run the new code, on every engine, also when the
    /// block issuing the store is chained to the patched one in generated code (the store
    /// makes the hart leave it, and the engine drops the page's blocks before the next lookup).
    #[test]
    fn dma_into_translated_code_is_seen_by_the_hart() {
        for kind in [EngineKind::Interp, EngineKind::Jit, EngineKind::Tiered] {
            let code_map = Arc::new(CodeMap::new());
            let ram = Arc::new(GuestRam::new(RAM_BASE, 0x10_0000).expect("test RAM"));
            let mut bus = Bus::new();
            bus.add_ram(ram.clone());
            let mem = GuestMemory::new(vec![ram.clone()], Some(dma_write_hook(code_map.clone())));
            bus.add_device(DEV_BASE, 0x1000, Arc::new(Mutex::new(Patcher(mem))))
                .expect("device window");
            let words = [
                0x1000_02b7,        // lui x5, 0x10000 (the device)
                addi(6, 0, 3),      // x6 = 3
                0x0062_a023,        // loop: sw x6, 0(x5): at x6 = 1 the device patches TARGET
                jal(1, 0x200 - 12), // call TARGET: x7 = 0, or 1 once patched
                0x0074_0433,        // add x8, x8, x7
                addi(6, 6, -1),     // x6 -= 1
                bne(6, 0, -16),     // back to loop while x6 != 0
                0x0000_006f,        // j .
            ];
            let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            assert!(ram.write(RAM_BASE, &code));
            let routine = [addi(7, 0, 0), 0x0000_8067]; // addi x7, x0, 0; ret
            let code: Vec<u8> = routine.iter().flat_map(|w| w.to_le_bytes()).collect();
            assert!(ram.write(TARGET, &code));
            let end = RAM_BASE + 4 * (words.len() as u64 - 1);

            let mut cpu = RiscvCpu::new(
                0,
                Arc::new(bus),
                code_map.clone(),
                Arc::new(VirtualTime::new()),
            );
            cpu.common.pc = RAM_BASE;
            let mut engine = Engine::new(kind, code_map).expect("engine");
            engine.set_tier_up_threshold(1);
            for _ in 0..1000 {
                if cpu.common.pc == end {
                    break;
                }
                cpu.common.insn_limit = cpu.common.insn_count + 1000;
                let exit = engine.run(&mut *cpu);
                assert!(
                    matches!(exit, RunExit::Budget | RunExit::Yield),
                    "{kind:?}: {exit:?}"
                );
            }
            assert_eq!(cpu.common.pc, end, "{kind:?}");
            assert_eq!(
                cpu.x[8], 1,
                "{kind:?}: the last call ran the code just written"
            );
        }
    }
}
