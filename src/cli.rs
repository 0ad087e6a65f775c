//! emu's command line. Hand-rolled rather than clap because it accepts both QEMU's single-dash
//! style (`emu --arch riscv64 -bios none -kernel prog.elf -m 128M`) and Spike's
//! (`emu --arch riscv64 --isa=rv64gc prog.elf`, so `RISCV_SIM="emu --arch riscv64"` works).

use std::path::PathBuf;
use thiserror::Error;

/// Default guest RAM (QEMU's default for `spike` is 128 MiB too).
pub const DEFAULT_RAM_SIZE: u64 = 128 << 20;
/// Default guest RAM of `-M virt`: QEMU's 128 MiB is too little for Debian's kernel and
/// initramfs to unpack comfortably; 512 MiB costs nothing until touched (lazily committed).
pub const DEFAULT_VIRT_RAM_SIZE: u64 = 512 << 20;
/// Largest guest RAM accepted by `-m`.
pub const MAX_RAM_SIZE: u64 = 16 << 30;

pub const USAGE: &str = "\
usage: emu --arch riscv64 [options] -bios none -kernel PROGRAM.elf
       emu --arch riscv64 [options] PROGRAM.elf
       emu --arch riscv64 -M virt [options] -kernel Image [-initrd FILE] [-append CMDLINE]

Runs a bare-metal RISC-V 64 ELF program on a spike-like board (RAM at 0x80000000, CLINT at
0x2000000, HTIF through the program's tohost/fromhost symbols). emu's exit status is the
program's HTIF exit code. With -M virt, boots a Linux kernel (Image) on QEMU's riscv virt board;
emu's exit status is the guest's poweroff status.

options:
  QEMU-compatible options (qemu-system-riscv64 spelling) and Spike's are both accepted.

  --arch ARCH            guest architecture: riscv64 (the default; aarch64 and x86_64 are not
                         built yet)
  -cpu rv64|max[,EXT=on|off]  the hart (one model: RV64GC; -cpu help lists the properties)
  -accel tcg             the only accelerator (kvm and hvf are refused for riscv64 guests)
  -icount [shift=]N|auto accepted, no effect: emu's guest time already counts instructions
                         while a hart runs (README: idle time)
  -global DRIVER.PROP=V  accepted and ignored (emu's drivers have no global properties)
  -nodefaults            accepted (no default devices beyond the board's UART0)
  -no-shutdown           accepted; a guest shutdown still ends emu (there is no monitor)
  -chardev stdio|null|file,id=ID[,path=P][,mux=on]
                         a host end for -serial chardev:ID or -device virtconsole,chardev=ID
                         (one chardev on two of them, or stdio on two, needs mux=on)
  --isa ISA              Spike-style ISA string; must be RV64 (e.g. rv64gc)
  -kernel FILE           the ELF program to run (or give it as the last argument)
  -bios none             no firmware: the program starts in M-mode at its entry point
  -m SIZE                guest RAM size, with an optional K, M or G suffix (default MiB; 128M)
  --engine KIND          interp, jit or tiered (default tiered)
  --strict               an unimplemented instruction is a host error, not an illegal-instruction trap
  --max-insns N          stop with exit status 1 after N guest instructions (trap entries count)
  --stats                print engine statistics to stderr at exit
  --perf-map             write /tmp/perf-PID.map naming emu's generated code for Linux perf
  --trace                print every block run to stderr: its PC, instructions retired before
                         it, and why the engine stopped (slow: one block per engine call)
  --log LEVEL            off, error, warn (default: emulator gaps, device misuse), info, debug, trace
  --signature FILE       at exit, write memory begin_signature..end_signature to FILE as hex
                         lines, highest byte first (Spike's +signature=FILE)
  --signature-granularity N  bytes per signature line (default 4)
  -M spike|virt[,dumpdtb=FILE][,accel=tcg]  (-M help lists the boards)
                         the board: spike (default; bare-metal ELF + HTIF) or QEMU's riscv virt
                         (PLIC, NS16550A UART0, virtio-mmio, goldfish RTC, sifive_test); dumpdtb
                         writes the generated device tree to FILE and exits
  -bios default|none|FILE
                         virt: emu's built-in SBI (default: the kernel starts in S-mode), no
                         firmware (an ELF kernel starts in M-mode), or M-mode firmware such as
                         OpenSBI's fw_dynamic.bin loaded at 0x80000000
  -initrd FILE           virt: the initramfs
  -append CMDLINE        virt: the kernel command line
  -dtb FILE              virt: use this device tree instead of the generated one
  -smp N[,cpus=N,sockets=S,cores=C,threads=T,maxcpus=N]
                         virt: N harts (1..8), interleaved deterministically
  -drive file=F[,format=raw][,if=virtio|none][,id=ID][,readonly=on]
                         virt: a raw disk image on virtio-blk (locked: one emu at a time)
  -device virtio-blk-device,drive=ID | virtio-rng-device | virtio-net-device,netdev=ID[,mac=M]
        | virtconsole[,chardev=ID] (also virtio-serial-device, virtio-console-device)
                         (-device help lists them); virtconsole's output goes to the chardev
                         and its input comes from it (stdio), else its output joins UART0's
  -netdev socket,id=ID,listen=[HOST]:PORT | socket,id=ID,connect=[HOST]:PORT
        | stream,id=ID,server=on|off,addr.host=H,addr.port=P | tap,id=ID,ifname=NAME
  -serial mon:stdio|stdio|file:PATH|null|chardev:ID
                         where UART0 goes (default mon:stdio: the terminal in raw mode; Ctrl-A x
                         quits, Ctrl-A h lists the keys)
  -nographic             same as -serial mon:stdio
  -no-reboot             a guest reboot ends emu instead of restarting the machine
  -s                     GDB stub on tcp::1234 (same as -gdb tcp::1234)
  -S                     wait for GDB before running the first instruction
  -gdb tcp:[HOST]:PORT   GDB stub on this port (registers, FP and CSRs, breakpoints,
                         watchpoints, single-step; under every --engine)
  -d ITEM,...            QEMU-style logs: in_asm, op, int, exec, cpu, guest_errors, unimp
                         (-d help lists them)
  -D FILE                write -d logs to FILE instead of stderr
  -display none, -monitor none  accepted for QEMU compatibility
  -h, --help             print this help
  -V, --version          print the version";

/// Which executor runs guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineChoice {
    /// IR interpreter only (tier 0).
    Interp,
    /// Cranelift-compiled code for every block (tier 1).
    Jit,
    /// Interpreter first, hot blocks compiled.
    Tiered,
}

/// A validated command line for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub kernel: PathBuf,
    pub ram_size: u64,
    pub engine: EngineChoice,
    pub strict: bool,
    pub max_insns: Option<u64>,
    pub stats: bool,
    /// Write `/tmp/perf-PID.map` for the generated code (`--perf-map`, QEMU's `-perfmap`).
    pub perf_map: bool,
    /// Where to write the memory between `begin_signature` and `end_signature` at exit
    /// (architecture tests; Spike's `+signature=FILE`).
    pub signature: Option<PathBuf>,
    /// Bytes per line of the signature file (Spike's `+signature-granularity`).
    pub signature_granularity: u32,
    /// Messages from emu's modules shown on stderr (`--log`, default warn).
    pub log: log::LevelFilter,
    /// Print each block the engine runs (PC, retired instructions, why it stopped).
    pub trace: bool,
    /// Which board (`-M`).
    pub machine: MachineKind,
    /// Options of the `virt` board (ignored by `spike`, which refuses the ones it cannot use).
    pub virt: VirtOptions,
    /// GDB stub and `-d` tracing (src/gdb, src/trace.rs).
    pub debug: crate::gdb::DebugOptions,
}

/// The board (`-M spike` or `-M virt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineKind {
    /// Bare-metal ELF programs with HTIF (the default, as in round 1).
    Spike,
    /// QEMU's riscv `virt` board: PLIC, UART0, virtio-mmio, RTC, test finisher.
    Virt,
}

/// M-mode firmware for `virt` (`-bios`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bios {
    /// emu's built-in SBI: harts start in S-mode at the kernel (`-bios default`, or no `-bios`).
    BuiltinSbi,
    /// No firmware: the kernel (an ELF) starts in M-mode at its entry (`-bios none`).
    None,
    /// A firmware image (OpenSBI `fw_dynamic.bin`) loaded at the start of RAM.
    File(PathBuf),
}

