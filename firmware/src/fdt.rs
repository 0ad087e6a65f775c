//! Flattened device tree generation from a plain-data board description (Devicetree
//! Specification v0.4, chapter 5 "Flattened Devicetree (DTB) Format"; RISC-V bindings in Linux's
//! Documentation/devicetree/bindings/riscv/{cpus,extensions}.yaml).
//!
//! The tree matches the one QEMU 7.2 builds for its riscv `virt` board (hw/riscv/virt.c,
//! `create_fdt*`): same node names, compatibles, properties and node order, so that a guest sees
//! the same machine under emu and under QEMU. Differences, on purpose:
//! - the CPU nodes also carry `riscv,isa-base` and `riscv,isa-extensions` (QEMU ≥ 8.2 does too);
//! - nodes for devices emu's board does not have (pmu, fw-cfg, flash, platform-bus, pci) are absent;
//! - `/chosen/rng-seed` comes from the description (a fixed seed), not from the host, so that two
//!   boots see the same tree (DESIGN.md §5);
//! - phandles are numbered in creation order (QEMU's differ; only references matter).
//!
//! The blob is packed: its `totalsize` is what the tree needs, as QEMU 7.2 leaves it
//! (`riscv_load_fdt` calls `fdt_pack`), while the board keeps [`FDT_MAX_SIZE`] bytes of RAM for
//! it, where firmware such as OpenSBI grows it (`fdt_open_into`). A tree padded to that size
//! made Linux compute its CRC over 1 MiB twice (`early_init_dt_verify`, `of_fdt_raw_init`):
//! 14.6 million guest instructions more per boot (1,875,394,502 against 1,860,810,904).

use thiserror::Error;
use vm_fdt::FdtWriter;

/// RAM kept for the device tree, the room it may grow in included (QEMU 7.2 hw/riscv/virt.c:
/// `FDT_MAX_SIZE`).
pub const FDT_MAX_SIZE: usize = 0x10_0000;

/// `mip`/`mie` bit numbers used as interrupt specifiers of `riscv,cpu-intc`
/// (privileged spec §3.1.9, Table "Machine interrupt-pending register").
pub const IRQ_S_SOFT: u32 = 1;
pub const IRQ_M_SOFT: u32 = 3;
pub const IRQ_S_TIMER: u32 = 5;
pub const IRQ_M_TIMER: u32 = 7;
pub const IRQ_S_EXT: u32 = 9;
pub const IRQ_M_EXT: u32 = 11;

/// Errors building a device tree.
#[derive(Debug, Error)]
pub enum FdtError {
    /// The description has something the FDT format cannot hold (a NUL in a string, a name too
    /// long, a blob over 4 GiB).
    #[error("cannot build the device tree: {0}")]
    Writer(#[from] vm_fdt::Error),
    /// The description is inconsistent.
    #[error("cannot build the device tree: {0}")]
    Invalid(String),
}

/// One hart (Linux bindings riscv/cpus.yaml).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HartDesc {
    /// `mhartid`, the `reg` of the cpu node.
    pub hart_id: u32,
    /// Base ISA, e.g. `"rv64i"` (`riscv,isa-base`).
    pub isa_base: String,
    /// Extensions in canonical order (riscv/extensions.yaml), lower case: single-letter ones
    /// first (`"i"`, `"m"`, `"a"`, `"f"`, `"d"`, `"c"`), then multi-letter ones (`"zicsr"`,
    /// `"zifencei"`, `"sstc"`, ...). Both `riscv,isa` and `riscv,isa-extensions` come from this.
    pub extensions: Vec<String>,
    /// `"riscv,sv39"`, `"riscv,sv48"`, `"riscv,sv57"` or `"riscv,none"`.
    pub mmu_type: String,
}

impl HartDesc {
    /// The `riscv,isa` string: `rv64` + single-letter extensions + `_`-joined multi-letter ones,
    /// e.g. `rv64imafdc_zicsr_zifencei`.
    pub fn isa_string(&self) -> String {
        let prefix = self.isa_base.trim_end_matches('i');
        let mut s = prefix.to_string();
        for e in self.extensions.iter().filter(|e| e.len() == 1) {
            s.push_str(e);
        }
        for e in self.extensions.iter().filter(|e| e.len() > 1) {
            s.push('_');
            s.push_str(e);
        }
        s
    }
}

