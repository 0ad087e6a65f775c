//! Loading a RISC-V Linux kernel, an initrd, `-bios` firmware and the device tree into guest
//! RAM, placed as QEMU 7.2 places them (hw/riscv/boot.c).
//!
//! Kernel formats, tried in this order:
//! 1. ELF (`\x7fELF`): every `PT_LOAD` segment at its physical address ([`crate::elf`]).
//! 2. A Linux `Image` (Documentation/arch/riscv/boot-image-header.rst): recognised by `magic2`
//!    `"RSC\x05"` at 0x38 or the deprecated `magic` `"RISCV\0\0\0"` at 0x30. It is loaded at
//!    RAM base + `text_offset` (2 MiB if the header says 0); it occupies `image_size` bytes
//!    (its BSS included), or the file size if `image_size` is 0. The entry is the load address
//!    (`code0`/`code1` jump to the kernel proper; an EFI-stub kernel starts with "MZ", which is
//!    also a harmless RISC-V instruction).
//! 3. Anything else is a raw binary loaded as-is at RAM base + 2 MiB, entered at its first byte
//!    (QEMU's fallback, `load_image_targphys` at the kernel start address).
//!
//! When `-bios` firmware is loaded, the kernel goes no lower than the firmware's end rounded up
//! to 2 MiB (QEMU `riscv_calc_kernel_start_addr`).
//!
//! Every file is user input: sizes are checked against RAM before a byte is read or written,
//! and a truncated or garbled file is a [`LoadError`] naming the file, never a panic.

use crate::elf::{load_elf_bytes, ElfError};
use emu_devices::Bus;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use thiserror::Error;

/// 2 MiB: RV64 kernel alignment and default `text_offset`.
pub const KERNEL_ALIGN: u64 = 0x20_0000;
/// Size of the RISC-V `Image` header.
pub const IMAGE_HEADER_SIZE: usize = 64;
/// `magic` at 0x30 (deprecated since header version 0.2, still written).
pub const IMAGE_MAGIC: &[u8; 8] = b"RISCV\0\0\0";
/// `magic2` at 0x38 (header version 0.2).
pub const IMAGE_MAGIC2: &[u8; 4] = b"RSC\x05";
/// Guest page size for the initrd's alignment.
const PAGE: u64 = 0x1000;
/// The device tree is kept below 3 GiB so that 32-bit kernels can reach it (QEMU riscv_load_fdt).
const FDT_LIMIT: u64 = 3 << 30;

/// Which file failed to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Kernel,
    Initrd,
    Firmware,
    DeviceTree,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Kernel => "kernel",
            FileKind::Initrd => "initrd",
            FileKind::Firmware => "firmware",
            FileKind::DeviceTree => "device tree",
        })
    }
}

/// Why a file could not be loaded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LoadReason {
    /// The file does not exist.
    #[error("No such file or directory")]
    Missing,
    /// The file exists but cannot be read.
    #[error("{0}")]
    Unreadable(String),
    /// The file is empty.
    #[error("file is empty")]
    Empty,
    /// The image does not fit in RAM at the address it must go to.
    #[error("too large for RAM (-m {ram}): {size:#x} bytes at {addr:#x} end past {ram_end:#x}")]
    TooLarge {
        ram: String,
        addr: u64,
        size: u64,
        ram_end: u64,
    },
    /// The file has the `Image` magic but a header that cannot be right.
    #[error("bad RISC-V Image header: {0}")]
    BadHeader(String),
    /// An ELF file that cannot be loaded.
    #[error("{0}")]
    Elf(String),
    /// The file is larger than guest RAM.
    #[error("too large for RAM (-m {ram}): the file has {size:#x} bytes")]
    FileTooLarge { ram: String, size: u64 },
    /// Two images would overlap.
    #[error("{0}")]
    Overlap(String),
}

/// A file that could not be loaded: `could not load kernel 'PATH': REASON`.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("could not load {kind} '{path}': {reason}")]
pub struct LoadError {
    pub kind: FileKind,
    pub path: String,
    pub reason: LoadReason,
}

/// Guest RAM as the loaders see it: one contiguous region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamRange {
    pub base: u64,
    pub size: u64,
}

impl RamRange {
    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `[addr, addr + len)` lies inside RAM.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.base && addr.checked_add(len).is_some_and(|e| e <= self.end())
    }

    /// The size as `-m` would say it (`128M`, `2G`, or bytes).
    pub fn size_arg(&self) -> String {
        const G: u64 = 1 << 30;
        const M: u64 = 1 << 20;
        match self.size {
            s if s >= G && s.is_multiple_of(G) => format!("{}G", s / G),
            s if s >= M && s.is_multiple_of(M) => format!("{}M", s / M),
            s => format!("{s}"),
        }
    }
}

