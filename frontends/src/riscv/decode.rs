//! Instruction decoding as data (STYLE.md habit 1, after QEMU's `insn32.decode`): each extension
//! contributes a table of [`InsnPattern`]s, and a 32-bit instruction word is matched against
//! them. Compressed (16-bit) instructions are expanded to their 32-bit equivalents first
//! (`rvc.rs`), so every lifter sees a 32-bit encoding.

use super::lift::LiftFn;

/// One instruction encoding: `insn & mask == bits` selects it.
#[derive(Clone, Copy, Debug)]
pub struct InsnPattern {
    /// The mnemonic, as in the manual (e.g. "addi", "fmadd.d").
    pub name: &'static str,
    pub mask: u32,
    pub bits: u32,
    pub lift: LiftFn,
}

impl InsnPattern {
    pub const fn new(name: &'static str, mask: u32, bits: u32, lift: LiftFn) -> Self {
        InsnPattern {
            name,
            mask,
            bits,
            lift,
        }
    }

    pub fn matches(&self, insn: u32) -> bool {
        insn & self.mask == self.bits
    }
}

/// Mask of an R-type encoding: funct7, funct3, opcode.
pub const MASK_R: u32 = 0xfe00_707f;
/// Mask of an I/S/B-type encoding: funct3, opcode.
pub const MASK_I: u32 = 0x0000_707f;
/// Mask of a U/J-type encoding: opcode.
pub const MASK_U: u32 = 0x0000_007f;
/// Mask of a 64-bit immediate shift: funct6, funct3, opcode (shamt is 6 bits).
pub const MASK_SHIFT64: u32 = 0xfc00_707f;
/// Mask of a fully-fixed R-type encoding with rs2 as part of the opcode (clz, sext.b, ...).
pub const MASK_R_RS2: u32 = 0xfff0_707f;
/// Mask of an instruction with no free fields (ecall, mret, ...).
pub const MASK_ALL: u32 = 0xffff_ffff;

/// Every 32-bit decode table of RV64GC + Zb[abcs] + Zicond + Zicsr + Zifencei + system.
pub fn tables() -> [&'static [InsnPattern]; 12] {
    use super::lift::{rva, rvfd, rvi, rvm, system, zb, zicond, zicsr};
    [
        rvi::RV64I,
        rvm::RV64M,
        rva::RV64A,
        rvfd::RV64F,
        rvfd::RV64D,
        zb::ZBA,
        zb::ZBB,
        zb::ZBC,
        zb::ZBS,
        zicond::ZICOND,
        zicsr::ZICSR,
        system::SYSTEM,
    ]
}

/// Decode index: one bucket per (major opcode bits 6:2, funct3), holding the patterns that can
/// match an instruction with those bits. Built once.
struct Index {
    buckets: Vec<Vec<&'static InsnPattern>>,
}

/// Bucket number of a 32-bit instruction word.
const fn bucket_of(insn: u32) -> usize {
    ((((insn >> 2) & 0x1f) << 3) | funct3(insn)) as usize
}

impl Index {
    fn build() -> Index {
        let mut buckets = vec![Vec::new(); 256];
        for table in tables() {
            for p in table {
                // A pattern belongs to every bucket whose key bits agree with its fixed bits.
                let key_mask = 0x707c;
                for (i, bucket) in buckets.iter_mut().enumerate() {
                    let key = ((i as u32 >> 3) << 2) | ((i as u32 & 7) << 12);
                    if (key ^ p.bits) & p.mask & key_mask == 0 {
                        bucket.push(p);
                    }
                }
            }
        }
        Index { buckets }
    }
}

/// Find the pattern matching a 32-bit instruction word (bits 1:0 = 11). Compressed
/// instructions are expanded by `rvc::expand` first.
pub fn decode(insn: u32) -> Option<&'static InsnPattern> {
    static INDEX: std::sync::OnceLock<Index> = std::sync::OnceLock::new();
    if insn & 3 != 3 {
        return None;
    }
    let index = INDEX.get_or_init(Index::build);
    index
        .buckets
        .get(bucket_of(insn))?
        .iter()
        .copied()
        .find(|p| p.matches(insn))
}

// Field extraction (Unprivileged ISA §2.2–2.3, Figures 2.2 and 2.4).

/// Destination register, bits 11:7.
pub const fn rd(insn: u32) -> u32 {
    (insn >> 7) & 0x1f
}
/// First source register, bits 19:15.
pub const fn rs1(insn: u32) -> u32 {
    (insn >> 15) & 0x1f
}
/// Second source register, bits 24:20.
pub const fn rs2(insn: u32) -> u32 {
    (insn >> 20) & 0x1f
}
/// Third source register (R4-type), bits 31:27.
pub const fn rs3(insn: u32) -> u32 {
    insn >> 27
}
/// funct3, bits 14:12 (also the rounding-mode field of FP instructions).
pub const fn funct3(insn: u32) -> u32 {
    (insn >> 12) & 7
}
/// I-type immediate, sign-extended.
pub const fn imm_i(insn: u32) -> i64 {
    (insn as i32 >> 20) as i64
}
/// S-type immediate, sign-extended.
pub const fn imm_s(insn: u32) -> i64 {
    (((insn as i32) >> 25) << 5 | ((insn >> 7) & 0x1f) as i32) as i64
}
/// B-type immediate, sign-extended (a multiple of 2).
pub const fn imm_b(insn: u32) -> i64 {
    let v = ((insn as i32) >> 31) << 12
        | (((insn >> 7) & 1) << 11) as i32
        | (((insn >> 25) & 0x3f) << 5) as i32
        | (((insn >> 8) & 0xf) << 1) as i32;
    v as i64
}
/// U-type immediate (bits 31:12 in place), sign-extended.
pub const fn imm_u(insn: u32) -> i64 {
    ((insn & 0xffff_f000) as i32) as i64
}
/// J-type immediate, sign-extended (a multiple of 2).
pub const fn imm_j(insn: u32) -> i64 {
    let v = ((insn as i32) >> 31) << 20
        | (insn & 0x000f_f000) as i32
        | (((insn >> 20) & 1) << 11) as i32
        | (((insn >> 21) & 0x3ff) << 1) as i32;
    v as i64
}
