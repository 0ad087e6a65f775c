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

/// An encoding space of a ratified extension emu does not implement (yet). Decoding misses
/// inside one of these are *emulator gaps* (logged once, `--strict` makes them host errors);
/// every other miss is an architecturally reserved encoding and simply illegal.
#[derive(Clone, Copy, Debug)]
pub struct ExtensionGap {
    /// The extension, as the manual names it.
    pub extension: &'static str,
    pub mask: u32,
    pub bits: u32,
}

const fn gap(extension: &'static str, mask: u32, bits: u32) -> ExtensionGap {
    ExtensionGap {
        extension,
        mask,
        bits,
    }
}

/// Opcode spaces of extensions emu lacks (opcode map: Unprivileged ISA ch. 34, Table 34.1; V
/// ch. 31; H: Privileged ISA ch. 8; Zfh ch. 20; Q ch. 19; CMO, Zacas, Zawrs, Svinval).
pub static EXTENSION_GAPS: &[ExtensionGap] = &[
    gap("V", 0x0000_007f, 0x0000_0057),
    gap("V", 0x0000_707f, 0x0000_0007),
    gap("V", 0x0000_707f, 0x0000_5007),
    gap("V", 0x0000_707f, 0x0000_6007),
    gap("V", 0x0000_707f, 0x0000_7007),
    gap("V", 0x0000_707f, 0x0000_0027),
    gap("V", 0x0000_707f, 0x0000_5027),
    gap("V", 0x0000_707f, 0x0000_6027),
    gap("V", 0x0000_707f, 0x0000_7027),
    gap("Zfh", 0x0000_707f, 0x0000_1007),
    gap("Zfh", 0x0000_707f, 0x0000_1027),
    gap("Zfh", 0x0600_007f, 0x0400_0053),
    gap("Zfh", 0x0600_0073, 0x0400_0043),
    gap("Zfhmin", 0xfff0_007f, 0x4020_0053),
    gap("Zfhmin", 0xfff0_007f, 0x4220_0053),
    gap("Q", 0x0000_707f, 0x0000_4007),
    gap("Q", 0x0000_707f, 0x0000_4027),
    gap("Q", 0x0600_007f, 0x0600_0053),
    gap("Q", 0x0600_0073, 0x0600_0043),
    gap("Zfa", 0xfff0_007f, 0xf010_0053),
    gap("Zfa", 0xfff0_007f, 0xf210_0053),
    gap("H", 0x0000_707f, 0x0000_4073),
    gap("H", 0xfe00_7fff, 0x2200_0073),
    gap("H", 0xfe00_7fff, 0x6200_0073),
    gap("Zicbom/Zicboz", 0x0000_707f, 0x0000_200f),
    gap("Zacas", 0xf800_607f, 0x2800_202f),
    gap("Zawrs", 0xffff_ffff, 0x00d0_0073),
    gap("Zawrs", 0xffff_ffff, 0x01d0_0073),
    gap("Svinval", 0xfe00_7fff, 0x1600_0073),
    gap("Svinval", 0xffff_ffff, 0x1800_0073),
    gap("Svinval", 0xffff_ffff, 0x1810_0073),
];