/// The format a kernel was recognised as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelFormat {
    Elf,
    Image,
    Raw,
}

/// A kernel placed in RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelImage {
    pub format: KernelFormat,
    /// Where the hart starts it.
    pub entry: u64,
    /// Lowest address it occupies.
    pub start: u64,
    /// One past the highest address it occupies (BSS included for an `Image`).
    pub end: u64,
}

/// Firmware placed in RAM (`-bios`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirmwareImage {
    pub entry: u64,
    pub start: u64,
    pub end: u64,
}

/// The fields of a RISC-V `Image` header (boot-image-header.rst), little endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    pub code0: u32,
    pub code1: u32,
    pub text_offset: u64,
    pub image_size: u64,
    pub flags: u64,
    pub version: u32,
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

impl ImageHeader {
    /// The header, if `bytes` starts with one (either magic present).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let magic = bytes.get(0x30..0x38)? == IMAGE_MAGIC;
        let magic2 = bytes.get(0x38..0x3c)? == IMAGE_MAGIC2;
        if !magic && !magic2 {
            return None;
        }
        Some(ImageHeader {
            code0: le32(bytes, 0)?,
            code1: le32(bytes, 4)?,
            text_offset: le64(bytes, 8)?,
            image_size: le64(bytes, 16)?,
            flags: le64(bytes, 24)?,
            version: le32(bytes, 32)?,
        })
    }
}

fn err(kind: FileKind, path: &str, reason: LoadReason) -> LoadError {
    LoadError {
        kind,
        path: path.to_string(),
        reason,
    }
}

/// Open a file that must fit in `ram` (a regular file's size is checked before reading): the
/// file and, for a regular file, its length (`None` for a pipe or device, read to its end).
fn open_file(kind: FileKind, path: &Path, ram: RamRange) -> Result<(File, Option<u64>), LoadError> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| err(kind, &name, io_reason(e));
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(err(
            kind,
            &name,
            LoadReason::Unreadable("Is a directory".into()),
        ));
    }
    if !meta.is_file() {
        return Ok((file, None));
    }
    if meta.len() > ram.size {
        return Err(err(
            kind,
            &name,
            LoadReason::FileTooLarge {
                ram: ram.size_arg(),
                size: meta.len(),
            },
        ));
    }
    if meta.len() == 0 {
        return Err(err(kind, &name, LoadReason::Empty));
    }
    Ok((file, Some(meta.len())))
}

fn io_reason(e: std::io::Error) -> LoadReason {
    match e.kind() {
        std::io::ErrorKind::NotFound => LoadReason::Missing,
        std::io::ErrorKind::PermissionDenied => LoadReason::Unreadable("Permission denied".into()),
        _ => LoadReason::Unreadable(e.to_string()),
    }
}

/// Read a whole file that must fit in `ram` (a regular file's size is checked before reading;
/// a pipe or device is read to its end, never past RAM's size).
pub fn read_file(kind: FileKind, path: &Path, ram: RamRange) -> Result<Vec<u8>, LoadError> {
    let (file, len) = open_file(kind, path, ram)?;
    read_rest(kind, path, ram, file, len)
}

/// The rest of an open file, at most RAM's size (see [`read_file`]).
fn read_rest(
    kind: FileKind,
    path: &Path,
    ram: RamRange,
    file: File,
    len: Option<u64>,
) -> Result<Vec<u8>, LoadError> {
    let name = path.display().to_string();
    let mut bytes = Vec::with_capacity(len.and_then(|n| usize::try_from(n).ok()).unwrap_or(0));
    file.take(ram.size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| err(kind, &name, io_reason(e)))?;
    if bytes.len() as u64 > ram.size {
        return Err(err(
            kind,
            &name,
            LoadReason::FileTooLarge {
                ram: ram.size_arg(),
                size: bytes.len() as u64,
            },
        ));
    }
    if bytes.is_empty() {
        return Err(err(kind, &name, LoadReason::Empty));
    }
    Ok(bytes)
}

/// What a loader places in RAM: bytes in memory (ELF segments, firmware, tests), or an open
/// file read straight into guest RAM once its place is known (a kernel `Image` or raw binary,
/// an initrd: tens of MiB that, read whole first, cost the host a fresh heap page per 4 KiB
/// and a copy).
enum Contents<'a> {
    Bytes(&'a [u8]),
    /// A pipe or device's bytes, read whole (their length is not known before).
    Owned(Vec<u8>),
    File {
        file: File,
        len: u64,
        /// The file's first bytes (up to an `Image` header).
        head: Vec<u8>,
    },
}