/// The platform-level interrupt controller (RISC-V PLIC specification 1.0.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlicDesc {
    pub base: u64,
    pub size: u64,
    /// Number of interrupt sources (`riscv,ndev`); source 0 is reserved.
    pub ndev: u32,
}

/// A 16550-compatible UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UartDesc {
    pub base: u64,
    pub size: u64,
    /// PLIC source.
    pub irq: u32,
    /// Input clock in Hz (QEMU: 3686400).
    pub clock_frequency: u32,
}

/// A memory-mapped device with one PLIC interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioIrqDesc {
    pub base: u64,
    pub size: u64,
    /// PLIC source.
    pub irq: u32,
}

/// The `/chosen` node (Devicetree spec §3.6; Linux's chosen bindings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChosenDesc {
    /// Kernel command line; no property when `None` (as QEMU without `-append`).
    pub bootargs: Option<String>,
    /// `stdout-path`; no property when `None`.
    pub stdout_path: Option<String>,
    /// Initrd `[start, end)` in guest physical memory.
    pub initrd: Option<(u64, u64)>,
    /// Seed for the kernel's RNG; a fixed value keeps boots deterministic.
    pub rng_seed: Option<[u8; 32]>,
}

/// A plain-data description of a RISC-V board, from which [`build_fdt`] makes the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformDesc {
    pub harts: Vec<HartDesc>,
    /// RAM `(base, size)`.
    pub memory: (u64, u64),
    /// CLINT `(base, size)`.
    pub clint: Option<(u64, u64)>,
    pub plic: Option<PlicDesc>,
    pub uarts: Vec<UartDesc>,
    /// virtio-mmio transports, lowest address first. They are emitted highest address first, as
    /// QEMU 7.2 does, so that the guest probes them in the same order as under QEMU.
    pub virtio_mmio: Vec<MmioIrqDesc>,
    /// SiFive test finisher `(base, size)`, with `/poweroff` (0x5555) and `/reboot` (0x7777).
    pub test_finisher: Option<(u64, u64)>,
    /// Goldfish RTC.
    pub rtc: Option<MmioIrqDesc>,
    pub chosen: ChosenDesc,
    /// `timebase-frequency` of `/cpus`, in Hz (QEMU: 10 MHz).
    pub timebase_frequency: u32,
}

/// QEMU 7.2 `virt` memory map (hw/riscv/virt.c `virt_memmap`, `virt.h` IRQ numbers).
pub mod virt {
    pub const TEST: (u64, u64) = (0x10_0000, 0x1000);
    pub const RTC: (u64, u64) = (0x10_1000, 0x1000);
    pub const CLINT: (u64, u64) = (0x200_0000, 0x1_0000);
    pub const PLIC: (u64, u64) = (0xc00_0000, 0x60_0000);
    pub const UART0: (u64, u64) = (0x1000_0000, 0x100);
    pub const VIRTIO: (u64, u64) = (0x1000_1000, 0x1000);
    pub const DRAM_BASE: u64 = 0x8000_0000;
    pub const VIRTIO_COUNT: u32 = 8;
    pub const UART0_IRQ: u32 = 10;
    pub const RTC_IRQ: u32 = 11;
    /// First virtio-mmio IRQ; transport i has IRQ `VIRTIO_IRQ + i`.
    pub const VIRTIO_IRQ: u32 = 1;
    /// `riscv,ndev` (VIRT_IRQCHIP_NUM_SOURCES).
    pub const PLIC_NDEV: u32 = 96;
    pub const UART_CLOCK: u32 = 3_686_400;
    pub const TIMEBASE_FREQ: u32 = 10_000_000;
}