/// The extension whose encoding space holds `insn`, if emu does not implement it.
pub fn extension_gap(insn: u32) -> Option<&'static str> {
    EXTENSION_GAPS
        .iter()
        .find(|g| insn & g.mask == g.bits)
        .map(|g| g.extension)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The gap table never claims an implemented encoding: a word inside a gap never decodes.
    #[test]
    fn extension_gaps_do_not_overlap_implemented_encodings() {
        let mut x: u32 = 0x9e37_79b9;
        for g in EXTENSION_GAPS {
            for _ in 0..20_000 {
                // xorshift32: deterministic free bits for the gap's don't-care positions.
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let insn = (x & !g.mask) | g.bits;
                assert!(
                    decode(insn).is_none(),
                    "{insn:#010x} in the {} gap decodes as {:?}",
                    g.extension,
                    decode(insn).map(|p| p.name)
                );
            }
        }
        assert_eq!(extension_gap(0x0000_7057), Some("V")); // vsetvli
        assert_eq!(extension_gap(0xffff_ffff), None); // reserved (>= 80-bit encoding space)
        assert_eq!(extension_gap(0x0000_000b), None); // custom-0: vendor, illegal here
    }

    /// Encodings and mnemonics from `riscv64-unknown-elf-objdump -d -M no-aliases` (binutils
    /// 2.40) of an assembled listing of every RV64GC/Zb*/system instruction form, aq/rl
    /// suffixes included.
    const OBJDUMP: &[(u32, &str)] = &[
        (0xfffff2b7, "lui"),
        (0x12345f97, "auipc"),
        (0x001000ef, "jal"),
        (0xffb18167, "jalr"),
        (0x80208063, "beq"),
        (0x7e419fe3, "bne"),
        (0x0062c463, "blt"),
        (0xfe83dce3, "bge"),
        (0x00a4e863, "bltu"),
        (0x02c5f063, "bgeu"),
        (0xfff10083, "lb"),
        (0x7ff21183, "lh"),
        (0x80032283, "lw"),
        (0x00843383, "ld"),
        (0x00154483, "lbu"),
        (0x00265583, "lhu"),
        (0x00476683, "lwu"),
        (0xfe110fa3, "sb"),
        (0x7e321fa3, "sh"),
        (0x80532023, "sw"),
        (0x00743423, "sd"),
        (0x80010093, "addi"),
        (0x00522193, "slti"),
        (0xfff33293, "sltiu"),
        (0x7ff44393, "xori"),
        (0x00156493, "ori"),
        (0xff067593, "andi"),
        (0x03f11093, "slli"),
        (0x00125193, "srli"),
        (0x42135293, "srai"),
        (0x003100b3, "add"),
        (0x40628233, "sub"),
        (0x009413b3, "sll"),
        (0x00c5a533, "slt"),
        (0x00f736b3, "sltu"),
        (0x0128c833, "xor"),
        (0x015a59b3, "srl"),
        (0x418bdb33, "sra"),
        (0x01bd6cb3, "or"),
        (0x01eefe33, "and"),
        (0xfff1009b, "addiw"),
        (0x01f2119b, "slliw"),
        (0x0003529b, "srliw"),
        (0x4114539b, "sraiw"),
        (0x003100bb, "addw"),
        (0x4062823b, "subw"),
        (0x009413bb, "sllw"),
        (0x00c5d53b, "srlw"),
        (0x40f756bb, "sraw"),
        (0x0330000f, "fence"),
        (0x8330000f, "fence.tso"),
        (0x0000100f, "fence.i"),
        (0x00000073, "ecall"),
        (0x00100073, "ebreak"),
        (0x10200073, "sret"),
        (0x30200073, "mret"),
        (0x10500073, "wfi"),
        (0x12000073, "sfence.vma"),
        (0x12628073, "sfence.vma"),
        (0x300110f3, "csrrw"),
        (0x100021f3, "csrrs"),
        (0x30423073, "csrrc"),
        (0x003fd2f3, "csrrwi"),
        (0x00206373, "csrrsi"),
        (0x7c00f3f3, "csrrci"),
        (0x023100b3, "mul"),
        (0x02629233, "mulh"),
        (0x029423b3, "mulhsu"),
        (0x02c5b533, "mulhu"),
        (0x02f746b3, "div"),
        (0x0328d833, "divu"),
        (0x035a69b3, "rem"),
        (0x038bfb33, "remu"),
        (0x03bd0cbb, "mulw"),
        (0x03eece3b, "divw"),
        (0x023150bb, "divuw"),
        (0x0262e23b, "remw"),
        (0x029473bb, "remuw"),
        (0x100120af, "lr.w"),
        (0x1842a1af, "sc.w"),
        (0x0874232f, "amoswap.w"),
        (0x04a5a4af, "amoadd.w.aq"),
        (0x2221a0af, "amoxor.w.rl"),
        (0x6621a0af, "amoand.w.aqrl"),
        (0x4021a0af, "amoor.w"),
        (0x8021a0af, "amomin.w"),
        (0xa021a0af, "amomax.w"),
        (0xc021a0af, "amominu.w"),
        (0xe021a0af, "amomaxu.w"),
        (0x140130af, "lr.d.aq"),
        (0x1a42b1af, "sc.d.rl"),
        (0x0874332f, "amoswap.d"),
        (0x00a5b4af, "amoadd.d"),
        (0x2021b0af, "amoxor.d"),
        (0x6021b0af, "amoand.d"),
        (0x4021b0af, "amoor.d"),
        (0x8021b0af, "amomin.d"),
        (0xa021b0af, "amomax.d"),
        (0xc021b0af, "amominu.d"),
        (0xe021b0af, "amomaxu.d"),
        (0x083100bb, "add.uw"),
        (0x203120b3, "sh1add"),
        (0x203140b3, "sh2add"),
        (0x203160b3, "sh3add"),
        (0x203120bb, "sh1add.uw"),
        (0x203140bb, "sh2add.uw"),
        (0x203160bb, "sh3add.uw"),
        (0x0bf1109b, "slli.uw"),
        (0x403170b3, "andn"),
        (0x403160b3, "orn"),
        (0x403140b3, "xnor"),
        (0x60011093, "clz"),
        (0x6001109b, "clzw"),
        (0x60111093, "ctz"),
        (0x6011109b, "ctzw"),
        (0x60211093, "cpop"),
        (0x6021109b, "cpopw"),
        (0x0a3160b3, "max"),
        (0x0a3170b3, "maxu"),
        (0x0a3140b3, "min"),
        (0x0a3150b3, "minu"),
        (0x60411093, "sext.b"),
        (0x60511093, "sext.h"),
        (0x080140bb, "zext.h"),
        (0x603110b3, "rol"),
        (0x603110bb, "rolw"),
        (0x603150b3, "ror"),
        (0x603150bb, "rorw"),
        (0x63f15093, "rori"),
        (0x61f1509b, "roriw"),
        (0x28715093, "orc.b"),
        (0x6b815093, "rev8"),
        (0x0a3110b3, "clmul"),
        (0x0a3130b3, "clmulh"),
        (0x0a3120b3, "clmulr"),
        (0x483110b3, "bclr"),
        (0x4bf11093, "bclri"),
        (0x483150b3, "bext"),
        (0x48515093, "bexti"),
        (0x683110b3, "binv"),
        (0x6a011093, "binvi"),
        (0x283110b3, "bset"),
        (0x28011093, "bseti"),
        (0x00412087, "flw"),
        (0xfe323c27, "fsd"),
        (0x023170d3, "fadd.d"),
        (0x203170c3, "fmadd.s"),
        (0xc22170d3, "fcvt.l.d"),
        (0xe20100d3, "fmv.x.d"),
        // Zicond (binutils 2.40 predates it): czero.eqz/nez x1, x2, x3.
        (0x0e3150b3, "czero.eqz"),
        (0x0e3170b3, "czero.nez"),
    ];

    /// The table's mnemonic for an objdump mnemonic: AMO ordering suffixes are not part of
    /// the name, and fence.tso is a FENCE encoding.
    fn base_name(objdump: &str) -> &str {
        let name = objdump
            .strip_suffix(".aqrl")
            .or_else(|| objdump.strip_suffix(".aq"))
            .or_else(|| objdump.strip_suffix(".rl"))
            .unwrap_or(objdump);
        if name == "fence.tso" {
            "fence"
        } else {
            name
        }
    }

    #[test]
    fn decodes_objdump_listing() {
        for &(insn, name) in OBJDUMP {
            let got = decode(insn).map(|p| p.name);
            assert_eq!(got, Some(base_name(name)), "{insn:#010x}");
        }
    }

    #[test]
    fn unimplemented_and_non_32_bit_encodings_miss() {
        for insn in [
            0x0000_0000,           // bits 1:0 = 00: compressed
            0xffff_ffff,           // longer-instruction prefix
            0x0800_4033,           // Zbkb pack
            0x6030_1013,           // OP-IMM funct7 0110000 with rs2 = 3: no Zbb op
            0x0000_0077,           // OP-P (P extension)
            0x0010_0063 | 2 << 12, // BRANCH funct3 = 010 is reserved
            0x0000_7003,           // LOAD funct3 = 111 is reserved
            0x0020_0073,           // uret (N extension, removed)
        ] {
            assert!(
                decode(insn).is_none(),
                "{insn:#010x} -> {:?}",
                decode(insn).map(|p| p.name)
            );
        }
    }

    /// Spike's check-opcode-overlap: no two patterns of the merged tables match a common
    /// encoding (none is listed as deliberate), and every pattern's bits lie inside its mask.
    #[test]
    fn no_overlap_in_merged_tables() {
        let all: Vec<&InsnPattern> = tables().iter().flat_map(|t| t.iter()).collect();
        assert!(all.len() > 200, "only {} patterns", all.len());
        for p in &all {
            assert_eq!(p.bits & !p.mask, 0, "{} has bits outside its mask", p.name);
            assert_eq!(p.bits & 3, 3, "{} is not a 32-bit encoding", p.name);
        }
        for (i, p) in all.iter().enumerate() {
            for q in all.iter().skip(i + 1) {
                let common = p.mask & q.mask;
                assert!(
                    (p.bits ^ q.bits) & common != 0,
                    "{} ({:#010x}/{:#010x}) overlaps {} ({:#010x}/{:#010x})",
                    p.name,
                    p.bits,
                    p.mask,
                    q.name,
                    q.bits,
                    q.mask
                );
            }
        }
    }

    /// The bucket index finds exactly what a linear scan of the tables finds.
    #[test]
    fn index_agrees_with_linear_scan() {
        let all: Vec<&InsnPattern> = tables().iter().flat_map(|t| t.iter()).collect();
        let linear = |insn: u32| all.iter().find(|p| p.matches(insn)).map(|p| p.name);
        for p in &all {
            assert_eq!(decode(p.bits).map(|q| q.name), Some(p.name));
            assert_eq!(
                decode(p.bits | !p.mask | 3).map(|q| q.name),
                linear(p.bits | !p.mask | 3)
            );
        }
        // xorshift64: deterministic pseudo-random words, biased to known opcodes by the
        // patterns' fixed bits.
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let p = all[n % all.len()];
            let insn = ((s as u32) & !p.mask) | p.bits;
            let insn = if n % 3 == 0 {
                (s >> 32) as u32 | 3
            } else {
                insn
            };
            assert_eq!(decode(insn).map(|q| q.name), linear(insn), "{insn:#010x}");
        }
    }

    #[test]
    fn immediates() {
        assert_eq!(imm_i(0xfff1_0083), -1); // lb x1, -1(x2)
        assert_eq!(imm_s(0xfe11_0fa3), -1); // sb x1, -1(x2)
        assert_eq!(imm_s(0x7e32_1fa3), 2047);
        assert_eq!(imm_b(0x7e41_9fe3), 4094); // bne x3, x4, .+4094
        assert_eq!(imm_b(0x8020_8063), -4096); // beq x1, x2, .-4096
        assert_eq!(imm_b(0x0062_c463), 8); // blt x5, x6, .+8
        assert_eq!(imm_u(0xffff_f2b7), -4096);
        assert_eq!(imm_j(0x0010_00ef), 2048); // jal x1, .+2048
        assert_eq!(imm_j(0x801f_f06f), -2048);
        assert_eq!(
            (rd(0x0033_8533), rs1(0x0033_8533), rs2(0x0033_8533)),
            (10, 7, 3)
        );
    }
}