impl Contents<'_> {
    fn len(&self) -> u64 {
        match self {
            Contents::Bytes(b) => b.len() as u64,
            Contents::Owned(b) => b.len() as u64,
            Contents::File { len, .. } => *len,
        }
    }

    /// The first bytes, at least [`IMAGE_HEADER_SIZE`] of them when the contents are as long.
    fn head(&self) -> &[u8] {
        match self {
            Contents::Bytes(b) => b,
            Contents::Owned(b) => b,
            Contents::File { head, .. } => head,
        }
    }
}

/// Open `path` as [`Contents::File`], its first bytes read (a pipe or device: read whole).
fn open_contents(
    kind: FileKind,
    path: &Path,
    ram: RamRange,
) -> Result<Contents<'static>, LoadError> {
    let (mut file, len) = open_file(kind, path, ram)?;
    let Some(len) = len else {
        return read_rest(kind, path, ram, file, None).map(Contents::Owned);
    };
    let mut head = Vec::with_capacity(IMAGE_HEADER_SIZE);
    (&mut file)
        .take(IMAGE_HEADER_SIZE as u64)
        .read_to_end(&mut head)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .map_err(|e| err(kind, &path.display().to_string(), io_reason(e)))?;
    Ok(Contents::File { file, len, head })
}

fn too_large(ram: RamRange, addr: u64, size: u64) -> LoadReason {
    LoadReason::TooLarge {
        ram: ram.size_arg(),
        addr,
        size,
        ram_end: ram.end(),
    }
}

/// Write `data` at `addr` after checking it (and `reserve` bytes in all) fits in `ram`.
fn place(
    bus: &Bus,
    ram: RamRange,
    addr: u64,
    data: Contents<'_>,
    reserve: u64,
) -> Result<(), LoadReason> {
    let len = data.len();
    let size = reserve.max(len);
    if !ram.contains(addr, size) || bus.ram_at(addr, size).is_none() {
        return Err(too_large(ram, addr, size));
    }
    let Some(r) = bus.ram_at(addr, len) else {
        return Err(too_large(ram, addr, size));
    };
    match data {
        Contents::Bytes(b) if r.write(addr, b) => Ok(()),
        Contents::Owned(b) if r.write(addr, &b) => Ok(()),
        Contents::Bytes(_) | Contents::Owned(_) => Err(too_large(ram, addr, size)),
        Contents::File { mut file, .. } => match r.read_from(addr, len, &mut file) {
            Some(Ok(())) => Ok(()),
            // Shorter than its size said: it changed while being loaded.
            Some(Err(e)) => Err(io_reason(e)),
            None => Err(too_large(ram, addr, size)),
        },
    }
}

/// Map an [`ElfError`] (whose message starts with the file name) to a reason.
fn elf_reason(e: ElfError, ram: RamRange) -> LoadReason {
    match e {
        ElfError::Missing { .. } => LoadReason::Missing,
        ElfError::Unreadable { reason, .. } => LoadReason::Unreadable(reason),
        ElfError::OutsideRam { addr, size, .. } => too_large(ram, addr, size),
        other => {
            let msg = other.to_string();
            // "'PATH': detail" -> "detail"
            let detail = msg.split_once("': ").map_or(msg.as_str(), |(_, d)| d);
            LoadReason::Elf(detail.to_string())
        }
    }
}

/// Load the kernel file at `path`. `firmware_end` is the end of `-bios` firmware, if any.
pub fn load_kernel(
    path: &Path,
    bus: &Bus,
    ram: RamRange,
    firmware_end: Option<u64>,
) -> Result<KernelImage, LoadError> {
    let name = path.display().to_string();
    let contents = open_contents(FileKind::Kernel, path, ram)?;
    match contents {
        Contents::File { file, len, head } if head.starts_with(b"\x7fELF") => {
            // goblin parses the whole file.
            let bytes = read_rest(FileKind::Kernel, path, ram, file, Some(len))?;
            load_kernel_bytes(&name, &bytes, bus, ram, firmware_end)
        }
        Contents::Owned(bytes) => load_kernel_bytes(&name, &bytes, bus, ram, firmware_end),
        contents => load_image(&name, contents, bus, ram, firmware_end),
    }
}