impl PlatformDesc {
    /// QEMU 7.2's riscv `virt` board with `harts` (each described by `hart`), `ram_size` bytes
    /// of RAM, 8 virtio-mmio transports and `stdout-path` on UART0. `/chosen` is otherwise empty.
    pub fn riscv_virt(harts: Vec<HartDesc>, ram_size: u64) -> Self {
        let virtio_mmio = (0..virt::VIRTIO_COUNT)
            .map(|i| MmioIrqDesc {
                base: virt::VIRTIO.0 + u64::from(i) * virt::VIRTIO.1,
                size: virt::VIRTIO.1,
                irq: virt::VIRTIO_IRQ + i,
            })
            .collect();
        PlatformDesc {
            harts,
            memory: (virt::DRAM_BASE, ram_size),
            clint: Some(virt::CLINT),
            plic: Some(PlicDesc {
                base: virt::PLIC.0,
                size: virt::PLIC.1,
                ndev: virt::PLIC_NDEV,
            }),
            uarts: vec![UartDesc {
                base: virt::UART0.0,
                size: virt::UART0.1,
                irq: virt::UART0_IRQ,
                clock_frequency: virt::UART_CLOCK,
            }],
            virtio_mmio,
            test_finisher: Some(virt::TEST),
            rtc: Some(MmioIrqDesc {
                base: virt::RTC.0,
                size: virt::RTC.1,
                irq: virt::RTC_IRQ,
            }),
            chosen: ChosenDesc {
                stdout_path: Some(format!("/soc/serial@{:x}", virt::UART0.0)),
                ..ChosenDesc::default()
            },
            timebase_frequency: virt::TIMEBASE_FREQ,
        }
    }
}