/// `-drive file=PATH[,format=raw][,if=virtio|none][,id=ID][,readonly=on]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveOpt {
    pub id: Option<String>,
    pub file: PathBuf,
    /// `if=virtio` puts it on a virtio-blk device by itself; `if=none` waits for a `-device`.
    pub if_virtio: bool,
    pub readonly: bool,
}

/// `-netdev socket,id=ID,listen=[HOST]:PORT|connect=[HOST]:PORT` (QEMU's length-prefixed
/// stream format), `-netdev stream,id=ID,server=on|off,addr.host=H,addr.port=P`, or
/// `-netdev tap,id=ID,ifname=NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetdevOpt {
    pub id: String,
    pub kind: NetdevKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetdevKind {
    /// Listen on `addr` ("host:port") and take one connection.
    Listen(String),
    /// Connect to `addr` ("host:port").
    Connect(String),
    /// A host tap interface.
    Tap(String),
}

/// `-device NAME[,drive=ID][,netdev=ID][,mac=..]`: the virtio-mmio devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceOpt {
    Blk {
        drive: String,
    },
    Rng,
    Net {
        netdev: String,
        mac: Option<[u8; 6]>,
    },
    /// A virtio console; `chardev` is its host end (`chardev=ID`), else its output joins
    /// UART0's.
    Console {
        chardev: Option<ChardevOpt>,
    },
}

/// A `-chardev` as a device uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChardevOpt {
    pub id: String,
    /// The backend; `MonStdio` is `stdio` with `mux=on` (Ctrl-A keys).
    pub backend: SerialOpt,
    /// `mux=on`: the chardev may be shared by several devices.
    pub mux: bool,
}

/// Where UART0 goes (`-serial`, `-nographic`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerialOpt {
    /// The terminal, with emu's Ctrl-A keys (`mon:stdio`, `-nographic`): raw mode when stdin is
    /// a terminal.
    MonStdio,
    /// stdin/stdout without the Ctrl-A keys (`stdio`).
    Stdio,
    /// Output appended to a file, no input (`file:PATH`).
    File(PathBuf),
    /// Nowhere (`null`).
    Null,
}

/// What the `virt` board takes from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtOptions {
    pub bios: Bios,
    pub initrd: Option<PathBuf>,
    /// The kernel command line (`-append`).
    pub append: Option<String>,
    /// A device tree to use instead of the generated one (`-dtb`).
    pub dtb: Option<PathBuf>,
    /// Write the generated device tree here and exit (`-machine dumpdtb=FILE`).
    pub dumpdtb: Option<PathBuf>,
    /// Number of harts (`-smp N`).
    pub smp: u32,
    pub drives: Vec<DriveOpt>,
    pub netdevs: Vec<NetdevOpt>,
    pub devices: Vec<DeviceOpt>,
    pub serial: SerialOpt,
    /// The `-chardev` id UART0 uses (`-serial chardev:ID`), if any.
    pub serial_chardev: Option<String>,
    /// A guest reboot ends emu (status 0) instead of restarting the machine.
    pub no_reboot: bool,
    /// Whether RAM size was given (`-m`): `virt` has a larger default than `spike`.
    pub ram_given: bool,
}

impl Default for VirtOptions {
    fn default() -> Self {
        VirtOptions {
            bios: Bios::BuiltinSbi,
            initrd: None,
            append: None,
            dtb: None,
            dumpdtb: None,
            smp: 1,
            drives: Vec::new(),
            netdevs: Vec::new(),
            devices: Vec::new(),
            serial: SerialOpt::MonStdio,
            serial_chardev: None,
            no_reboot: false,
            ram_given: false,
        }
    }
}

/// Most harts `-smp` accepts.
pub const MAX_SMP: u32 = 8;

