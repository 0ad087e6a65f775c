//! ELF loading for bare-metal RISC-V programs (ELF-64 object file format; RISC-V ELF psABI §8).
//!
//! Loads every `PT_LOAD` segment at its physical address (`p_paddr`, as Spike and QEMU's
//! `load_elf` do): `p_filesz` bytes are copied from the file and the rest of `p_memsz` is zeroed.
//! Every segment is checked to lie inside guest RAM before anything is written. The symbols a
//! test harness needs (`tohost`, `fromhost` for HTIF; `begin_signature`, `end_signature` for the
//! architecture tests) are returned when present.
//!
//! The file is input a user controls: every offset and size is checked before use, and a
//! garbled file is an [`ElfError`], never a panic.

use emu_devices::Bus;
use goblin::elf::header::{ELFCLASS64, ELFDATA2LSB, EM_RISCV};
use goblin::elf::program_header::PT_LOAD;
use std::path::Path;
use thiserror::Error;

/// Size of the ELF-64 file header.
const EHDR64_SIZE: usize = 64;
/// Size of one ELF-64 program header.
const PHDR64_SIZE: u64 = 56;
/// Size of one ELF-64 section header.
const SHDR64_SIZE: u64 = 64;

/// Errors loading an ELF file; each names the file.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ElfError {
    /// The file does not exist.
    #[error("'{path}': No such file or directory")]
    Missing { path: String },
    /// The file exists but could not be read (permissions, a directory, an I/O error).
    #[error("'{path}': {reason}")]
    Unreadable { path: String, reason: String },
    /// The file ends before a header, table or segment it declares.
    #[error("'{path}': file is truncated ({what} ends past the end of the file)")]
    Truncated { path: String, what: &'static str },
    /// The file does not start with the ELF magic.
    #[error("'{path}': not an ELF file")]
    NotElf { path: String },
    /// An ELF file for another class, byte order or machine.
    #[error("'{path}': not a RISC-V 64-bit little-endian ELF ({found})")]
    WrongArch { path: String, found: String },
    /// A header field is inconsistent.
    #[error("'{path}': malformed ELF: {detail}")]
    Malformed { path: String, detail: String },
    /// A loadable segment does not fit in guest RAM.
    #[error(
        "'{path}': segment at {addr:#x} ({size:#x} bytes) lies outside guest RAM \
         (RAM is {ram}; try a larger -m)"
    )]
    OutsideRam {
        path: String,
        addr: u64,
        size: u64,
        ram: String,
    },
}

/// One segment placed in guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadedSegment {
    /// Guest physical address of the segment.
    pub addr: u64,
    /// Bytes occupied in memory (`p_memsz`).
    pub size: u64,
}

/// What a loaded ELF tells the machine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfImage {
    /// Entry point (`e_entry`).
    pub entry: u64,
    /// HTIF `tohost` symbol, if the program has one.
    pub tohost: Option<u64>,
    /// HTIF `fromhost` symbol, if the program has one.
    pub fromhost: Option<u64>,
    /// Architecture-test signature bounds, if present.
    pub begin_signature: Option<u64>,
    pub end_signature: Option<u64>,
    /// The segments that were loaded.
    pub segments: Vec<LoadedSegment>,
}

/// Read the ELF file at `path` and load it into `bus`'s RAM.
pub fn load_elf(path: &Path, bus: &Bus) -> Result<ElfImage, ElfError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ElfError::Missing { path: name.clone() },
        std::io::ErrorKind::PermissionDenied => ElfError::Unreadable {
            path: name.clone(),
            reason: "Permission denied".into(),
        },
        std::io::ErrorKind::IsADirectory => ElfError::Unreadable {
            path: name.clone(),
            reason: "Is a directory".into(),
        },
        _ => ElfError::Unreadable {
            path: name.clone(),
            reason: e.to_string(),
        },
    })?;
    load_elf_bytes(&name, &bytes, bus)
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Whether the table at `off` of `count` entries of `entsize` bytes lies inside `len` bytes.
fn table_fits(off: u64, count: u64, entsize: u64, len: u64) -> bool {
    count
        .checked_mul(entsize)
        .and_then(|size| off.checked_add(size))
        .is_some_and(|end| end <= len)
}