/// `reg` with #address-cells = #size-cells = 2.
fn reg(fdt: &mut FdtWriter, base: u64, size: u64) -> Result<(), FdtError> {
    Ok(fdt.property_array_u64("reg", &[base, size])?)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Build the device tree blob for `desc`, packed (no free space after its blocks).
pub fn build_fdt(desc: &PlatformDesc) -> Result<Vec<u8>, FdtError> {
    if desc.harts.is_empty() {
        return Err(FdtError::Invalid("no harts".into()));
    }
    let mut next_phandle = 1u32;
    let mut alloc = || {
        let p = next_phandle;
        next_phandle += 1;
        p
    };
    // (cpu phandle, intc phandle) per hart.
    let hart_phandles: Vec<(u32, u32)> = desc.harts.iter().map(|_| (alloc(), alloc())).collect();
    let plic_phandle = alloc();
    let test_phandle = alloc();

    let mut fdt = FdtWriter::new()?;
    fdt.set_boot_cpuid_phys(desc.harts.first().map_or(0, |h| h.hart_id));
    let root = fdt.begin_node("")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "riscv-virtio")?;
    fdt.property_string("model", "riscv-virtio,qemu")?;

    // /chosen
    let chosen = fdt.begin_node("chosen")?;
    if let Some(seed) = &desc.chosen.rng_seed {
        fdt.property("rng-seed", seed)?;
    }
    if let Some((start, end)) = desc.chosen.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    if let Some(args) = &desc.chosen.bootargs {
        fdt.property_string("bootargs", args)?;
    }
    if let Some(path) = &desc.chosen.stdout_path {
        fdt.property_string("stdout-path", path)?;
    }
    fdt.end_node(chosen)?;

    // /poweroff, /reboot: syscon bindings over the test finisher (QEMU virt.c create_fdt_reset).
    if desc.test_finisher.is_some() {
        for (name, compat, value) in [
            ("poweroff", "syscon-poweroff", 0x5555),
            ("reboot", "syscon-reboot", 0x7777),
        ] {
            let n = fdt.begin_node(name)?;
            fdt.property_u32("value", value)?;
            fdt.property_u32("offset", 0)?;
            fdt.property_u32("regmap", test_phandle)?;
            fdt.property_string("compatible", compat)?;
            fdt.end_node(n)?;
        }
    }

    // /memory
    let (mem_base, mem_size) = desc.memory;
    let mem = fdt.begin_node(&format!("memory@{mem_base:x}"))?;
    fdt.property_string("device_type", "memory")?;
    reg(&mut fdt, mem_base, mem_size)?;
    fdt.end_node(mem)?;

    // /cpus
    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    fdt.property_u32("timebase-frequency", desc.timebase_frequency)?;
    for (hart, &(cpu_ph, intc_ph)) in desc.harts.iter().zip(&hart_phandles) {
        let cpu = fdt.begin_node(&format!("cpu@{:x}", hart.hart_id))?;
        fdt.property_phandle(cpu_ph)?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_u32("reg", hart.hart_id)?;
        fdt.property_string("status", "okay")?;
        fdt.property_string("compatible", "riscv")?;
        fdt.property_string("riscv,isa", &hart.isa_string())?;
        fdt.property_string("riscv,isa-base", &hart.isa_base)?;
        fdt.property_string_list("riscv,isa-extensions", hart.extensions.clone())?;
        fdt.property_string("mmu-type", &hart.mmu_type)?;
        let intc = fdt.begin_node("interrupt-controller")?;
        fdt.property_u32("#interrupt-cells", 1)?;
        fdt.property_null("interrupt-controller")?;
        fdt.property_string("compatible", "riscv,cpu-intc")?;
        fdt.property_phandle(intc_ph)?;
        fdt.end_node(intc)?;
        fdt.end_node(cpu)?;
    }
    let map = fdt.begin_node("cpu-map")?;
    let cluster = fdt.begin_node("cluster0")?;
    for (i, &(cpu_ph, _)) in hart_phandles.iter().enumerate() {
        let core = fdt.begin_node(&format!("core{i}"))?;
        fdt.property_u32("cpu", cpu_ph)?;
        fdt.end_node(core)?;
    }
    fdt.end_node(cluster)?;
    fdt.end_node(map)?;
    fdt.end_node(cpus)?;

    // /soc
    let soc = fdt.begin_node("soc")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "simple-bus")?;
    fdt.property_null("ranges")?;

    let irq_props = |fdt: &mut FdtWriter, irq: u32| -> Result<(), FdtError> {
        if desc.plic.is_none() {
            return Err(FdtError::Invalid(format!(
                "a device uses PLIC source {irq} but the board has no PLIC"
            )));
        }
        fdt.property_u32("interrupts", irq)?;
        fdt.property_u32("interrupt-parent", plic_phandle)?;
        Ok(())
    };

    if let Some(rtc) = desc.rtc {
        let n = fdt.begin_node(&format!("rtc@{:x}", rtc.base))?;
        irq_props(&mut fdt, rtc.irq)?;
        reg(&mut fdt, rtc.base, rtc.size)?;
        fdt.property_string("compatible", "google,goldfish-rtc")?;
        fdt.end_node(n)?;
    }
    for uart in &desc.uarts {
        let n = fdt.begin_node(&format!("serial@{:x}", uart.base))?;
        irq_props(&mut fdt, uart.irq)?;
        fdt.property_u32("clock-frequency", uart.clock_frequency)?;
        reg(&mut fdt, uart.base, uart.size)?;
        fdt.property_string("compatible", "ns16550a")?;
        fdt.end_node(n)?;
    }
    if let Some((base, size)) = desc.test_finisher {
        let n = fdt.begin_node(&format!("test@{base:x}"))?;
        fdt.property_phandle(test_phandle)?;
        reg(&mut fdt, base, size)?;
        fdt.property_string_list(
            "compatible",
            strings(&["sifive,test1", "sifive,test0", "syscon"]),
        )?;
        fdt.end_node(n)?;
    }
    for v in desc.virtio_mmio.iter().rev() {
        let n = fdt.begin_node(&format!("virtio_mmio@{:x}", v.base))?;
        irq_props(&mut fdt, v.irq)?;
        reg(&mut fdt, v.base, v.size)?;
        fdt.property_string("compatible", "virtio,mmio")?;
        fdt.end_node(n)?;
    }
    if let Some(plic) = desc.plic {
        // Contexts in QEMU's order: per hart, M-mode external then S-mode external
        // (hw/riscv/virt.c create_fdt_socket_plic; PLIC context 2h = M, 2h+1 = S).
        let cells: Vec<u32> = hart_phandles
            .iter()
            .flat_map(|&(_, intc)| [intc, IRQ_M_EXT, intc, IRQ_S_EXT])
            .collect();
        let n = fdt.begin_node(&format!("plic@{:x}", plic.base))?;
        fdt.property_phandle(plic_phandle)?;
        fdt.property_u32("riscv,ndev", plic.ndev)?;
        reg(&mut fdt, plic.base, plic.size)?;
        fdt.property_array_u32("interrupts-extended", &cells)?;
        fdt.property_null("interrupt-controller")?;
        fdt.property_string_list("compatible", strings(&["sifive,plic-1.0.0", "riscv,plic0"]))?;
        fdt.property_u32("#address-cells", 0)?;
        fdt.property_u32("#interrupt-cells", 1)?;
        fdt.end_node(n)?;
    }
    if let Some((base, size)) = desc.clint {
        let cells: Vec<u32> = hart_phandles
            .iter()
            .flat_map(|&(_, intc)| [intc, IRQ_M_SOFT, intc, IRQ_M_TIMER])
            .collect();
        let n = fdt.begin_node(&format!("clint@{base:x}"))?;
        fdt.property_array_u32("interrupts-extended", &cells)?;
        reg(&mut fdt, base, size)?;
        fdt.property_string_list("compatible", strings(&["sifive,clint0", "riscv,clint0"]))?;
        fdt.end_node(n)?;
    }
    fdt.end_node(soc)?;
    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn hart(id: u32) -> HartDesc {
        HartDesc {
            hart_id: id,
            isa_base: "rv64i".into(),
            extensions: ["i", "m", "a", "f", "d", "c", "zicsr", "zifencei", "sstc"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            mmu_type: "riscv,sv57".into(),
        }
    }

    fn desc(n: u32) -> PlatformDesc {
        let mut d = PlatformDesc::riscv_virt((0..n).map(hart).collect(), 128 << 20);
        d.chosen.bootargs = Some("console=ttyS0 earlycon".into());
        d.chosen.initrd = Some((0x8800_0000, 0x8810_0000));
        d.chosen.rng_seed = Some([7; 32]);
        d
    }

    fn u32s(p: &[u8]) -> Vec<u32> {
        p.chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn isa_string_is_canonical() {
        assert_eq!(hart(0).isa_string(), "rv64imafdc_zicsr_zifencei_sstc");
    }

    #[test]
    fn tree_has_the_virt_nodes_and_properties() {
        let blob = build_fdt(&desc(2)).unwrap();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        // Packed, as QEMU leaves its tree: no free space for the guest to checksum.
        assert_eq!(fdt.total_size(), blob.len());
        assert!(blob.len() < 8 << 10, "{} bytes", blob.len());
        assert_eq!(fdt.root().model(), "riscv-virtio,qemu");
        let chosen = fdt.chosen();
        assert_eq!(chosen.bootargs(), Some("console=ttyS0 earlycon"));
        assert_eq!(
            chosen.stdout().map(|n| n.name),
            Some("serial@10000000"),
            "stdout-path resolves"
        );
        let c = fdt.find_node("/chosen").unwrap();
        let start = c.property("linux,initrd-start").unwrap().as_usize();
        assert_eq!(start, Some(0x8800_0000));
        assert_eq!(c.property("rng-seed").unwrap().value, &[7u8; 32]);
        let mem = fdt.memory().regions().next().unwrap();
        assert_eq!(mem.starting_address as usize, 0x8000_0000);
        assert_eq!(mem.size, Some(128 << 20));

        let cpus: Vec<_> = fdt.cpus().collect();
        assert_eq!(cpus.len(), 2);
        assert_eq!(cpus[0].timebase_frequency(), 10_000_000);
        let cpu1 = fdt.find_node("/cpus/cpu@1").unwrap();
        assert_eq!(
            cpu1.property("riscv,isa").unwrap().as_str(),
            Some("rv64imafdc_zicsr_zifencei_sstc")
        );
        assert_eq!(
            cpu1.property("mmu-type").unwrap().as_str(),
            Some("riscv,sv57")
        );
        let exts = cpu1.property("riscv,isa-extensions").unwrap().value;
        assert!(exts.starts_with(b"i\0m\0a\0f\0d\0c\0zicsr\0"));
        let intc1 = fdt.find_node("/cpus/cpu@1/interrupt-controller").unwrap();
        let intc1_ph = intc1.property("phandle").unwrap().as_usize().unwrap() as u32;
        let intc0_ph = fdt
            .find_node("/cpus/cpu@0/interrupt-controller")
            .unwrap()
            .property("phandle")
            .unwrap()
            .as_usize()
            .unwrap() as u32;

        let plic = fdt.find_node("/soc/plic@c000000").unwrap();
        assert_eq!(
            u32s(plic.property("interrupts-extended").unwrap().value),
            vec![intc0_ph, 11, intc0_ph, 9, intc1_ph, 11, intc1_ph, 9]
        );
        assert_eq!(plic.property("riscv,ndev").unwrap().as_usize(), Some(96));
        let clint = fdt.find_node("/soc/clint@2000000").unwrap();
        assert_eq!(
            u32s(clint.property("interrupts-extended").unwrap().value),
            vec![intc0_ph, 3, intc0_ph, 7, intc1_ph, 3, intc1_ph, 7]
        );
        let uart = fdt.find_node("/soc/serial@10000000").unwrap();
        assert_eq!(uart.interrupts().unwrap().collect::<Vec<_>>(), vec![10]);
        assert_eq!(uart.interrupt_parent().unwrap().name, "plic@c000000");
        for i in 0..8u64 {
            let v = fdt
                .find_node(&format!("/soc/virtio_mmio@{:x}", 0x1000_1000 + 0x1000 * i))
                .unwrap();
            assert_eq!(
                v.interrupts().unwrap().collect::<Vec<_>>(),
                vec![1 + i as usize]
            );
        }
        let rtc = fdt.find_node("/soc/rtc@101000").unwrap();
        assert_eq!(rtc.interrupts().unwrap().collect::<Vec<_>>(), vec![11]);
        let test = fdt.find_node("/soc/test@100000").unwrap();
        let test_ph = test.property("phandle").unwrap().as_usize();
        let poweroff = fdt.find_node("/poweroff").unwrap();
        assert_eq!(poweroff.property("value").unwrap().as_usize(), Some(0x5555));
        assert_eq!(poweroff.property("regmap").unwrap().as_usize(), test_ph);
        let reboot = fdt.find_node("/reboot").unwrap();
        assert_eq!(reboot.property("value").unwrap().as_usize(), Some(0x7777));
    }

    #[test]
    fn same_description_same_blob() {
        assert_eq!(build_fdt(&desc(4)).unwrap(), build_fdt(&desc(4)).unwrap());
    }

    #[test]
    fn bad_descriptions_are_errors() {
        let mut d = desc(1);
        d.harts.clear();
        assert!(build_fdt(&d).is_err());
        let mut d = desc(1);
        d.chosen.bootargs = Some("a\0b".into());
        assert!(build_fdt(&d).is_err());
        let mut d = desc(1);
        d.plic = None;
        assert!(matches!(build_fdt(&d), Err(FdtError::Invalid(_))));
    }

    /// Random descriptions (odd sizes, many harts, strings with NULs and odd characters) give a
    /// blob that parses or an error, never a panic.
    #[test]
    fn random_descriptions_never_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let words = [
            "",
            "a\0b",
            "console=ttyS0",
            "/soc/serial@10000000",
            "é",
            "x@y{}",
        ];
        for _ in 0..300 {
            let n = (next() % 9) as u32;
            let mut d = desc(n.max(1));
            d.harts.truncate(n as usize);
            d.memory = (next(), next());
            d.chosen.bootargs = Some(words[(next() % 6) as usize].to_string());
            d.chosen.stdout_path = Some(words[(next() % 6) as usize].to_string());
            if next() % 2 == 0 {
                d.plic = None;
            }
            if let Some(h) = d.harts.first_mut() {
                h.mmu_type = words[(next() % 6) as usize].to_string();
            }
            match build_fdt(&d) {
                Ok(blob) => assert!(fdt::Fdt::new(&blob).is_ok()),
                Err(e) => assert!(e.to_string().starts_with("cannot build the device tree")),
            }
        }
    }

    /// A node's path and its properties (name, value).
    type NodeProps = (String, Vec<(String, Vec<u8>)>);

    /// Every node path under `node`, with its properties (name, value).
    fn walk(node: fdt::node::FdtNode, path: &str, out: &mut Vec<NodeProps>) {
        let props = node
            .properties()
            .map(|p| (p.name.to_string(), p.value.to_vec()))
            .collect();
        out.push((path.to_string(), props));
        for child in node.children() {
            let p = if path == "/" {
                format!("/{}", child.name)
            } else {
                format!("{path}/{}", child.name)
            };
            walk(child, &p, out);
        }
    }

    fn nodes(blob: &[u8]) -> Vec<NodeProps> {
        let fdt = fdt::Fdt::new(blob).unwrap();
        let mut out = Vec::new();
        walk(fdt.find_node("/").unwrap(), "/", &mut out);
        out
    }

    /// Compare with the tree QEMU 7.2 dumps for the same board (skipped when QEMU is absent;
    /// it is installed in CI). Nodes of devices emu does not have are left out; properties whose
    /// values are phandles, host randomness or the hart's ISA are compared by name only.
    #[test]
    fn matches_qemu_virt_tree() {
        for smp in [1u32, 2, 4] {
            let dtb = std::env::temp_dir()
                .join(format!("emu-fw-qemu-virt-{}-{smp}.dtb", std::process::id()));
            let status = std::process::Command::new("qemu-system-riscv64")
                .args(["-M", "virt", "-m", "128M", "-smp", &smp.to_string()])
                .args(["-nographic", "-nodefaults", "-display", "none"])
                .arg("-machine")
                .arg(format!("dumpdtb={}", dtb.display()))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            let Ok(status) = status else {
                eprintln!("qemu-system-riscv64 not installed: comparison skipped");
                return;
            };
            assert!(status.success(), "qemu failed to dump its dtb");
            let qemu_blob = std::fs::read(&dtb).unwrap();
            let _ = std::fs::remove_file(&dtb);
            const ABSENT: [&str; 5] = [
                "/pmu",
                "/fw-cfg@10100000",
                "/flash@20000000",
                "/platform-bus@4000000",
                "/soc/pci@30000000",
            ];
            let qemu: Vec<_> = nodes(&qemu_blob)
                .into_iter()
                .filter(|(p, _)| !ABSENT.iter().any(|a| p.starts_with(a)))
                .collect();
            let mut d = PlatformDesc::riscv_virt((0..smp).map(hart).collect(), 128 << 20);
            d.chosen.rng_seed = Some([0; 32]);
            let ours = nodes(&build_fdt(&d).unwrap());
            let qemu_paths: Vec<&str> = qemu.iter().map(|(p, _)| p.as_str()).collect();
            let our_paths: Vec<&str> = ours.iter().map(|(p, _)| p.as_str()).collect();
            assert_eq!(our_paths, qemu_paths, "node list and order, -smp {smp}");
            const BY_NAME: [&str; 8] = [
                "phandle",
                "interrupt-parent",
                "interrupts-extended",
                "regmap",
                "cpu",
                "rng-seed",
                "riscv,isa",
                "mmu-type",
            ];
            const OURS_ONLY: [&str; 2] = ["riscv,isa-base", "riscv,isa-extensions"];
            for ((path, qp), (_, op)) in qemu.iter().zip(&ours) {
                let mut qn: Vec<&str> = qp.iter().map(|(n, _)| n.as_str()).collect();
                let mut on: Vec<&str> = op
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .filter(|n| !OURS_ONLY.contains(n))
                    .collect();
                qn.sort_unstable();
                on.sort_unstable();
                assert_eq!(on, qn, "properties of {path}");
                for (name, value) in qp {
                    if BY_NAME.contains(&name.as_str()) {
                        continue;
                    }
                    let ov = op.iter().find(|(n, _)| n == name).map(|(_, v)| v);
                    assert_eq!(ov, Some(value), "{path}:{name}");
                }
            }
        }
    }
}