/// Load the kernel `bytes` (read from `name`); see the module documentation for the formats.
pub fn load_kernel_bytes(
    name: &str,
    bytes: &[u8],
    bus: &Bus,
    ram: RamRange,
    firmware_end: Option<u64>,
) -> Result<KernelImage, LoadError> {
    let fail = |reason| err(FileKind::Kernel, name, reason);
    if bytes.is_empty() {
        return Err(fail(LoadReason::Empty));
    }
    if bytes.starts_with(b"\x7fELF") {
        let elf = load_elf_bytes(name, bytes, bus).map_err(|e| fail(elf_reason(e, ram)))?;
        let start = elf
            .segments
            .iter()
            .map(|s| s.addr)
            .min()
            .unwrap_or(elf.entry);
        let end = elf
            .segments
            .iter()
            .map(|s| s.addr.saturating_add(s.size))
            .max()
            .unwrap_or(elf.entry);
        if let Some(fw_end) = firmware_end {
            if start < fw_end {
                return Err(fail(LoadReason::Overlap(format!(
                    "kernel at {start:#x} overlaps the firmware (ends at {fw_end:#x})"
                ))));
            }
        }
        return Ok(KernelImage {
            format: KernelFormat::Elf,
            entry: elf.entry,
            start,
            end,
        });
    }
    load_image(name, Contents::Bytes(bytes), bus, ram, firmware_end)
}

/// Load a kernel that is not an ELF: a Linux `Image` or a raw binary (module documentation).
fn load_image(
    name: &str,
    contents: Contents<'_>,
    bus: &Bus,
    ram: RamRange,
    firmware_end: Option<u64>,
) -> Result<KernelImage, LoadError> {
    let fail = |reason| err(FileKind::Kernel, name, reason);
    let file_len = contents.len();
    let min_start = firmware_end.map(|e| align_up(e, KERNEL_ALIGN));
    let (format, offset, mem_size) = match ImageHeader::parse(contents.head()) {
        Some(h) => {
            if h.flags & 1 != 0 {
                return Err(fail(LoadReason::BadHeader(
                    "big-endian kernel (flags bit 0 set)".into(),
                )));
            }
            if file_len < IMAGE_HEADER_SIZE as u64 {
                return Err(fail(LoadReason::BadHeader("file is truncated".into())));
            }
            let offset = if h.text_offset == 0 {
                KERNEL_ALIGN
            } else {
                h.text_offset
            };
            if !offset.is_multiple_of(PAGE) {
                return Err(fail(LoadReason::BadHeader(format!(
                    "text_offset {offset:#x} is not page aligned"
                ))));
            }
            let size = h.image_size.max(file_len);
            (KernelFormat::Image, offset, size)
        }
        None => (KernelFormat::Raw, KERNEL_ALIGN, file_len),
    };
    let Some(mut start) = ram.base.checked_add(offset) else {
        return Err(fail(too_large(ram, ram.base, offset)));
    };
    if let Some(min) = min_start {
        start = start.max(min);
    }
    place(bus, ram, start, contents, mem_size).map_err(fail)?;
    Ok(KernelImage {
        format,
        entry: start,
        start,
        end: start + mem_size,
    })
}

/// Load `-bios` firmware: an ELF at its physical addresses, or a raw binary at RAM base
/// (QEMU riscv_load_firmware), entered at its first byte.
pub fn load_firmware(path: &Path, bus: &Bus, ram: RamRange) -> Result<FirmwareImage, LoadError> {
    let bytes = read_file(FileKind::Firmware, path, ram)?;
    load_firmware_bytes(&path.display().to_string(), &bytes, bus, ram)
}

/// Load firmware `bytes` read from `name`; see [`load_firmware`].
pub fn load_firmware_bytes(
    name: &str,
    bytes: &[u8],
    bus: &Bus,
    ram: RamRange,
) -> Result<FirmwareImage, LoadError> {
    let fail = |reason| err(FileKind::Firmware, name, reason);
    if bytes.is_empty() {
        return Err(fail(LoadReason::Empty));
    }
    if bytes.starts_with(b"\x7fELF") {
        let elf = load_elf_bytes(name, bytes, bus).map_err(|e| fail(elf_reason(e, ram)))?;
        let start = elf
            .segments
            .iter()
            .map(|s| s.addr)
            .min()
            .unwrap_or(elf.entry);
        let end = elf
            .segments
            .iter()
            .map(|s| s.addr.saturating_add(s.size))
            .max()
            .unwrap_or(elf.entry);
        return Ok(FirmwareImage {
            entry: elf.entry,
            start,
            end,
        });
    }
    place(bus, ram, ram.base, Contents::Bytes(bytes), 0).map_err(fail)?;
    Ok(FirmwareImage {
        entry: ram.base,
        start: ram.base,
        end: ram.base + bytes.len() as u64,
    })
}