/// Split a QEMU option list `a=b,c,d=e` into (key, value) pairs; a bare word has value "".
fn opt_list(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

fn on_off(option: &str, value: &str, v: &str) -> Result<bool, CliError> {
    match v {
        "on" | "yes" | "true" | "" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(bad(option, value, "expected on or off")),
    }
}

fn parse_drive(option: &str, value: &str) -> Result<DriveOpt, CliError> {
    let mut d = DriveOpt {
        id: None,
        file: PathBuf::new(),
        if_virtio: true,
        readonly: false,
    };
    let mut file = None;
    for (k, v) in opt_list(value) {
        match k.as_str() {
            "file" => file = Some(PathBuf::from(v)),
            "id" => d.id = Some(v),
            "format" if v == "raw" => {}
            "format" => return Err(bad(option, value, "only format=raw is supported")),
            "if" if v == "virtio" => d.if_virtio = true,
            "if" if v == "none" => d.if_virtio = false,
            "if" => {
                return Err(bad(
                    option,
                    value,
                    "only if=virtio and if=none are supported",
                ))
            }
            "readonly" => d.readonly = on_off(option, value, &v)?,
            "cache" | "media" | "discard" | "aio" => {}
            _ => return Err(bad(option, value, format!("unknown drive property '{k}'"))),
        }
    }
    d.file = file.ok_or_else(|| bad(option, value, "needs file=PATH"))?;
    Ok(d)
}

fn parse_netdev(option: &str, value: &str) -> Result<NetdevOpt, CliError> {
    let mut parts = opt_list(value).into_iter();
    let (backend, _) = parts
        .next()
        .ok_or_else(|| bad(option, value, "expected socket, stream or tap"))?;
    let mut id = None;
    let mut listen = None;
    let mut connect = None;
    let mut server = false;
    let mut host = String::from("127.0.0.1");
    let mut port = None;
    let mut ifname = None;
    for (k, v) in parts {
        match k.as_str() {
            "id" => id = Some(v),
            "listen" => listen = Some(v),
            "connect" => connect = Some(v),
            "server" => server = on_off(option, value, &v)?,
            "addr.host" => host = v,
            "addr.port" => port = Some(v),
            "addr.type" if v == "inet" => {}
            "ifname" => ifname = Some(v),
            "script" | "downscript" | "vhost" => {}
            _ => return Err(bad(option, value, format!("unknown netdev property '{k}'"))),
        }
    }
    let id = id.ok_or_else(|| bad(option, value, "needs id=NAME"))?;
    // QEMU's `listen=:PORT` means every address; keep the guests on the loopback.
    let addr = |a: String| match a.strip_prefix(':') {
        Some(p) => format!("127.0.0.1:{p}"),
        None => a,
    };
    let kind = match backend.as_str() {
        "socket" => match (listen, connect) {
            (Some(l), None) => NetdevKind::Listen(addr(l)),
            (None, Some(c)) => NetdevKind::Connect(addr(c)),
            _ => {
                return Err(bad(
                    option,
                    value,
                    "socket needs exactly one of listen=[HOST]:PORT or connect=[HOST]:PORT",
                ))
            }
        },
        "stream" => {
            let port = port.ok_or_else(|| bad(option, value, "stream needs addr.port=PORT"))?;
            let a = format!("{host}:{port}");
            if server {
                NetdevKind::Listen(a)
            } else {
                NetdevKind::Connect(a)
            }
        }
        "tap" => {
            NetdevKind::Tap(ifname.ok_or_else(|| bad(option, value, "tap needs ifname=NAME"))?)
        }
        _ => return Err(bad(option, value, "expected socket, stream or tap")),
    };
    Ok(NetdevOpt { id, kind })
}

fn parse_mac(option: &str, value: &str, mac: &str) -> Result<[u8; 6], CliError> {
    let mut out = [0u8; 6];
    let parts: Vec<&str> = mac.split(':').collect();
    if parts.len() != 6 {
        return Err(bad(
            option,
            value,
            "mac must be six hex bytes, e.g. 52:54:00:12:34:56",
        ));
    }
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).map_err(|_| {
            bad(
                option,
                value,
                "mac must be six hex bytes, e.g. 52:54:00:12:34:56",
            )
        })?;
    }
    Ok(out)
}

fn parse_device(option: &str, value: &str) -> Result<DeviceOpt, CliError> {
    let mut parts = opt_list(value).into_iter();
    let (name, _) = parts
        .next()
        .ok_or_else(|| bad(option, value, "expected a device name"))?;
    let props: Vec<(String, String)> = parts.collect();
    let get = |key: &str| props.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    for (k, _) in &props {
        let console = [
            "virtio-serial-device",
            "virtio-console-device",
            "virtconsole",
        ]
        .contains(&name.as_str());
        let known = ["drive", "netdev", "mac", "id", "bus"].contains(&k.as_str())
            || (console && k == "chardev");
        if !known {
            return Err(bad(option, value, format!("unknown device property '{k}'")));
        }
    }
    match name.as_str() {
        "virtio-blk-device" | "virtio-blk" => Ok(DeviceOpt::Blk {
            drive: get("drive").ok_or_else(|| bad(option, value, "needs drive=ID"))?,
        }),
        "virtio-rng-device" | "virtio-rng" => Ok(DeviceOpt::Rng),
        "virtio-net-device" | "virtio-net" => Ok(DeviceOpt::Net {
            netdev: get("netdev").ok_or_else(|| bad(option, value, "needs netdev=ID"))?,
            mac: get("mac")
                .map(|m| parse_mac(option, value, &m))
                .transpose()?,
        }),
        // The chardev is resolved once every -chardev is known (see `resolve_consoles`).
        "virtio-serial-device" | "virtio-console-device" | "virtconsole" => {
            Ok(DeviceOpt::Console { chardev: None })
        }
        _ => Err(bad(
            option,
            value,
            "expected virtio-blk-device, virtio-rng-device, virtio-net-device or virtio-serial-device",
        )),
    }
}

fn parse_serial(option: &str, value: &str) -> Result<SerialOpt, CliError> {
    match value {
        "mon:stdio" => Ok(SerialOpt::MonStdio),
        "stdio" => Ok(SerialOpt::Stdio),
        "null" | "none" => Ok(SerialOpt::Null),
        v => match v.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Ok(SerialOpt::File(PathBuf::from(p))),
            _ => Err(bad(
                option,
                value,
                "expected mon:stdio, stdio, null or file:PATH",
            )),
        },
    }
}

/// `help` or `?`: QEMU's way to ask an option for its choices.
fn is_help(v: &str) -> bool {
    v == "help" || v == "?"
}

/// `-machine help`, in QEMU's format.
pub const MACHINE_HELP: &str = "\
Supported machines are:
spike                RISC-V Spike board (default)
virt                 RISC-V VirtIO board";

/// `-cpu help`: the models emu takes, and the extension properties it knows.
pub const CPU_HELP: &str = "\
Available CPUs:
  max                  RV64GC with everything emu implements (Sv39/48/57, PMP)
  rv64                 the same hart
Properties (NAME,PROP=on|off): i m a f d c zicsr zifencei zicntr zicond zihintpause zba zbb
  zbc zbs sstc s u mmu pmp sv39 sv48 sv57 are always on; any other extension may be given =off (emu lacks it).";

/// `-device help`: the devices `-device` creates on the virt board.
pub const DEVICE_HELP: &str = "\
Available devices (virtio-mmio, -M virt):
name \"virtio-blk-device\", props: drive=ID
name \"virtio-net-device\", props: netdev=ID, mac=52:54:00:12:34:56
name \"virtio-rng-device\"
name \"virtconsole\", props: chardev=ID (aliases virtio-serial-device, virtio-console-device)";

/// Extensions (and QEMU cpu properties) the emu hart always has.
const CPU_EXTENSIONS: &str =
    "i m a f d c g zicsr zifencei zicntr zicond zihintpause zba zbb zbc zbs sstc s u mmu pmp \
     sv39 sv48 sv57";

/// `-cpu rv64|max[,EXT=on|off,...]`: emu has one hart model, so the properties can only agree
/// with it.
fn parse_cpu(option: &str, value: &str) -> Result<(), CliError> {
    let mut parts = opt_list(value).into_iter();
    let (model, _) = parts.next().unwrap_or_default();
    if !["rv64", "max", "any", "rv64gc"].contains(&model.as_str()) {
        return Err(bad(
            option,
            value,
            "expected rv64 or max (-cpu help lists them)",
        ));
    }
    for (k, v) in parts {
        let on = on_off(option, value, &v)?;
        let have = CPU_EXTENSIONS
            .split_whitespace()
            .any(|e| e == k.to_ascii_lowercase());
        match (have, on) {
            (true, true) | (false, false) => {}
            (true, false) => return Err(bad(option, value, format!("emu cannot turn off '{k}'"))),
            (false, true) => {
                return Err(bad(option, value, format!("emu does not implement '{k}'")))
            }
        }
    }
    Ok(())
}