#[cfg(test)]
mod qemu_boot {
    use super::tests::hart;
    use super::{build_fdt, PlatformDesc};
    use std::io::Read;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Writes the tree of a 2-hart, 256 MiB board to `$EMU_FDT_OUT` (a debugging aid:
    /// `EMU_FDT_OUT=/tmp/emu.dtb cargo test -p emu-firmware dump_fdt -- --ignored`).
    #[test]
    #[ignore]
    fn dump_fdt() {
        let Some(path) = std::env::var_os("EMU_FDT_OUT") else {
            return;
        };
        std::fs::write(path, build_fdt(&board(2, 256 << 20)).unwrap()).unwrap();
    }

    fn board(harts: u32, ram: u64) -> PlatformDesc {
        let mut d = PlatformDesc::riscv_virt((0..harts).map(hart).collect(), ram);
        d.chosen.rng_seed = Some([0x5a; 32]);
        d
    }

    /// The guest files of scripts/debian-guest.sh, if they were fetched.
    fn guest_dir() -> Option<PathBuf> {
        let root = std::env::var_os("EMU_GUEST_CACHE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/emu-guest"))
            })?;
        let dir = root.join("riscv64/current");
        dir.join("complete").exists().then_some(dir)
    }

    /// Run `cmd` for at most `limit`, returning its stdout.
    fn run_with_timeout(cmd: &mut Command, limit: Duration) -> String {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = out.read_to_end(&mut s);
            s
        });
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        String::from_utf8_lossy(&reader.join().unwrap()).into_owned()
    }

    /// Debian's kernel boots on emu's device tree under QEMU (with QEMU's OpenSBI and with
    /// Debian's `fw_dynamic.bin`): the tree is one a real kernel and real firmware accept.
    /// Skipped without QEMU or without the guest files of scripts/debian-guest.sh.
    #[test]
    fn debian_kernel_boots_on_our_tree_under_qemu() {
        let Some(dir) = guest_dir() else {
            eprintln!("no guest files (scripts/debian-guest.sh riscv64): skipped");
            return;
        };
        if Command::new("qemu-system-riscv64")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("qemu-system-riscv64 not installed: skipped");
            return;
        }
        let dtb = std::env::temp_dir().join(format!("emu-fw-boot-{}.dtb", std::process::id()));
        std::fs::write(&dtb, build_fdt(&board(2, 256 << 20)).unwrap()).unwrap();
        for bios in ["default", "fw_dynamic.bin"] {
            let bios_arg = if bios == "default" {
                bios.to_string()
            } else {
                dir.join(bios).display().to_string()
            };
            let out = run_with_timeout(
                Command::new("qemu-system-riscv64")
                    .args(["-M", "virt", "-smp", "2", "-m", "256M", "-nographic"])
                    .args(["-bios", &bios_arg])
                    .arg("-kernel")
                    .arg(dir.join("Image"))
                    .arg("-initrd")
                    .arg(dir.join("initrd.gz"))
                    .arg("-dtb")
                    .arg(&dtb)
                    .args(["-append", "console=ttyS0 emu.test=poweroff"]),
                Duration::from_secs(300),
            );
            for want in [
                "Machine model: riscv-virtio,qemu",
                "smp: Brought up 1 node, 2 CPUs",
                "10000000.serial: ttyS0 at MMIO 0x10000000 (irq = ",
                "goldfish_rtc 101000.rtc: registered as rtc0",
                "EMU-INIT-READY",
                "reboot: Power down",
            ] {
                assert!(out.contains(want), "-bios {bios}: no '{want}' in\n{out}");
            }
        }
        let _ = std::fs::remove_file(&dtb);
    }
}
