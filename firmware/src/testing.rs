//! Builds small ELF-64 images in memory, for tests of the loader and of the emu binary that must
//! not depend on a cross compiler.

/// `e_machine` of RISC-V.
pub const EM_RISCV: u16 = goblin::elf::header::EM_RISCV;

/// One loadable segment: physical (= virtual) address, file bytes, and memory size
/// (`>= bytes.len()`; the rest is zero-filled by the loader).
pub struct Segment<'a> {
    pub addr: u64,
    pub bytes: &'a [u8],
    pub memsz: u64,
}

fn align8(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
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

/// An executable ELF-64 little-endian file for `machine` with `entry`, the given segments and a
/// symbol table holding `symbols` (name, value).
pub fn build_elf(
    machine: u16,
    entry: u64,
    segments: &[Segment],
    symbols: &[(&str, u64)],
) -> Vec<u8> {
    let phnum = segments.len();
    let mut v = vec![0u8; 64 + 56 * phnum];
    v[..4].copy_from_slice(b"\x7fELF");
    v[4] = 2; // ELFCLASS64
    v[5] = 1; // ELFDATA2LSB
    v[6] = 1; // EV_CURRENT
    put16(&mut v, 16, 2); // ET_EXEC
    put16(&mut v, 18, machine);
    put32(&mut v, 20, 1);
    put64(&mut v, 24, entry);
    put64(&mut v, 32, 64);
    put16(&mut v, 52, 64);
    put16(&mut v, 54, 56);
    put16(&mut v, 56, phnum as u16);

    for (i, s) in segments.iter().enumerate() {
        align8(&mut v);
        let off = v.len() as u64;
        v.extend_from_slice(s.bytes);
        let ph = 64 + 56 * i;
        put32(&mut v, ph, 1); // PT_LOAD
        put32(&mut v, ph + 4, 7); // RWX
        put64(&mut v, ph + 8, off);
        put64(&mut v, ph + 16, s.addr);
        put64(&mut v, ph + 24, s.addr);
        put64(&mut v, ph + 32, s.bytes.len() as u64);
        put64(&mut v, ph + 40, s.memsz.max(s.bytes.len() as u64));
        put64(&mut v, ph + 48, 8);
    }

    // .strtab
    let strtab_off = v.len();
    v.push(0);
    let mut name_offs = Vec::new();
    for (name, _) in symbols {
        name_offs.push((v.len() - strtab_off) as u32);
        v.extend_from_slice(name.as_bytes());
        v.push(0);
    }
    let strtab_size = v.len() - strtab_off;
    // .symtab: the null symbol, then one global object per symbol.
    align8(&mut v);
    let symtab_off = v.len();
    v.extend_from_slice(&[0u8; 24]);
    for ((_, value), name) in symbols.iter().zip(&name_offs) {
        let s = v.len();
        v.extend_from_slice(&[0u8; 24]);
        put32(&mut v, s, *name);
        v[s + 4] = 0x11; // STB_GLOBAL, STT_OBJECT
        put16(&mut v, s + 6, 1);
        put64(&mut v, s + 8, *value);
        put64(&mut v, s + 16, 8);
    }
    let symtab_size = v.len() - symtab_off;
    // .shstrtab
    let shstrtab_off = v.len();
    v.extend_from_slice(b"\0.symtab\0.strtab\0.shstrtab\0");
    let shstrtab_size = v.len() - shstrtab_off;
    // Section headers: null, .symtab, .strtab, .shstrtab.
    align8(&mut v);
    let shoff = v.len();
    v.extend_from_slice(&[0u8; 64 * 4]);
    let sections = [
        (1u32, 2u32, symtab_off, symtab_size, 2u32, 1u32, 24u64),
        (9, 3, strtab_off, strtab_size, 0, 0, 0),
        (17, 3, shstrtab_off, shstrtab_size, 0, 0, 0),
    ];
    for (i, (name, ty, off, size, link, info, entsize)) in sections.into_iter().enumerate() {
        let s = shoff + 64 * (i + 1);
        put32(&mut v, s, name);
        put32(&mut v, s + 4, ty);
        put64(&mut v, s + 24, off as u64);
        put64(&mut v, s + 32, size as u64);
        put32(&mut v, s + 40, link);
        put32(&mut v, s + 44, info);
        put64(&mut v, s + 56, entsize);
    }
    put64(&mut v, 40, shoff as u64);
    put16(&mut v, 58, 64);
    put16(&mut v, 60, 4);
    put16(&mut v, 62, 3);
    v
}

/// RV64 encodings for the few instructions test programs need (Unprivileged ISA ch. 2 and 34).
pub mod rv {
    fn r(rd: u32) -> u32 {
        (rd & 31) << 7
    }
    /// `addi rd, rs1, imm`
    pub fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
        ((imm as u32 & 0xfff) << 20) | ((rs1 & 31) << 15) | r(rd) | 0x13
    }
    /// `auipc rd, imm20` (rd = pc + (imm20 << 12))
    pub fn auipc(rd: u32, imm20: u32) -> u32 {
        ((imm20 & 0xf_ffff) << 12) | r(rd) | 0x17
    }
    /// `sd rs2, imm(rs1)`
    pub fn sd(rs2: u32, rs1: u32, imm: i32) -> u32 {
        let imm = imm as u32 & 0xfff;
        ((imm >> 5) << 25)
            | ((rs2 & 31) << 20)
            | ((rs1 & 31) << 15)
            | (3 << 12)
            | ((imm & 31) << 7)
            | 0x23
    }
    /// An I-type instruction (`opcode`, `funct3`).
    pub fn itype(opcode: u32, funct3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
        ((imm as u32 & 0xfff) << 20) | ((rs1 & 31) << 15) | ((funct3 & 7) << 12) | r(rd) | opcode
    }
    /// `slli rd, rs1, shamt`
    pub fn slli(rd: u32, rs1: u32, shamt: u32) -> u32 {
        itype(0x13, 1, rd, rs1, (shamt & 63) as i32)
    }
    /// `ori rd, rs1, imm`
    pub fn ori(rd: u32, rs1: u32, imm: i32) -> u32 {
        itype(0x13, 6, rd, rs1, imm)
    }
    /// `csrrw x0, csr, rs1` (`csrw`)
    pub fn csrw(csr: u32, rs1: u32) -> u32 {
        itype(0x73, 1, 0, rs1, csr as i32)
    }
    /// `csrrs rd, csr, x0` (`csrr`)
    pub fn csrr(rd: u32, csr: u32) -> u32 {
        itype(0x73, 2, rd, 0, csr as i32)
    }
    pub const CSR_MTVEC: u32 = 0x305;
    pub const CSR_MCAUSE: u32 = 0x342;
    /// `vsetvli x0, x0, e8, m1`: a V-extension encoding, which an RV64GC emu does not decode
    /// (the "unimplemented encoding" path of `--strict`).
    pub const VSETVLI_ZERO: u32 = 0x0000_7057;
    /// `jal x0, 0`: an infinite loop.
    pub const SPIN: u32 = 0x0000_006f;
    /// `wfi`
    pub const WFI: u32 = 0x1050_0073;

    /// Little-endian bytes of a program.
    pub fn assemble(insns: &[u32]) -> Vec<u8> {
        insns.iter().flat_map(|i| i.to_le_bytes()).collect()
    }
}