/// `-accel NAME` and `-machine accel=NAME`: emu is its own TCG.
fn check_accel(option: &str, value: &str, accel: &str) -> Result<(), CliError> {
    match accel {
        "tcg" => Ok(()),
        "kvm" | "hvf" | "whpx" | "xen" => Err(bad(
            option,
            value,
            format!("accelerator '{accel}' is not available for a riscv64 guest (use tcg)"),
        )),
        _ => Err(bad(option, value, "expected tcg")),
    }
}

/// `-smp N[,cpus=N][,maxcpus=N][,sockets=S][,cores=C][,threads=T]`.
fn parse_smp(option: &str, value: &str) -> Result<u32, CliError> {
    let err = || bad(option, value, format!("expected 1 to {MAX_SMP} harts"));
    let num = |v: &str| v.parse::<u32>().map_err(|_| err());
    let (mut cpus, mut max, mut topo) = (None, None, 1u32);
    for (i, (k, v)) in opt_list(value).into_iter().enumerate() {
        match k.as_str() {
            n if i == 0 && v.is_empty() => cpus = Some(num(n)?),
            "cpus" => cpus = Some(num(&v)?),
            "maxcpus" => max = Some(num(&v)?),
            "sockets" | "cores" | "threads" | "dies" | "clusters" => {
                topo = topo.checked_mul(num(&v)?).ok_or_else(err)?
            }
            _ => return Err(bad(option, value, format!("unknown smp property '{k}'"))),
        }
    }
    // As QEMU: missing cpus is the topology's product (or maxcpus).
    let n = cpus.or(max).unwrap_or(topo);
    if max.is_some_and(|m| m != n) {
        return Err(bad(
            option,
            value,
            "emu has no hotplug: maxcpus must equal cpus",
        ));
    }
    if topo != 1 && topo != n {
        return Err(bad(option, value, "sockets*cores*threads must equal cpus"));
    }
    Some(n)
        .filter(|n| (1..=MAX_SMP).contains(n))
        .ok_or_else(err)
}

/// `-chardev stdio|null|file,id=ID[,path=PATH][,mux=on][,signal=off]`, for `-serial chardev:ID`
/// and `-device virtconsole,chardev=ID`.
fn parse_chardev(option: &str, value: &str) -> Result<ChardevOpt, CliError> {
    let mut parts = opt_list(value).into_iter();
    let (backend, _) = parts.next().unwrap_or_default();
    let (mut id, mut path, mut mux) = (None, None, false);
    for (k, v) in parts {
        match k.as_str() {
            "id" => id = Some(v),
            "path" => path = Some(PathBuf::from(v)),
            "mux" => mux = on_off(option, value, &v)?,
            "signal" | "logfile" | "logappend" => {}
            _ => {
                return Err(bad(
                    option,
                    value,
                    format!("unknown chardev property '{k}'"),
                ))
            }
        }
    }
    let id = id.ok_or_else(|| bad(option, value, "needs id=NAME"))?;
    let backend = match backend.as_str() {
        "stdio" if mux => SerialOpt::MonStdio,
        "stdio" => SerialOpt::Stdio,
        "null" => SerialOpt::Null,
        "file" => SerialOpt::File(path.ok_or_else(|| bad(option, value, "file needs path=PATH"))?),
        _ => return Err(bad(option, value, "expected stdio, null or file")),
    };
    Ok(ChardevOpt { id, backend, mux })
}

/// A `-device virtconsole,chardev=ID` waiting for its chardev: the index of the device in
/// `VirtOptions::devices`, the id, and the option's value (for messages).
struct PendingConsole {
    device: usize,
    id: String,
    value: String,
}

/// Give each virtio console its `-chardev` (QEMU creates every chardev before any device, so
/// the order of the options does not matter), and check the sharing rules QEMU applies: a
/// chardev serves one device unless it has `mux=on`, and stdio serves one chardev.
fn resolve_consoles(
    virt: &mut VirtOptions,
    chardevs: &[ChardevOpt],
    pending: Vec<PendingConsole>,
) -> Result<(), CliError> {
    const OPTION: &str = "-device";
    // Who uses each chardev id so far, and which chardev holds stdio (UART0 first).
    let mut users: Vec<String> = virt.serial_chardev.iter().cloned().collect();
    let is_stdio = |s: &SerialOpt| matches!(s, SerialOpt::MonStdio | SerialOpt::Stdio);
    let mut stdio_holder: Option<Option<String>> =
        is_stdio(&virt.serial).then(|| virt.serial_chardev.clone());
    for p in pending {
        let c = chardevs
            .iter()
            .find(|c| c.id == p.id)
            .ok_or_else(|| bad(OPTION, &p.value, format!("no -chardev with id '{}'", p.id)))?;
        if users.contains(&c.id) && !c.mux {
            return Err(bad(
                OPTION,
                &p.value,
                format!(
                    "chardev '{}' is already in use (give it mux=on to share it)",
                    c.id
                ),
            ));
        }
        users.push(c.id.clone());
        if is_stdio(&c.backend) {
            match &stdio_holder {
                Some(Some(holder)) if *holder == c.id => {}
                Some(holder) => {
                    let by = match holder {
                        Some(h) => format!("chardev '{h}'"),
                        None if virt.serial == SerialOpt::MonStdio => {
                            "UART0 (-serial mon:stdio, the default)".to_string()
                        }
                        None => "UART0 (-serial stdio)".to_string(),
                    };
                    return Err(bad(
                        OPTION,
                        &p.value,
                        format!(
                            "stdio is already used by {by}; share it through one chardev \
                             (-chardev stdio,id={id},mux=on -serial chardev:{id}) or give \
                             UART0 -serial null",
                            id = c.id
                        ),
                    ));
                }
                None => stdio_holder = Some(Some(c.id.clone())),
            }
        }
        if let Some(DeviceOpt::Console { chardev }) = virt.devices.get_mut(p.device) {
            *chardev = Some(c.clone());
        }
    }
    Ok(())
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
// One value per process: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    Run(Config),
    Help,
    Version,
    /// `-d help`: list the log items.
    LogHelp,
    /// `-machine help`.
    MachineHelp,
    /// `-cpu help`.
    CpuHelp,
    /// `-device help`.
    DeviceHelp,
}

/// Command-line errors; each names the option at fault.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CliError {
    #[error("unknown option '{0}' (try --help)")]
    UnknownOption(String),
    #[error("option '{0}' needs a value")]
    MissingValue(String),
    #[error("invalid value '{value}' for '{option}': {why}")]
    BadValue {
        option: String,
        value: String,
        why: String,
    },
    #[error(
        "no program given (use -kernel FILE or give the ELF as the last argument; try --help)"
    )]
    NoKernel,
    #[error("more than one program given: '{0}' and '{1}'")]
    TwoKernels(String, String),
}