fn align_up(v: u64, a: u64) -> u64 {
    v.checked_next_multiple_of(a).unwrap_or(!(a - 1))
}

fn align_down(v: u64, a: u64) -> u64 {
    v & !(a - 1)
}

/// Where the boot structures go at the top of RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootLayout {
    /// The device tree ([`crate::fdt::FDT_MAX_SIZE`] bytes): QEMU 7.2 riscv_load_fdt — the top
    /// of RAM or 3 GiB, whichever is lower, minus the blob's size, aligned down to 2 MiB.
    pub fdt_addr: u64,
    /// OpenSBI's `fw_dynamic_info` (see [`crate::fw_dynamic`]): the page below the device tree.
    pub fw_dynamic_info_addr: u64,
    /// The initrd must end at or below this address.
    pub initrd_limit: u64,
}

/// Compute the [`BootLayout`] for RAM `ram` and a device tree of `fdt_size` bytes.
pub fn boot_layout(ram: RamRange, fdt_size: u64) -> Result<BootLayout, LoadError> {
    let top = if ram.base < FDT_LIMIT {
        ram.end().min(FDT_LIMIT)
    } else {
        ram.end()
    };
    let fdt_addr = top
        .checked_sub(fdt_size)
        .map(|a| align_down(a, KERNEL_ALIGN))
        .filter(|&a| a >= ram.base && a.checked_sub(PAGE).is_some_and(|i| i >= ram.base));
    let Some(fdt_addr) = fdt_addr else {
        return Err(err(
            FileKind::DeviceTree,
            "(generated)",
            too_large(ram, top.saturating_sub(fdt_size), fdt_size),
        ));
    };
    let info = fdt_addr - PAGE;
    Ok(BootLayout {
        fdt_addr,
        fw_dynamic_info_addr: info,
        initrd_limit: info,
    })
}

/// Load the initrd file at `path`; returns `[start, end)` for `/chosen`.
pub fn load_initrd(
    path: &Path,
    bus: &Bus,
    ram: RamRange,
    kernel: &KernelImage,
    limit: u64,
) -> Result<(u64, u64), LoadError> {
    let contents = open_contents(FileKind::Initrd, path, ram)?;
    place_initrd(
        &path.display().to_string(),
        contents,
        bus,
        ram,
        kernel,
        limit,
    )
}

/// Place initrd `bytes` as QEMU 7.2 riscv_load_initrd does: at the kernel's start plus half of
/// RAM or 128 MiB, whichever is less (so that the kernel's decompression and early allocations do
/// not clobber it, and it stays in low memory), page aligned and never below the kernel's end.
/// It must end at or below `limit` (the boot structures above it, [`BootLayout::initrd_limit`]).
pub fn load_initrd_bytes(
    name: &str,
    bytes: &[u8],
    bus: &Bus,
    ram: RamRange,
    kernel: &KernelImage,
    limit: u64,
) -> Result<(u64, u64), LoadError> {
    if bytes.is_empty() {
        return Err(err(FileKind::Initrd, name, LoadReason::Empty));
    }
    place_initrd(name, Contents::Bytes(bytes), bus, ram, kernel, limit)
}

/// [`load_initrd_bytes`] for any [`Contents`].
fn place_initrd(
    name: &str,
    contents: Contents<'_>,
    bus: &Bus,
    ram: RamRange,
    kernel: &KernelImage,
    limit: u64,
) -> Result<(u64, u64), LoadError> {
    let fail = |reason| err(FileKind::Initrd, name, reason);
    let gap = (ram.size / 2).min(128 << 20);
    let start = align_up(kernel.start.saturating_add(gap).max(kernel.end), PAGE);
    let size = contents.len();
    let end = start.saturating_add(size);
    if end > limit.min(ram.end()) {
        return Err(fail(LoadReason::TooLarge {
            ram: ram.size_arg(),
            addr: start,
            size,
            ram_end: limit.min(ram.end()),
        }));
    }
    place(bus, ram, start, contents, 0).map_err(fail)?;
    Ok((start, end))
}