/// A RISC-V program at 0x8000_0000 that writes `exit_code` to HTIF (tohost at 0x8000_1000)
/// and spins; its ELF has `tohost` and `fromhost` symbols.
pub fn htif_exit_program(exit_code: u64) -> Vec<u8> {
    const T0: u32 = 5;
    const T1: u32 = 6;
    let value = (exit_code << 1) | 1;
    let code = rv::assemble(&[
        rv::auipc(T0, 1),
        rv::addi(T1, 0, value as i32),
        rv::sd(T1, T0, 0),
        rv::SPIN,
    ]);
    build_elf(
        EM_RISCV,
        0x8000_0000,
        &[
            Segment {
                addr: 0x8000_0000,
                bytes: &code,
                memsz: 0x1000,
            },
            Segment {
                addr: 0x8000_1000,
                bytes: &[0; 16],
                memsz: 0x1000,
            },
        ],
        &[("tohost", 0x8000_1000), ("fromhost", 0x8000_1008)],
    )
}

/// A RISC-V program at 0x8000_0000 with HTIF symbols (tohost at 0x8000_1000) whose code is
/// `body` followed by a trap handler that exits with code `mcause`. `mtvec` is set to the
/// handler before `body` runs.
pub fn trap_exit_program(body: &[u32]) -> Vec<u8> {
    use rv::*;
    const T0: u32 = 5;
    const T1: u32 = 6;
    // Prologue: t0 = handler address = pc + 12 + 4 * body.len(), then mtvec = t0.
    let handler_off = 12 + 4 * body.len() as i32;
    let mut code = vec![auipc(T0, 0), addi(T0, T0, handler_off), csrw(CSR_MTVEC, T0)];
    code.extend_from_slice(body);
    code.push(SPIN);
    // Handler at 0x8000_0000 + handler_off + 4 (after the SPIN): exit with mcause.
    let handler_pc = handler_off as u64 + 4;
    code[1] = addi(T0, T0, handler_pc as i32);
    code.extend_from_slice(&[
        csrr(T1, CSR_MCAUSE),
        slli(T1, T1, 1),
        ori(T1, T1, 1),
        auipc(T0, 1),
        // auipc above is at handler_pc + 12: tohost = 0x8000_1000 = t0 - (handler_pc + 12).
        sd(T1, T0, -((handler_pc + 12) as i32)),
        SPIN,
    ]);
    let code = assemble(&code);
    build_elf(
        EM_RISCV,
        0x8000_0000,
        &[
            Segment {
                addr: 0x8000_0000,
                bytes: &code,
                memsz: 0x1000,
            },
            Segment {
                addr: 0x8000_1000,
                bytes: &[0; 16],
                memsz: 0x1000,
            },
        ],
        &[("tohost", 0x8000_1000), ("fromhost", 0x8000_1008)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::load_elf_bytes;
    use emu_devices::{Bus, GuestRam};
    use std::sync::Arc;

    #[test]
    fn built_programs_load() {
        let mut bus = Bus::new();
        bus.add_ram(Arc::new(GuestRam::new(0x8000_0000, 0x10000).unwrap()));
        let img = load_elf_bytes("p", &htif_exit_program(3), &bus).unwrap();
        assert_eq!(img.entry, 0x8000_0000);
        assert_eq!(img.tohost, Some(0x8000_1000));
        assert_eq!(img.fromhost, Some(0x8000_1008));
        let mut w = [0u8; 4];
        bus.read(0x8000_0004, &mut w).unwrap();
        // addi t1, x0, 7
        assert_eq!(u32::from_le_bytes(w), 0x0070_0313);
        bus.read(0x8000_0008, &mut w).unwrap();
        // sd t1, 0(t0)
        assert_eq!(u32::from_le_bytes(w), 0x0062_b023);
        bus.read(0x8000_0000, &mut w).unwrap();
        // auipc t0, 1
        assert_eq!(u32::from_le_bytes(w), 0x0000_1297);
    }
}