fn bad(option: &str, value: &str, why: impl Into<String>) -> CliError {
    CliError::BadValue {
        option: option.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

/// Parse a RAM size: a number of MiB, or a number with a K, M or G suffix (QEMU's `-m`).
pub fn parse_size(option: &str, s: &str) -> Result<u64, CliError> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.eq_ignore_ascii_case(&'k') => (&t[..i], 10),
        Some((i, c)) if c.eq_ignore_ascii_case(&'m') => (&t[..i], 20),
        Some((i, c)) if c.eq_ignore_ascii_case(&'g') => (&t[..i], 30),
        Some((i, c)) if c.eq_ignore_ascii_case(&'b') => (&t[..i], 0),
        _ => (t, 20),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| bad(option, s, "expected a size such as 128M, 1G or 256"))?;
    let bytes = n
        .checked_mul(1 << shift)
        .filter(|&b| b <= MAX_RAM_SIZE)
        .ok_or_else(|| bad(option, s, format!("at most {}G", MAX_RAM_SIZE >> 30)))?;
    if bytes == 0 || !bytes.is_multiple_of(4096) {
        return Err(bad(option, s, "must be a non-zero multiple of 4K"));
    }
    Ok(bytes)
}

fn parse_engine(option: &str, s: &str) -> Result<EngineChoice, CliError> {
    match s {
        "interp" => Ok(EngineChoice::Interp),
        "jit" => Ok(EngineChoice::Jit),
        "tiered" => Ok(EngineChoice::Tiered),
        _ => Err(bad(option, s, "expected interp, jit or tiered")),
    }
}

fn set_kernel(k: String, kernel: &mut Option<String>) -> Result<(), CliError> {
    match kernel.take() {
        Some(old) => Err(CliError::TwoKernels(old, k)),
        None => {
            *kernel = Some(k);
            Ok(())
        }
    }
}