/// Check the ELF identification and file header by hand before handing the bytes to goblin,
/// so that the error says what is wrong (truncated, not ELF, wrong machine).
fn check_header(name: &str, b: &[u8]) -> Result<(), ElfError> {
    const MAGIC: &[u8; 4] = b"\x7fELF";
    let path = || name.to_string();
    let magic_len = b.len().min(4);
    if b.is_empty() || b[..magic_len] != MAGIC[..magic_len] {
        return Err(ElfError::NotElf { path: path() });
    }
    if b.len() < EHDR64_SIZE {
        // A 32-bit header is shorter; report the class first if we can see it.
        if b.len() > 4 && b[4] != ELFCLASS64 {
            return Err(ElfError::WrongArch {
                path: path(),
                found: "32-bit ELF".into(),
            });
        }
        return Err(ElfError::Truncated {
            path: path(),
            what: "the ELF header",
        });
    }
    if b[4] != ELFCLASS64 {
        return Err(ElfError::WrongArch {
            path: path(),
            found: "32-bit ELF".into(),
        });
    }
    if b[5] != ELFDATA2LSB {
        return Err(ElfError::WrongArch {
            path: path(),
            found: "big-endian ELF".into(),
        });
    }
    let machine = u16_at(b, 18).unwrap_or(0);
    if machine != EM_RISCV {
        return Err(ElfError::WrongArch {
            path: path(),
            found: format!(
                "machine {} ({machine})",
                goblin::elf::header::machine_to_str(machine)
            ),
        });
    }
    let len = b.len() as u64;
    let phoff = u64_at(b, 32).unwrap_or(0);
    let shoff = u64_at(b, 40).unwrap_or(0);
    let phentsize = u64::from(u16_at(b, 54).unwrap_or(0));
    let phnum = u64::from(u16_at(b, 56).unwrap_or(0));
    let shentsize = u64::from(u16_at(b, 58).unwrap_or(0));
    let shnum = u64::from(u16_at(b, 60).unwrap_or(0));
    if phnum > 0 && phentsize != PHDR64_SIZE {
        return Err(ElfError::Malformed {
            path: path(),
            detail: format!("program header size {phentsize}, expected {PHDR64_SIZE}"),
        });
    }
    if !table_fits(phoff, phnum, PHDR64_SIZE, len) {
        return Err(ElfError::Truncated {
            path: path(),
            what: "the program header table",
        });
    }
    if shnum > 0 && shentsize != SHDR64_SIZE {
        return Err(ElfError::Malformed {
            path: path(),
            detail: format!("section header size {shentsize}, expected {SHDR64_SIZE}"),
        });
    }
    if shoff != 0 && !table_fits(shoff, shnum, SHDR64_SIZE, len) {
        return Err(ElfError::Truncated {
            path: path(),
            what: "the section header table",
        });
    }
    Ok(())
}

fn describe_ram(bus: &Bus) -> String {
    let regions: Vec<String> = bus
        .ram_regions()
        .iter()
        .map(|r| format!("{:#x}..{:#x}", r.base(), r.base().saturating_add(r.size())))
        .collect();
    if regions.is_empty() {
        "empty".into()
    } else {
        regions.join(", ")
    }
}