/// Write the device tree `blob` at `addr` (from [`boot_layout`]).
pub fn write_fdt(bus: &Bus, ram: RamRange, addr: u64, blob: &[u8]) -> Result<(), LoadError> {
    place(bus, ram, addr, Contents::Bytes(blob), 0)
        .map_err(|r| err(FileKind::DeviceTree, "(generated)", r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use emu_devices::GuestRam;
    use std::sync::Arc;

    const BASE: u64 = 0x8000_0000;

    fn setup(size: u64) -> (Bus, RamRange) {
        let mut bus = Bus::new();
        bus.add_ram(Arc::new(GuestRam::new(BASE, size).unwrap()));
        (bus, RamRange { base: BASE, size })
    }

    fn image(text_offset: u64, image_size: u64, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; IMAGE_HEADER_SIZE];
        v[0..4].copy_from_slice(b"MZo\x10");
        v[8..16].copy_from_slice(&text_offset.to_le_bytes());
        v[16..24].copy_from_slice(&image_size.to_le_bytes());
        v[32..36].copy_from_slice(&2u32.to_le_bytes());
        v[0x30..0x38].copy_from_slice(IMAGE_MAGIC);
        v[0x38..0x3c].copy_from_slice(IMAGE_MAGIC2);
        v.extend_from_slice(body);
        v
    }

    fn read(bus: &Bus, addr: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        bus.read(addr, &mut b).unwrap();
        b
    }

    #[test]
    fn image_loads_at_text_offset() {
        let (bus, ram) = setup(64 << 20);
        let k = image(0x20_0000, 0x10_0000, b"kernel!");
        let img = load_kernel_bytes("vmlinux", &k, &bus, ram, None).unwrap();
        assert_eq!(img.format, KernelFormat::Image);
        assert_eq!(img.entry, BASE + 0x20_0000);
        assert_eq!(img.end, BASE + 0x30_0000, "image_size counts BSS");
        assert_eq!(read(&bus, BASE + 0x20_0040, 7), b"kernel!");
        let h = ImageHeader::parse(&k).unwrap();
        assert_eq!(h.version, 2);
    }

    #[test]
    fn image_with_only_one_magic_and_zero_offset() {
        let (bus, ram) = setup(64 << 20);
        let mut k = image(0, 0, b"x");
        k[0x30..0x38].fill(0);
        let img = load_kernel_bytes("k", &k, &bus, ram, None).unwrap();
        assert_eq!(img.format, KernelFormat::Image);
        assert_eq!(img.start, BASE + KERNEL_ALIGN);
        assert_eq!(img.end, img.start + k.len() as u64);
    }

    #[test]
    fn raw_binary_loads_at_two_mib() {
        let (bus, ram) = setup(16 << 20);
        let img = load_kernel_bytes("raw.bin", &[0x13, 0, 0, 0], &bus, ram, None).unwrap();
        assert_eq!(img.format, KernelFormat::Raw);
        assert_eq!(img.entry, BASE + KERNEL_ALIGN);
        assert_eq!(read(&bus, img.entry, 4), [0x13, 0, 0, 0]);
    }

    #[test]
    fn kernel_goes_above_firmware() {
        let (bus, ram) = setup(64 << 20);
        let k = image(0x20_0000, 0, b"k");
        let img = load_kernel_bytes("k", &k, &bus, ram, Some(BASE + 0x30_0001)).unwrap();
        assert_eq!(img.start, BASE + 0x40_0000);
    }

    #[test]
    fn elf_kernel_and_firmware() {
        use crate::testing::{build_elf, Segment, EM_RISCV};
        let (bus, ram) = setup(16 << 20);
        let elf = build_elf(
            EM_RISCV,
            BASE + 0x20_0000,
            &[Segment {
                addr: BASE + 0x20_0000,
                bytes: b"abcd",
                memsz: 0x100,
            }],
            &[],
        );
        let img = load_kernel_bytes("k.elf", &elf, &bus, ram, None).unwrap();
        assert_eq!(img.format, KernelFormat::Elf);
        assert_eq!((img.start, img.end), (BASE + 0x20_0000, BASE + 0x20_0100));
        let fw = load_firmware_bytes("fw.elf", &elf, &bus, ram).unwrap();
        assert_eq!(fw.entry, BASE + 0x20_0000);
        let raw = load_firmware_bytes("fw.bin", b"\x6f\x00\x00\x00", &bus, ram).unwrap();
        assert_eq!((raw.entry, raw.end), (BASE, BASE + 4));
        assert_eq!(read(&bus, BASE, 4), b"\x6f\x00\x00\x00");
    }

    #[test]
    fn too_large_kernel_names_the_file_and_ram() {
        let (bus, ram) = setup(4 << 20);
        let k = image(0x20_0000, 0x40_0000, b"k");
        let e = load_kernel_bytes("Image", &k, &bus, ram, None).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("could not load kernel 'Image': too large for RAM (-m 4M)"),
            "{msg}"
        );
        // Huge text_offset must not overflow.
        let k = image(!0xfff, 0, b"k");
        assert!(load_kernel_bytes("Image", &k, &bus, ram, None).is_err());
        let k = image(0x20_0001, 0, b"k");
        assert!(matches!(
            load_kernel_bytes("Image", &k, &bus, ram, None)
                .unwrap_err()
                .reason,
            LoadReason::BadHeader(_)
        ));
    }

    #[test]
    fn garbled_and_truncated_inputs_never_panic() {
        let (bus, ram) = setup(4 << 20);
        let full = image(0x20_0000, 0x1000, &[0xff; 64]);
        let mut seed = 0x1234_5678u32;
        for len in 0..full.len() {
            let _ = load_kernel_bytes("k", &full[..len], &bus, ram, None);
            let _ = load_firmware_bytes("f", &full[..len], &bus, ram);
        }
        for _ in 0..2000 {
            let mut v = full.clone();
            for _ in 0..8 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let i = (seed >> 8) as usize % v.len();
                v[i] = (seed >> 16) as u8;
            }
            let _ = load_kernel_bytes("k", &v, &bus, ram, None);
            let mut e = b"\x7fELF\x02\x01\x01".to_vec();
            e.extend_from_slice(&v);
            let _ = load_kernel_bytes("k", &e, &bus, ram, None);
        }
        assert_eq!(
            load_kernel_bytes("k", &[], &bus, ram, None)
                .unwrap_err()
                .to_string(),
            "could not load kernel 'k': file is empty"
        );
        let e = load_kernel_bytes("k", b"\x7fELF", &bus, ram, None).unwrap_err();
        assert!(
            e.to_string().starts_with("could not load kernel 'k': "),
            "{e}"
        );
    }

    #[test]
    fn missing_and_unreadable_files() {
        let (bus, ram) = setup(4 << 20);
        let e = load_kernel(Path::new("/nonexistent/Image"), &bus, ram, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "could not load kernel '/nonexistent/Image': No such file or directory"
        );
        let big = std::env::temp_dir().join(format!("emu-fw-big-{}", std::process::id()));
        std::fs::File::create(&big)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let e = load_kernel(&big, &bus, ram, None).unwrap_err();
        let _ = std::fs::remove_file(&big);
        assert_eq!(
            e.to_string(),
            format!(
                "could not load kernel '{}': too large for RAM (-m 4M): the file has 0x800000 bytes",
                big.display()
            )
        );
        let e = load_firmware(Path::new("/"), &bus, ram).unwrap_err();
        assert_eq!(e.to_string(), "could not load firmware '/': Is a directory");
        let k = KernelImage {
            format: KernelFormat::Raw,
            entry: BASE,
            start: BASE,
            end: BASE + 1,
        };
        let e =
            load_initrd(Path::new("/nonexistent/initrd"), &bus, ram, &k, ram.end()).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("could not load initrd '/nonexistent/initrd'"));
    }

    fn kernel_at(start: u64) -> KernelImage {
        KernelImage {
            format: KernelFormat::Raw,
            entry: start,
            start,
            end: start + 1,
        }
    }

    /// Files are read straight into RAM (`Contents::File`): the same placement and bytes as the
    /// byte loaders, for an `Image` longer than one read chunk, a raw binary, a header-sized
    /// file and an initrd.
    #[test]
    fn files_load_as_their_bytes_do() {
        let dir = std::env::temp_dir().join(format!("emu-fw-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let body: Vec<u8> = (0..(600u32 << 10))
            .map(|i| (i * 7 + i / 4096) as u8)
            .collect();
        let kernels = [
            ("Image", image(0x20_0000, 0x40_0000, &body)),
            ("raw", body[..5000].to_vec()),
            ("header-only", image(0, 0, &[])),
        ];
        for (name, k) in kernels {
            let path = dir.join(name);
            std::fs::write(&path, &k).unwrap();
            let (bus_f, ram) = setup(64 << 20);
            let (bus_b, _) = setup(64 << 20);
            let from_file = load_kernel(&path, &bus_f, ram, None).unwrap();
            let from_bytes = load_kernel_bytes(name, &k, &bus_b, ram, None).unwrap();
            assert_eq!(from_file, from_bytes, "{name}");
            assert_eq!(read(&bus_f, from_file.start, k.len()), k, "{name}");
            let initrd = dir.join(format!("{name}.initrd"));
            std::fs::write(&initrd, &body).unwrap();
            let limit = ram.end();
            let placed = load_initrd(&initrd, &bus_f, ram, &from_file, limit).unwrap();
            let expect = load_initrd_bytes(name, &body, &bus_b, ram, &from_bytes, limit).unwrap();
            assert_eq!(placed, expect, "{name}");
            assert_eq!(read(&bus_f, placed.0, body.len()), body, "{name}");
        }
        let empty = dir.join("empty");
        std::fs::write(&empty, []).unwrap();
        let (bus, ram) = setup(4 << 20);
        let e = load_kernel(&empty, &bus, ram, None).unwrap_err();
        assert!(e.to_string().ends_with("is empty"), "{e}");
        // A device has no length: read to its end, but never past RAM's size.
        let e = load_initrd(
            Path::new("/dev/zero"),
            &bus,
            ram,
            &kernel_at(BASE),
            ram.end(),
        );
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("too large for RAM (-m 4M)"),
            "endless input must stop at RAM's size"
        );
        // A pipe (`-kernel <(...)`) loads as its bytes.
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let k = image(0x20_0000, 0, b"piped kernel");
            let writer = {
                let (fifo, k) = (fifo.clone(), k.clone());
                std::thread::spawn(move || std::fs::write(fifo, k).unwrap())
            };
            let img = load_kernel(&fifo, &bus, ram, None).unwrap();
            writer.join().unwrap();
            assert_eq!(img.format, KernelFormat::Image);
            assert_eq!(read(&bus, img.start, k.len()), k);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Debian's kernel (scripts/debian-guest.sh, when cached) is an `Image` with an EFI stub.
    #[test]
    fn debian_kernel_is_an_image() {
        let root = std::env::var_os("EMU_GUEST_CACHE")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|h| std::path::PathBuf::from(h).join(".cache/emu-guest"))
            });
        let Some(dir) = root.map(|r| r.join("riscv64/current")) else {
            return;
        };
        if !dir.join("complete").exists() {
            eprintln!("no guest files (scripts/debian-guest.sh riscv64): skipped");
            return;
        }
        let (bus, ram) = setup(256 << 20);
        let k = load_kernel(&dir.join("Image"), &bus, ram, None).unwrap();
        assert_eq!(k.format, KernelFormat::Image);
        assert_eq!(k.entry, BASE + KERNEL_ALIGN);
        assert_eq!(read(&bus, k.entry, 2), b"MZ", "EFI stub");
        assert!(
            k.end > k.start + (8 << 20),
            "image_size covers text and BSS"
        );
        let l = boot_layout(ram, 0x10_0000).unwrap();
        let (s, e) = load_initrd(&dir.join("initrd.gz"), &bus, ram, &k, l.initrd_limit).unwrap();
        assert_eq!(s, BASE + KERNEL_ALIGN + (128 << 20));
        assert_eq!(read(&bus, s, 2), [0x1f, 0x8b], "gzip");
        assert!(e <= l.initrd_limit);
        let fw = load_firmware(&dir.join("fw_dynamic.bin"), &bus, ram).unwrap();
        assert_eq!(fw.entry, BASE);
        assert!(fw.end < BASE + KERNEL_ALIGN);
    }

    #[test]
    fn layout_matches_qemu() {
        // 128 MiB at 2 GiB: QEMU puts a 1 MiB tree at 0x87e00000.
        let ram = RamRange {
            base: BASE,
            size: 128 << 20,
        };
        let l = boot_layout(ram, 0x10_0000).unwrap();
        assert_eq!(l.fdt_addr, 0x87e0_0000);
        assert_eq!(l.fw_dynamic_info_addr, 0x87df_f000);
        // 4 GiB: capped at 3 GiB.
        let big = RamRange {
            base: BASE,
            size: 4 << 30,
        };
        assert_eq!(boot_layout(big, 0x10_0000).unwrap().fdt_addr, 0xbfe0_0000);
        // Too small.
        let tiny = RamRange {
            base: BASE,
            size: 0x10_0000,
        };
        assert!(boot_layout(tiny, 0x10_0000).is_err());
    }

    #[test]
    fn initrd_placement() {
        let (bus, ram) = setup(128 << 20);
        let k = KernelImage {
            format: KernelFormat::Image,
            entry: BASE + KERNEL_ALIGN,
            start: BASE + KERNEL_ALIGN,
            end: BASE + 0x180_0000,
        };
        let l = boot_layout(ram, 0x10_0000).unwrap();
        let (s, e) = load_initrd_bytes("initrd", b"070701", &bus, ram, &k, l.initrd_limit).unwrap();
        assert_eq!(s, BASE + KERNEL_ALIGN + (64 << 20), "half of 128 MiB");
        assert_eq!(e, s + 6);
        assert_eq!(read(&bus, s, 6), b"070701");
        let big = vec![0u8; 70 << 20];
        let err = load_initrd_bytes("initrd", &big, &bus, ram, &k, l.initrd_limit).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("could not load initrd 'initrd': too large for RAM (-m 128M)"));
    }
}