/// Parse the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut kernel: Option<String> = None;
    let mut ram_size = DEFAULT_RAM_SIZE;
    let mut engine = EngineChoice::Tiered;
    let mut strict = false;
    let mut max_insns = None;
    let mut stats = false;
    let mut perf_map = false;
    let mut signature = None;
    let mut signature_granularity = 4;
    let mut log = log::LevelFilter::Warn;
    let mut trace = false;
    let mut machine = MachineKind::Spike;
    let mut virt = VirtOptions::default();
    let mut bios_given: Option<String> = None;
    let mut smp_given: Option<String> = None;
    let mut debug = crate::gdb::DebugOptions::default();
    let mut chardevs: Vec<ChardevOpt> = Vec::new();
    let mut pending_consoles: Vec<PendingConsole> = Vec::new();

    while let Some(arg) = args.next() {
        // Spike's plusargs (`+signature=FILE`) are long options here.
        let arg = match arg.strip_prefix('+') {
            Some(rest) if rest.contains('=') => format!("--{rest}"),
            _ => arg,
        };
        if arg == "--" {
            for k in args.by_ref() {
                set_kernel(k, &mut kernel)?;
            }
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            set_kernel(arg, &mut kernel)?;
            continue;
        }
        // `--opt=value` and `-opt=value`; Spike's glued `-m128` too.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None if arg.starts_with("-m") && arg[2..].starts_with(|c: char| c.is_ascii_digit()) => {
                ("-m".to_string(), Some(arg[2..].to_string()))
            }
            None => (arg.clone(), None),
        };
        let value = |args: &mut dyn Iterator<Item = String>| -> Result<String, CliError> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .ok_or_else(|| CliError::MissingValue(name.clone())),
            }
        };
        let takes_no_value = |inline: &Option<String>| match inline {
            Some(_) => Err(CliError::UnknownOption(arg.clone())),
            None => Ok(()),
        };
        match name.as_str() {
            "-h" | "--help" | "-help" => return Ok(Command::Help),
            "-V" | "--version" | "-version" => return Ok(Command::Version),
            "--arch" | "-arch" => {
                let v = value(&mut args)?;
                match v.as_str() {
                    "riscv64" => {}
                    "aarch64" | "x86_64" => {
                        return Err(bad(&name, &v, "this target is not built yet (riscv64 is)"))
                    }
                    _ => return Err(bad(&name, &v, "expected riscv64, aarch64 or x86_64")),
                }
            }
            "-cpu" | "--cpu" => {
                let v = value(&mut args)?;
                if is_help(&v) {
                    return Ok(Command::CpuHelp);
                }
                parse_cpu(&name, &v)?;
            }
            "-accel" | "--accel" => {
                let v = value(&mut args)?;
                let mut parts = opt_list(&v).into_iter();
                let (accel, _) = parts.next().unwrap_or_default();
                check_accel(&name, &v, &accel)?;
                for (k, _) in parts {
                    if !["thread", "tb-size", "one-insn-per-tb", "split-wx"].contains(&k.as_str()) {
                        return Err(bad(&name, &v, format!("unknown accel property '{k}'")));
                    }
                }
            }
            "-enable-kvm" | "--enable-kvm" => {
                takes_no_value(&inline)?;
                check_accel(&name, "kvm", "kvm")?;
            }
            "-global" | "--global" => {
                // QEMU accepts (and ignores) properties of drivers the machine lacks, e.g.
                // `-global kvm-pit.lost_tick_policy=discard`; emu has no such properties at all.
                let v = value(&mut args)?;
                let well_formed = v
                    .split_once('=')
                    .and_then(|(dp, _)| dp.split_once('.'))
                    .is_some_and(|(d, p)| !d.is_empty() && !p.is_empty());
                if !well_formed {
                    return Err(bad(&name, &v, "expected DRIVER.PROPERTY=VALUE"));
                }
            }
            "-icount" | "--icount" => {
                // While a hart runs, emu's guest time is derived from retired instructions
                // already; `-icount` changes nothing (idle time: README).
                let v = value(&mut args)?;
                for (k, val) in opt_list(&v) {
                    let ok = match k.as_str() {
                        "shift" => val == "auto" || val.parse::<u8>().is_ok(),
                        "align" | "sleep" => on_off(&name, &v, &val).is_ok(),
                        "rr" | "rrfile" | "rrsnapshot" => false,
                        n => val.is_empty() && (n == "auto" || n.parse::<u8>().is_ok()),
                    };
                    if !ok {
                        return Err(bad(
                            &name,
                            &v,
                            "expected [shift=]N|auto[,align=on|off][,sleep=on|off]",
                        ));
                    }
                }
            }
            "-nodefaults" | "--nodefaults" | "-no-shutdown" | "--no-shutdown" => {
                // -nodefaults: emu adds no default devices beyond the board's UART0.
                // -no-shutdown: emu has no monitor to inspect a stopped guest, so a guest
                // shutdown still ends emu (documented in README's QEMU table).
                takes_no_value(&inline)?;
            }
            "-chardev" | "--chardev" => {
                let v = value(&mut args)?;
                let c = parse_chardev(&name, &v)?;
                if chardevs.iter().any(|o| o.id == c.id) {
                    return Err(bad(&name, &v, format!("chardev id '{}' used twice", c.id)));
                }
                chardevs.push(c);
            }
            "--isa" | "-isa" => {
                let v = value(&mut args)?;
                if !v.to_ascii_lowercase().starts_with("rv64") {
                    return Err(bad(&name, &v, "only RV64 ISAs are supported (e.g. rv64gc)"));
                }
            }
            "-kernel" | "--kernel" => {
                let v = value(&mut args)?;
                set_kernel(v, &mut kernel)?;
            }
            "-bios" | "--bios" => {
                let v = value(&mut args)?;
                virt.bios = match v.as_str() {
                    "none" => Bios::None,
                    "default" => Bios::BuiltinSbi,
                    _ => Bios::File(PathBuf::from(&v)),
                };
                bios_given = Some(v);
            }
            "-M" | "-machine" | "--machine" => {
                let v = value(&mut args)?;
                if is_help(&v) {
                    return Ok(Command::MachineHelp);
                }
                for (i, (k, val)) in opt_list(&v).into_iter().enumerate() {
                    match (i, k.as_str()) {
                        (0, "spike") if val.is_empty() => machine = MachineKind::Spike,
                        (0, "virt") if val.is_empty() => machine = MachineKind::Virt,
                        (_, "type") if val == "virt" => machine = MachineKind::Virt,
                        (_, "type") if val == "spike" => machine = MachineKind::Spike,
                        (_, "dumpdtb") if !val.is_empty() => {
                            virt.dumpdtb = Some(PathBuf::from(val))
                        }
                        (_, "accel") => check_accel(&name, &v, &val)?,
                        _ => return Err(bad(&name, &v, "expected spike or virt[,dumpdtb=FILE]")),
                    }
                }
            }
            "-nographic" | "--nographic" => {
                takes_no_value(&inline)?;
                virt.serial = SerialOpt::MonStdio;
                virt.serial_chardev = None;
            }
            "-serial" | "--serial" => {
                let v = value(&mut args)?;
                (virt.serial, virt.serial_chardev) = match v.strip_prefix("chardev:") {
                    Some(id) => chardevs
                        .iter()
                        .find(|c| c.id == id)
                        .map(|c| (c.backend.clone(), Some(c.id.clone())))
                        .ok_or_else(|| bad(&name, &v, format!("no -chardev with id '{id}'")))?,
                    None => (parse_serial(&name, &v)?, None),
                };
            }
            "-display" | "-monitor" => {
                let v = value(&mut args)?;
                if v != "none" {
                    return Err(bad(&name, &v, "only 'none' is supported"));
                }
            }
            "-no-reboot" | "--no-reboot" => {
                takes_no_value(&inline)?;
                virt.no_reboot = true;
            }
            "-initrd" | "--initrd" => virt.initrd = Some(PathBuf::from(value(&mut args)?)),
            "-append" | "--append" => virt.append = Some(value(&mut args)?),
            "-dtb" | "--dtb" => virt.dtb = Some(PathBuf::from(value(&mut args)?)),
            "-smp" | "--smp" => {
                let v = value(&mut args)?;
                virt.smp = parse_smp(&name, &v)?;
                smp_given = Some(v);
            }
            "-drive" | "--drive" => {
                let v = value(&mut args)?;
                virt.drives.push(parse_drive(&name, &v)?);
            }
            "-netdev" | "--netdev" => {
                let v = value(&mut args)?;
                let n = parse_netdev(&name, &v)?;
                if virt.netdevs.iter().any(|o| o.id == n.id) {
                    return Err(bad(&name, &v, format!("netdev id '{}' used twice", n.id)));
                }
                virt.netdevs.push(n);
            }
            "-device" | "--device" => {
                let v = value(&mut args)?;
                if is_help(&v) {
                    return Ok(Command::DeviceHelp);
                }
                let dev = parse_device(&name, &v)?;
                if let DeviceOpt::Console { .. } = dev {
                    let id = opt_list(&v)
                        .into_iter()
                        .find_map(|(k, id)| (k == "chardev").then_some(id));
                    if let Some(id) = id {
                        pending_consoles.push(PendingConsole {
                            device: virt.devices.len(),
                            id,
                            value: v.clone(),
                        });
                    }
                }
                virt.devices.push(dev);
            }
            "-m" | "--memory" => {
                let v = value(&mut args)?;
                ram_size = parse_size(&name, &v)?;
                virt.ram_given = true;
            }
            "--engine" | "-engine" => {
                let v = value(&mut args)?;
                engine = parse_engine(&name, &v)?;
            }
            "--strict" => {
                takes_no_value(&inline)?;
                strict = true;
            }
            "--stats" => {
                takes_no_value(&inline)?;
                stats = true;
            }
            "--perf-map" | "-perfmap" => {
                takes_no_value(&inline)?;
                perf_map = true;
            }
            "--trace" => {
                takes_no_value(&inline)?;
                trace = true;
            }
            "-s" | "-S" => {
                takes_no_value(&inline)?;
                debug.flag(&name);
            }
            "-gdb" | "--gdb" | "-d" | "-D" => {
                let v = value(&mut args)?;
                if name == "-d" && v == "help" {
                    return Ok(Command::LogHelp);
                }
                // Checked here, so `-d -kernel x.elf` names `-d`, not a failed kernel load.
                if name == "-d" {
                    crate::trace::TraceItems::parse(&v)
                        .map_err(|e| bad(&name, &v, e.to_string()))?;
                }
                debug.option(&name, v);
            }
            "--signature" => signature = Some(PathBuf::from(value(&mut args)?)),
            "--signature-granularity" => {
                let v = value(&mut args)?;
                signature_granularity = v
                    .parse()
                    .ok()
                    .filter(|g: &u32| g.is_power_of_two() && *g <= 64)
                    .ok_or_else(|| bad(&name, &v, "expected a power of two up to 64"))?;
            }
            "--log" | "-log" => {
                let v = value(&mut args)?;
                log = crate::logger::parse_level(&v).ok_or_else(|| {
                    bad(&name, &v, "expected off, error, warn, info, debug or trace")
                })?;
            }
            "--max-insns" => {
                let v = value(&mut args)?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| bad(&name, &v, "expected a number of instructions"))?;
                max_insns = Some(n);
            }
            _ => return Err(CliError::UnknownOption(arg)),
        }
    }
    if machine == MachineKind::Spike {
        if let Some(b) = bios_given.filter(|b| b != "none") {
            return Err(bad(
                "-bios",
                &b,
                "the spike machine takes only '-bios none' (use -M virt)",
            ));
        }
        if let Some(n) = smp_given.filter(|_| virt.smp != 1) {
            return Err(bad(
                "-smp",
                &n,
                "the spike machine has one hart (use -M virt)",
            ));
        }
        // The virt board's files and devices: spike has nowhere to put them.
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let virt_only = [
            ("-initrd", path(&virt.initrd)),
            ("-append", virt.append.clone()),
            ("-dtb", path(&virt.dtb)),
            (
                "-drive",
                virt.drives.first().map(|d| d.file.display().to_string()),
            ),
            ("-netdev", virt.netdevs.first().map(|n| n.id.clone())),
            (
                "-device",
                virt.devices.first().map(|d| {
                    match d {
                        DeviceOpt::Blk { .. } => "virtio-blk-device",
                        DeviceOpt::Rng => "virtio-rng-device",
                        DeviceOpt::Net { .. } => "virtio-net-device",
                        DeviceOpt::Console { .. } => "virtconsole",
                    }
                    .to_string()
                }),
            ),
        ];
        if let Some((option, Some(value))) = virt_only.into_iter().find(|(_, v)| v.is_some()) {
            return Err(bad(
                option,
                &value,
                "the spike machine has no initrd, command line, device tree or virtio devices \
                 (use -M virt)",
            ));
        }
        virt.bios = Bios::None;
    }
    resolve_consoles(&mut virt, &chardevs, pending_consoles)?;
    if machine == MachineKind::Virt && !virt.ram_given {
        ram_size = DEFAULT_VIRT_RAM_SIZE;
    }
    // With firmware and a device-tree dump, no kernel is needed.
    let kernel = match kernel {
        Some(k) => k,
        None if machine == MachineKind::Virt
            && (virt.dumpdtb.is_some() || matches!(virt.bios, Bios::File(_))) =>
        {
            String::new()
        }
        None => return Err(CliError::NoKernel),
    };
    Ok(Command::Run(Config {
        kernel: PathBuf::from(kernel),
        ram_size,
        engine,
        strict,
        max_insns,
        stats,
        perf_map,
        signature,
        signature_granularity,
        log,
        trace,
        machine,
        virt,
        debug,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse(args.iter().copied()) {
            Ok(Command::Run(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    /// A bad `-d` list is refused while parsing, naming `-d` (it used to surface only after the
    /// kernel failed to load, as `-d -kernel x.elf` swallowed `-kernel`).
    #[test]
    fn bad_log_items_are_refused_at_parse_time() {
        match parse(["-d", "-kernel", "x.elf"].iter().copied()) {
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("'-d'") && msg.contains("-kernel"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(["-d", "in_asm,int", "-kernel", "p.elf"].iter().copied()).is_ok());
    }

    #[test]
    fn qemu_and_spike_styles() {
        let q = run(&["--arch", "riscv64", "-bios", "none", "-kernel", "p.elf"]);
        let s = run(&["--arch", "riscv64", "--isa=rv64gc", "p.elf"]);
        assert_eq!(q, s);
        assert_eq!(q.kernel, PathBuf::from("p.elf"));
        assert_eq!(q.ram_size, DEFAULT_RAM_SIZE);
        assert_eq!(q.engine, EngineChoice::Tiered);
        let c = run(&[
            "--arch=riscv64",
            "-m",
            "64M",
            "--engine",
            "interp",
            "--strict",
            "--max-insns",
            "1000",
            "--stats",
            "--perf-map",
            "-nographic",
            "p.elf",
        ]);
        assert!(c.perf_map);
        assert!(!run(&["p.elf"]).perf_map);
        assert_eq!(c.ram_size, 64 << 20);
        assert_eq!(c.engine, EngineChoice::Interp);
        assert!(c.strict && c.stats);
        assert_eq!(c.max_insns, Some(1000));
        assert_eq!(
            run(&["--arch", "riscv64", "-m256", "p"]).ram_size,
            256 << 20
        );
        assert_eq!(
            run(&["--arch", "riscv64", "--engine=jit", "p"]).engine,
            EngineChoice::Jit
        );
        let c = run(&["+signature=s.txt", "+signature-granularity=8", "p"]);
        assert_eq!(c.signature, Some(PathBuf::from("s.txt")));
        assert_eq!(c.signature_granularity, 8);
        assert_eq!(c.kernel, PathBuf::from("p"));
        assert_eq!(c.log, log::LevelFilter::Warn);
        assert_eq!(run(&["--log", "off", "p"]).log, log::LevelFilter::Off);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("-m", "1G"), Ok(1 << 30));
        assert_eq!(parse_size("-m", "512k"), Ok(512 << 10));
        assert_eq!(parse_size("-m", "16"), Ok(16 << 20));
        for bad in ["", "x", "0", "-1", "1.5G", "100000G", "1000b", "M"] {
            assert!(parse_size("-m", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_option() {
        let e = |a: &[&str]| parse(a.iter().copied()).unwrap_err().to_string();
        assert_eq!(
            e(&["--arch", "riscv64", "--frobnicate", "p"]),
            "unknown option '--frobnicate' (try --help)"
        );
        assert!(e(&["--arch", "riscv64", "-m", "lots", "p"]).contains("'-m'"));
        assert!(e(&["--arch", "riscv64", "--engine", "fast", "p"]).contains("'--engine'"));
        assert!(e(&["--arch", "x86_64", "p"]).contains("'--arch'"));
        assert!(e(&["--arch", "riscv64", "-kernel"]).contains("'-kernel' needs a value"));
        assert!(e(&["--arch", "riscv64"]).starts_with("no program given"));
        assert_eq!(
            run(&["p"]).kernel,
            PathBuf::from("p"),
            "--arch defaults to riscv64"
        );
        assert!(e(&["--arch", "riscv64", "a", "b"]).contains("'a' and 'b'"));
        assert!(e(&["--arch", "riscv64", "--strict=yes", "p"]).contains("--strict=yes"));
        assert_eq!(parse(["--help"]), Ok(Command::Help));
        assert_eq!(parse(["-V"]), Ok(Command::Version));
    }

    #[test]
    fn virt_options() {
        let c = run(&[
            "-M",
            "virt",
            "-smp",
            "2",
            "-kernel",
            "Image",
            "-initrd",
            "initrd.gz",
            "-append",
            "console=ttyS0 quiet",
            "-bios",
            "fw_dynamic.bin",
            "-drive",
            "file=d.img,format=raw,if=none,id=hd0,readonly=on",
            "-device",
            "virtio-blk-device,drive=hd0",
            "-netdev",
            "socket,id=n0,listen=:1234",
            "-netdev",
            "stream,id=n1,server=off,addr.type=inet,addr.host=10.0.0.1,addr.port=99",
            "-netdev",
            "tap,id=n2,ifname=tap0",
            "-device",
            "virtio-net-device,netdev=n0,mac=52:54:00:00:00:0a",
            "-device",
            "virtio-rng-device",
            "-serial",
            "file:/tmp/console.log",
            "-no-reboot",
        ]);
        assert_eq!(c.machine, MachineKind::Virt);
        assert_eq!(c.ram_size, DEFAULT_VIRT_RAM_SIZE);
        let v = &c.virt;
        assert_eq!(v.smp, 2);
        assert_eq!(v.bios, Bios::File(PathBuf::from("fw_dynamic.bin")));
        assert_eq!(v.initrd, Some(PathBuf::from("initrd.gz")));
        assert_eq!(v.append.as_deref(), Some("console=ttyS0 quiet"));
        assert_eq!(
            v.drives,
            vec![DriveOpt {
                id: Some("hd0".into()),
                file: PathBuf::from("d.img"),
                if_virtio: false,
                readonly: true,
            }]
        );
        assert_eq!(
            v.netdevs.iter().map(|n| n.kind.clone()).collect::<Vec<_>>(),
            vec![
                NetdevKind::Listen("127.0.0.1:1234".into()),
                NetdevKind::Connect("10.0.0.1:99".into()),
                NetdevKind::Tap("tap0".into()),
            ]
        );
        assert_eq!(
            v.devices,
            vec![
                DeviceOpt::Blk {
                    drive: "hd0".into()
                },
                DeviceOpt::Net {
                    netdev: "n0".into(),
                    mac: Some([0x52, 0x54, 0, 0, 0, 0x0a])
                },
                DeviceOpt::Rng,
            ]
        );
        assert_eq!(v.serial, SerialOpt::File(PathBuf::from("/tmp/console.log")));
        assert!(v.no_reboot);
        // Built-in SBI by default; -m is honoured; dumpdtb needs no kernel.
        let c = run(&["-M", "virt", "-m", "1G", "-kernel", "Image"]);
        assert_eq!(c.virt.bios, Bios::BuiltinSbi);
        assert_eq!(c.ram_size, 1 << 30);
        let c = run(&["-machine", "virt,dumpdtb=x.dtb"]);
        assert_eq!(c.virt.dumpdtb, Some(PathBuf::from("x.dtb")));
        // The spike board keeps its defaults.
        assert_eq!(run(&["p.elf"]).machine, MachineKind::Spike);
    }

    #[test]
    fn virt_errors_name_the_option() {
        let e = |a: &[&str]| parse(a.iter().copied()).unwrap_err().to_string();
        let k = ["-M", "virt", "-kernel", "I"];
        let with = |extra: &[&str]| {
            let mut v = k.to_vec();
            v.extend_from_slice(extra);
            e(&v)
        };
        assert!(with(&["-smp", "0"]).contains("'-smp'"));
        assert!(with(&["-smp", "99"]).contains("'-smp'"));
        assert!(with(&["-drive", "format=raw"]).contains("file=PATH"));
        assert!(with(&["-drive", "file=x,format=qcow2"]).contains("format=raw"));
        assert!(with(&["-netdev", "socket,id=a"]).contains("listen"));
        assert!(with(&["-netdev", "user,id=a"]).contains("'-netdev'"));
        assert!(with(&["-device", "e1000"]).contains("'-device'"));
        assert!(with(&["-device", "virtio-net-device,netdev=n,mac=zz"]).contains("mac"));
        assert!(with(&["-serial", "pty"]).contains("'-serial'"));
        assert!(e(&["-M", "pc", "-kernel", "I"]).contains("'-M'"));
        assert!(e(&["-bios", "fw.bin", "p.elf"]).contains("spike"));
        assert!(e(&["-smp", "2", "p.elf"]).contains("spike"));
        assert!(with(&[
            "-netdev",
            "socket,id=a,listen=:1",
            "-netdev",
            "socket,id=a,listen=:2"
        ])
        .contains("used twice"));
    }

    #[test]
    fn virtconsole_takes_a_chardev_in_any_order() {
        let c = run(&[
            "-M",
            "virt",
            "-device",
            "virtconsole,chardev=con0",
            "-chardev",
            "file,id=con0,path=/tmp/hvc0.log",
            "-serial",
            "null",
            "-device",
            "virtio-serial-device",
            "k",
        ]);
        assert_eq!(
            c.virt.devices,
            vec![
                DeviceOpt::Console {
                    chardev: Some(ChardevOpt {
                        id: "con0".into(),
                        backend: SerialOpt::File(PathBuf::from("/tmp/hvc0.log")),
                        mux: false,
                    })
                },
                DeviceOpt::Console { chardev: None },
            ]
        );
        // One muxed stdio chardev for UART0 and the console.
        let c = run(&[
            "-M",
            "virt",
            "-chardev",
            "stdio,id=s,mux=on",
            "-serial",
            "chardev:s",
            "-device",
            "virtconsole,chardev=s",
            "k",
        ]);
        assert_eq!(c.virt.serial, SerialOpt::MonStdio);
        assert_eq!(c.virt.serial_chardev.as_deref(), Some("s"));
        assert!(matches!(
            &c.virt.devices[..],
            [DeviceOpt::Console {
                chardev: Some(ChardevOpt { mux: true, .. })
            }]
        ));
        // A stdio console with UART0 elsewhere; -nographic forgets the chardev UART0 had.
        let c = run(&[
            "-M",
            "virt",
            "-chardev",
            "stdio,id=s",
            "-chardev",
            "null,id=n",
            "-serial",
            "chardev:n",
            "-nographic",
            "-serial",
            "file:/tmp/u",
            "-device",
            "virtconsole,chardev=s",
            "k",
        ]);
        assert_eq!(c.virt.serial_chardev, None);
    }

    #[test]
    fn qemu_topology_and_cpu_properties() {
        assert_eq!(parse_smp("-smp", "3"), Ok(3));
        assert_eq!(parse_smp("-smp", "cpus=2,maxcpus=2"), Ok(2));
        assert_eq!(parse_smp("-smp", "sockets=2,cores=2"), Ok(4));
        assert_eq!(parse_smp("-smp", "4,sockets=1,cores=2,threads=2"), Ok(4));
        assert!(parse_smp("-smp", "4,sockets=3").is_err());
        assert!(parse_smp("-smp", "sockets=3,cores=3").is_err());
        assert_eq!(parse_cpu("-cpu", "max,zifencei=on,v=off"), Ok(()));
        assert!(parse_cpu("-cpu", "max,d=off").is_err());
        assert_eq!(
            parse_cpu("-cpu", "rv64,zba=on,zbb=on,zbc=on,zbs=on"),
            Ok(())
        );
        assert!(parse_cpu("-cpu", "rv64,zbb=off").is_err());
        assert!(parse_cpu("-cpu", "max,zvbb=true").is_err());
        assert!(parse_cpu("-cpu", "host").is_err());
        let c = run(&[
            "-M",
            "virt",
            "-smp",
            "cpus=2",
            "-chardev",
            "null,id=n",
            "-serial",
            "chardev:n",
            "k",
        ]);
        assert_eq!((c.virt.smp, c.virt.serial), (2, SerialOpt::Null));
    }
}