/// Load the ELF image `bytes` (read from the file `name`) into `bus`'s RAM.
pub fn load_elf_bytes(name: &str, bytes: &[u8], bus: &Bus) -> Result<ElfImage, ElfError> {
    check_header(name, bytes)?;
    let path = || name.to_string();
    let elf = goblin::elf::Elf::parse(bytes).map_err(|e| ElfError::Malformed {
        path: path(),
        detail: e.to_string(),
    })?;
    if !elf.is_64 || !elf.little_endian || elf.header.e_machine != EM_RISCV {
        return Err(ElfError::WrongArch {
            path: path(),
            found: "not RV64 little-endian".into(),
        });
    }

    // First pass: check every segment, so that nothing is written for a bad file.
    let mut plan = Vec::new();
    for ph in elf.program_headers.iter().filter(|ph| ph.p_type == PT_LOAD) {
        if ph.p_memsz == 0 {
            continue;
        }
        if ph.p_filesz > ph.p_memsz {
            return Err(ElfError::Malformed {
                path: path(),
                detail: format!(
                    "segment at {:#x} has file size {:#x} larger than its memory size {:#x}",
                    ph.p_paddr, ph.p_filesz, ph.p_memsz
                ),
            });
        }
        let file_range = usize::try_from(ph.p_offset)
            .ok()
            .zip(usize::try_from(ph.p_filesz).ok())
            .and_then(|(off, size)| Some(off..off.checked_add(size)?))
            .filter(|r| r.end <= bytes.len());
        let Some(file_range) = file_range else {
            return Err(ElfError::Truncated {
                path: path(),
                what: "a loadable segment",
            });
        };
        let Some(ram) = bus.ram_at(ph.p_paddr, ph.p_memsz) else {
            return Err(ElfError::OutsideRam {
                path: path(),
                addr: ph.p_paddr,
                size: ph.p_memsz,
                ram: describe_ram(bus),
            });
        };
        plan.push((ram, ph.p_paddr, ph.p_memsz, file_range));
    }
    // Nothing to run: the hart would fault on its first fetch (found by fuzzing,
    // fuzz/corpus/boot_loaders/regress-elf-kernel-without-segments).
    if plan.is_empty() {
        return Err(ElfError::Malformed {
            path: path(),
            detail: "no loadable segment (PT_LOAD with a non-zero memory size)".into(),
        });
    }

    // Second pass: copy and zero-fill. The ranges were checked, so the writes succeed.
    let mut segments = Vec::with_capacity(plan.len());
    for (ram, addr, memsz, file_range) in plan {
        let data = bytes.get(file_range).unwrap_or(&[]);
        let mut ok = ram.write(addr, data);
        const ZEROS: [u8; 4096] = [0; 4096];
        let mut at = addr + data.len() as u64;
        let end = addr + memsz;
        while ok && at < end {
            let n = (end - at).min(ZEROS.len() as u64);
            ok = ram.write(at, &ZEROS[..n as usize]);
            at += n;
        }
        if !ok {
            return Err(ElfError::OutsideRam {
                path: path(),
                addr,
                size: memsz,
                ram: describe_ram(bus),
            });
        }
        segments.push(LoadedSegment { addr, size: memsz });
    }

    let mut image = ElfImage {
        entry: elf.entry,
        segments,
        ..ElfImage::default()
    };
    for sym in elf.syms.iter() {
        let slot = match elf.strtab.get_at(sym.st_name) {
            Some("tohost") => &mut image.tohost,
            Some("fromhost") => &mut image.fromhost,
            Some("begin_signature") => &mut image.begin_signature,
            Some("end_signature") => &mut image.end_signature,
            _ => continue,
        };
        *slot = Some(sym.st_value);
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use emu_devices::GuestRam;
    use std::sync::Arc;

    const RAM_BASE: u64 = 0x8000_0000;

    fn bus() -> Bus {
        let mut bus = Bus::new();
        bus.add_ram(Arc::new(GuestRam::new(RAM_BASE, 0x10_0000).unwrap()));
        bus
    }

    fn put16(v: &mut [u8], off: usize, x: u16) {
        v[off..off + 2].copy_from_slice(&x.to_le_bytes());
    }
    fn put32(v: &mut [u8], off: usize, x: u32) {
        v[off..off + 4].copy_from_slice(&x.to_le_bytes());
    }
    fn put64(v: &mut [u8], off: usize, x: u64) {
        v[off..off + 8].copy_from_slice(&x.to_le_bytes());
    }

    /// A minimal RV64 executable: one PT_LOAD segment at `load_addr` (8 bytes of code, 0x20
    /// bytes in memory), and a symbol table with `tohost` and `fromhost`.
    fn tiny_elf(load_addr: u64) -> Vec<u8> {
        // Layout: ehdr 0..64, phdr 64..120, code 120..128, strtab 128..146, symtab 152..224,
        // shstrtab 224..240, shdrs 240..496 (4 sections).
        let mut v = vec![0u8; 496];
        v[..4].copy_from_slice(b"\x7fELF");
        v[4] = ELFCLASS64;
        v[5] = ELFDATA2LSB;
        v[6] = 1; // EV_CURRENT
        put16(&mut v, 16, 2); // ET_EXEC
        put16(&mut v, 18, EM_RISCV);
        put32(&mut v, 20, 1);
        put64(&mut v, 24, load_addr); // e_entry
        put64(&mut v, 32, 64); // e_phoff
        put64(&mut v, 40, 240); // e_shoff
        put16(&mut v, 52, 64); // e_ehsize
        put16(&mut v, 54, 56); // e_phentsize
        put16(&mut v, 56, 1); // e_phnum
        put16(&mut v, 58, 64); // e_shentsize
        put16(&mut v, 60, 4); // e_shnum
        put16(&mut v, 62, 3); // e_shstrndx
                              // Program header.
        put32(&mut v, 64, PT_LOAD);
        put32(&mut v, 68, 5); // R+X
        put64(&mut v, 72, 120); // p_offset
        put64(&mut v, 80, load_addr); // p_vaddr
        put64(&mut v, 88, load_addr); // p_paddr
        put64(&mut v, 96, 8); // p_filesz
        put64(&mut v, 104, 0x20); // p_memsz
        put64(&mut v, 112, 8); // p_align
                               // Code: two non-zero words.
        v[120..128].copy_from_slice(&[0x13, 0, 0, 0, 0x6f, 0, 0, 0]);
        // .strtab
        v[128..146].copy_from_slice(b"\0tohost\0fromhost\0\0");
        // .symtab: null symbol, tohost at +0x10, fromhost at +0x18.
        for (i, (name, value)) in [(1u32, load_addr + 0x10), (8, load_addr + 0x18)]
            .iter()
            .enumerate()
        {
            let s = 152 + 24 * (i + 1);
            put32(&mut v, s, *name);
            v[s + 4] = 0x11; // STB_GLOBAL, STT_OBJECT
            put16(&mut v, s + 6, 1);
            put64(&mut v, s + 8, *value);
            put64(&mut v, s + 16, 8);
        }
        // .shstrtab
        v[224..240].copy_from_slice(b"\0.symtab\0.strtab");
        // Section headers: [0] null, [1] .symtab, [2] .strtab, [3] .shstrtab.
        let sh = |v: &mut Vec<u8>, i: usize, name, ty, off, size, link, entsize| {
            let s = 240 + 64 * i;
            put32(v, s, name);
            put32(v, s + 4, ty);
            put64(v, s + 24, off);
            put64(v, s + 32, size);
            put32(v, s + 40, link);
            put32(v, s + 44, if ty == 2 { 1 } else { 0 }); // sh_info: first global symbol
            put64(v, s + 56, entsize);
        };
        sh(&mut v, 1, 1, 2, 152, 72, 2, 24); // SHT_SYMTAB, link = .strtab
        sh(&mut v, 2, 9, 3, 128, 18, 0, 0); // SHT_STRTAB
        sh(&mut v, 3, 0, 3, 224, 16, 0, 0); // SHT_STRTAB (names: ".strtab" tail reused)
        v
    }

    #[test]
    fn loads_segment_and_symbols() {
        let bus = bus();
        // Dirty the bss part first, to see that it is zeroed.
        bus.write(RAM_BASE + 0x1008, &[0xff; 8]).unwrap();
        let img = load_elf_bytes("t.elf", &tiny_elf(RAM_BASE + 0x1000), &bus).unwrap();
        assert_eq!(img.entry, RAM_BASE + 0x1000);
        assert_eq!(img.tohost, Some(RAM_BASE + 0x1010));
        assert_eq!(img.fromhost, Some(RAM_BASE + 0x1018));
        assert_eq!(img.begin_signature, None);
        assert_eq!(
            img.segments,
            vec![LoadedSegment {
                addr: RAM_BASE + 0x1000,
                size: 0x20
            }]
        );
        let mut b = [0u8; 16];
        bus.read(RAM_BASE + 0x1000, &mut b).unwrap();
        assert_eq!(b, [0x13, 0, 0, 0, 0x6f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn segment_outside_ram_is_refused_before_writing() {
        let bus = bus();
        let err = load_elf_bytes("t.elf", &tiny_elf(0x1000), &bus).unwrap_err();
        assert!(
            matches!(err, ElfError::OutsideRam { addr: 0x1000, .. }),
            "{err}"
        );
        assert!(err.to_string().starts_with("'t.elf': segment at 0x1000"));
        // Straddling the end of RAM.
        let err = load_elf_bytes("t.elf", &tiny_elf(RAM_BASE + 0x10_0000 - 0x10), &bus);
        assert!(matches!(err, Err(ElfError::OutsideRam { .. })));
    }

    #[test]
    fn header_errors_are_named() {
        let bus = bus();
        let e = |b: &[u8]| load_elf_bytes("f", b, &bus).unwrap_err();
        assert_eq!(e(b""), ElfError::NotElf { path: "f".into() });
        assert_eq!(e(b"#!/bin/sh\n"), ElfError::NotElf { path: "f".into() });
        assert!(matches!(e(b"\x7fEL"), ElfError::Truncated { .. }));
        let mut v = tiny_elf(RAM_BASE);
        v[4] = 1;
        assert!(matches!(e(&v), ElfError::WrongArch { .. }));
        let mut v = tiny_elf(RAM_BASE);
        v[5] = 2;
        assert!(matches!(e(&v), ElfError::WrongArch { .. }));
        let mut v = tiny_elf(RAM_BASE);
        put16(&mut v, 18, 62); // EM_X86_64
        let msg = e(&v).to_string();
        assert!(
            msg.contains("not a RISC-V 64-bit") && msg.contains("X86_64"),
            "{msg}"
        );
        let mut v = tiny_elf(RAM_BASE);
        put64(&mut v, 96, 0x40); // p_filesz > p_memsz
        assert!(matches!(e(&v), ElfError::Malformed { .. }));
    }

    #[test]
    fn missing_file_is_named() {
        let err = load_elf(Path::new("/nonexistent/x.elf"), &bus()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'/nonexistent/x.elf': No such file or directory"
        );
    }

    /// Found by fuzzing: an ELF with nothing to load used to "load" as an empty range and the
    /// hart faulted on its first fetch.
    #[test]
    fn an_elf_without_loadable_segments_is_refused() {
        let mut none = tiny_elf(RAM_BASE);
        put16(&mut none, 56, 0); // e_phnum = 0
        let mut empty = tiny_elf(RAM_BASE);
        put64(&mut empty, 64 + 40, 0); // p_memsz = 0
        put64(&mut empty, 64 + 32, 0); // p_filesz = 0
        for (what, bytes) in [("no program headers", none), ("empty PT_LOAD", empty)] {
            match load_elf_bytes("k.elf", &bytes, &bus()) {
                Err(ElfError::Malformed { detail, .. }) => {
                    assert!(detail.contains("no loadable segment"), "{what}: {detail}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        assert!(load_elf_bytes("k.elf", &tiny_elf(RAM_BASE), &bus()).is_ok());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = tiny_elf(RAM_BASE);
        let bus = bus();
        for len in 0..full.len() {
            let r = load_elf_bytes("t", &full[..len], &bus);
            assert!(r.is_err(), "prefix of {len} bytes loaded");
        }
    }

    #[test]
    fn garbled_files_never_panic() {
        // xorshift64: deterministic, no dependency.
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let bus = bus();
        let full = tiny_elf(RAM_BASE);
        let mut loaded = 0;
        for _ in 0..5000 {
            let mut v = full.clone();
            for _ in 0..(next() % 8 + 1) {
                let at = (next() % v.len() as u64) as usize;
                v[at] = next() as u8;
            }
            if load_elf_bytes("g", &v, &bus).is_ok() {
                loaded += 1;
            }
        }
        // Some mutations hit padding and still load; most must not.
        assert!(loaded < 5000);
    }
}
