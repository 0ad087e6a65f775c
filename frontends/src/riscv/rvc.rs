//! "C" extension: compressed instructions (Unprivileged ISA ch. 16, RVC opcode map Table 16.5
//! and the instruction listings of §16.8). Each 16-bit encoding is expanded to the 32-bit
//! instruction it stands for, so lifters only see 32-bit words (as QEMU's `insn16.decode`
//! does). Reserved encodings, including the all-zero halfword, expand to `None` and raise
//! illegal instruction; HINTs expand to their (architecturally no-op) 32-bit forms.

/// Bits `hi..=lo` of a halfword, shifted down.
const fn bits(insn: u16, hi: u32, lo: u32) -> u32 {
    ((insn as u32) >> lo) & ((1 << (hi - lo + 1)) - 1)
}

/// Bit `i` of a halfword, placed at bit `to`.
const fn bit_to(insn: u16, i: u32, to: u32) -> u32 {
    (((insn as u32) >> i) & 1) << to
}

/// Sign-extend the low `width` bits of `v`.
const fn sext(v: u32, width: u32) -> i32 {
    ((v << (32 - width)) as i32) >> (32 - width)
}

// 32-bit encoders (Unprivileged ISA §2.3, Figure 2.3).

const OP_LOAD: u32 = 0x03;
const OP_LOAD_FP: u32 = 0x07;
const OP_IMM: u32 = 0x13;
const OP_IMM_32: u32 = 0x1b;
const OP_STORE: u32 = 0x23;
const OP_STORE_FP: u32 = 0x27;
const OP: u32 = 0x33;
const OP_LUI: u32 = 0x37;
const OP_32: u32 = 0x3b;
const OP_BRANCH: u32 = 0x63;
const OP_JALR: u32 = 0x67;
const OP_JAL: u32 = 0x6f;
const EBREAK: u32 = 0x0010_0073;

const fn enc_r(funct7: u32, rs2: u32, rs1: u32, funct3: u32, rd: u32, opcode: u32) -> u32 {
    funct7 << 25 | rs2 << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode
}

const fn enc_i(imm: i32, rs1: u32, funct3: u32, rd: u32, opcode: u32) -> u32 {
    ((imm as u32) & 0xfff) << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode
}

const fn enc_s(imm: i32, rs2: u32, rs1: u32, funct3: u32, opcode: u32) -> u32 {
    let imm = imm as u32;
    ((imm >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | funct3 << 12 | (imm & 0x1f) << 7 | opcode
}

const fn enc_b(imm: i32, rs2: u32, rs1: u32, funct3: u32) -> u32 {
    let imm = imm as u32;
    ((imm >> 12) & 1) << 31
        | ((imm >> 5) & 0x3f) << 25
        | rs2 << 20
        | rs1 << 15
        | funct3 << 12
        | ((imm >> 1) & 0xf) << 8
        | ((imm >> 11) & 1) << 7
        | OP_BRANCH
}

const fn enc_u(imm: i32, rd: u32, opcode: u32) -> u32 {
    (imm as u32 & 0xffff_f000) | rd << 7 | opcode
}

const fn enc_j(imm: i32, rd: u32) -> u32 {
    let imm = imm as u32;
    ((imm >> 20) & 1) << 31
        | ((imm >> 1) & 0x3ff) << 21
        | ((imm >> 11) & 1) << 20
        | ((imm >> 12) & 0xff) << 12
        | rd << 7
        | OP_JAL
}

// Compressed fields (§16.2, Table 16.1 and Figure 16.1).

/// rd/rs1 of the CR/CI formats, bits 11:7.
const fn rd_full(insn: u16) -> u32 {
    bits(insn, 11, 7)
}
/// rs2 of the CR/CSS formats, bits 6:2.
const fn rs2_full(insn: u16) -> u32 {
    bits(insn, 6, 2)
}
/// rs1' / rd' of the CL/CS/CA/CB formats, bits 9:7 (x8..x15).
const fn rs1_prime(insn: u16) -> u32 {
    bits(insn, 9, 7) + 8
}
/// rd' / rs2' of the CIW/CL/CS/CA formats, bits 4:2 (x8..x15).
const fn rs2_prime(insn: u16) -> u32 {
    bits(insn, 4, 2) + 8
}
/// The 6-bit signed immediate of CI / CB-ALU: imm[5] = bit 12, imm[4:0] = bits 6:2.
const fn imm_ci(insn: u16) -> i32 {
    sext(bit_to(insn, 12, 5) | bits(insn, 6, 2), 6)
}
/// The 6-bit shift amount: shamt[5] = bit 12, shamt[4:0] = bits 6:2.
const fn shamt_ci(insn: u16) -> u32 {
    bit_to(insn, 12, 5) | bits(insn, 6, 2)
}
/// CL/CS word offset: uimm[5:3] = 12:10, uimm[2] = 6, uimm[6] = 5.
const fn uimm_cl_w(insn: u16) -> i32 {
    (bits(insn, 12, 10) << 3 | bit_to(insn, 6, 2) | bit_to(insn, 5, 6)) as i32
}
/// CL/CS doubleword offset: uimm[5:3] = 12:10, uimm[7:6] = 6:5.
const fn uimm_cl_d(insn: u16) -> i32 {
    (bits(insn, 12, 10) << 3 | bits(insn, 6, 5) << 6) as i32
}
/// c.lwsp offset: uimm[5] = 12, uimm[4:2] = 6:4, uimm[7:6] = 3:2.
const fn uimm_lwsp(insn: u16) -> i32 {
    (bit_to(insn, 12, 5) | bits(insn, 6, 4) << 2 | bits(insn, 3, 2) << 6) as i32
}
/// c.ldsp/c.fldsp offset: uimm[5] = 12, uimm[4:3] = 6:5, uimm[8:6] = 4:2.
const fn uimm_ldsp(insn: u16) -> i32 {
    (bit_to(insn, 12, 5) | bits(insn, 6, 5) << 3 | bits(insn, 4, 2) << 6) as i32
}
/// c.swsp offset: uimm[5:2] = 12:9, uimm[7:6] = 8:7.
const fn uimm_swsp(insn: u16) -> i32 {
    (bits(insn, 12, 9) << 2 | bits(insn, 8, 7) << 6) as i32
}
/// c.sdsp/c.fsdsp offset: uimm[5:3] = 12:10, uimm[8:6] = 9:7.
const fn uimm_sdsp(insn: u16) -> i32 {
    (bits(insn, 12, 10) << 3 | bits(insn, 9, 7) << 6) as i32
}
/// c.addi4spn: nzuimm[5:4] = 12:11, nzuimm[9:6] = 10:7, nzuimm[2] = 6, nzuimm[3] = 5.
const fn nzuimm_addi4spn(insn: u16) -> i32 {
    (bits(insn, 12, 11) << 4 | bits(insn, 10, 7) << 6 | bit_to(insn, 6, 2) | bit_to(insn, 5, 3))
        as i32
}
/// c.addi16sp: nzimm[9] = 12, nzimm[4] = 6, nzimm[6] = 5, nzimm[8:7] = 4:3, nzimm[5] = 2.
const fn nzimm_addi16sp(insn: u16) -> i32 {
    sext(
        bit_to(insn, 12, 9)
            | bit_to(insn, 6, 4)
            | bit_to(insn, 5, 6)
            | bits(insn, 4, 3) << 7
            | bit_to(insn, 2, 5),
        10,
    )
}
/// c.j offset: [11|4|9:8|10|6|7|3:1|5] = bits 12:2.
const fn imm_cj(insn: u16) -> i32 {
    sext(
        bit_to(insn, 12, 11)
            | bit_to(insn, 11, 4)
            | bits(insn, 10, 9) << 8
            | bit_to(insn, 8, 10)
            | bit_to(insn, 7, 6)
            | bit_to(insn, 6, 7)
            | bits(insn, 5, 3) << 1
            | bit_to(insn, 2, 5),
        12,
    )
}
/// c.beqz/c.bnez offset: [8|4:3] = 12:10, [7:6|2:1|5] = 6:2.
const fn imm_cb(insn: u16) -> i32 {
    sext(
        bit_to(insn, 12, 8)
            | bits(insn, 11, 10) << 3
            | bits(insn, 6, 5) << 6
            | bits(insn, 4, 3) << 1
            | bit_to(insn, 2, 5),
        9,
    )
}

/// Expand a 16-bit compressed instruction (bits 1:0 != 11) to its 32-bit equivalent (RV64C,
/// with the F/D loads and stores); `None` for reserved encodings.
pub fn expand(insn: u16) -> Option<u32> {
    let funct3 = bits(insn, 15, 13);
    match (insn & 3, funct3) {
        (0, _) => expand_q0(insn, funct3),
        (1, _) => expand_q1(insn, funct3),
        (2, _) => expand_q2(insn, funct3),
        _ => None,
    }
}

/// Quadrant 0: stack-pointer-based addi and the register-based loads/stores.
fn expand_q0(insn: u16, funct3: u32) -> Option<u32> {
    let rs1 = rs1_prime(insn);
    let r2 = rs2_prime(insn);
    Some(match funct3 {
        // c.addi4spn; nzuimm = 0 (which includes the all-zero halfword) is reserved.
        0 => {
            let imm = nzuimm_addi4spn(insn);
            if imm == 0 {
                return None;
            }
            enc_i(imm, 2, 0, r2, OP_IMM)
        }
        1 => enc_i(uimm_cl_d(insn), rs1, 3, r2, OP_LOAD_FP), // c.fld
        2 => enc_i(uimm_cl_w(insn), rs1, 2, r2, OP_LOAD),    // c.lw
        3 => enc_i(uimm_cl_d(insn), rs1, 3, r2, OP_LOAD),    // c.ld
        5 => enc_s(uimm_cl_d(insn), r2, rs1, 3, OP_STORE_FP), // c.fsd
        6 => enc_s(uimm_cl_w(insn), r2, rs1, 2, OP_STORE),   // c.sw
        7 => enc_s(uimm_cl_d(insn), r2, rs1, 3, OP_STORE),   // c.sd
        // funct3 = 100 is reserved in RV64C.
        _ => return None,
    })
}

/// Quadrant 1: immediates, arithmetic on x8..x15, jumps and branches.
fn expand_q1(insn: u16, funct3: u32) -> Option<u32> {
    let rd = rd_full(insn);
    Some(match funct3 {
        // c.addi (rd = x0 is c.nop / a HINT; imm = 0 with rd != 0 is a HINT).
        0 => enc_i(imm_ci(insn), rd, 0, rd, OP_IMM),
        // c.addiw; rd = x0 is reserved.
        1 => {
            if rd == 0 {
                return None;
            }
            enc_i(imm_ci(insn), rd, 0, rd, OP_IMM_32)
        }
        // c.li (rd = x0 is a HINT).
        2 => enc_i(imm_ci(insn), 0, 0, rd, OP_IMM),
        3 if rd == 2 => {
            // c.addi16sp; nzimm = 0 is reserved.
            let imm = nzimm_addi16sp(insn);
            if imm == 0 {
                return None;
            }
            enc_i(imm, 2, 0, 2, OP_IMM)
        }
        3 => {
            // c.lui; nzimm = 0 is reserved (rd = x0 is a HINT).
            let imm = imm_ci(insn);
            if imm == 0 {
                return None;
            }
            enc_u(imm << 12, rd, OP_LUI)
        }
        4 => return expand_q1_alu(insn),
        5 => enc_j(imm_cj(insn), 0),                     // c.j
        6 => enc_b(imm_cb(insn), 0, rs1_prime(insn), 0), // c.beqz
        _ => enc_b(imm_cb(insn), 0, rs1_prime(insn), 1), // c.bnez
    })
}

/// Quadrant 1, funct3 = 100: c.srli, c.srai, c.andi and the CA-format register ALU ops.
fn expand_q1_alu(insn: u16) -> Option<u32> {
    let rd = rs1_prime(insn);
    let rs2 = rs2_prime(insn);
    Some(match bits(insn, 11, 10) {
        // c.srli / c.srai: shamt = 0 is a HINT in RV64 (the 32-bit form shifts by 0).
        0 => enc_i(shamt_ci(insn) as i32, rd, 5, rd, OP_IMM),
        1 => enc_i((shamt_ci(insn) | 0x400) as i32, rd, 5, rd, OP_IMM),
        2 => enc_i(imm_ci(insn), rd, 7, rd, OP_IMM), // c.andi
        _ => match (bits(insn, 12, 12), bits(insn, 6, 5)) {
            (0, 0) => enc_r(0x20, rs2, rd, 0, rd, OP),    // c.sub
            (0, 1) => enc_r(0, rs2, rd, 4, rd, OP),       // c.xor
            (0, 2) => enc_r(0, rs2, rd, 6, rd, OP),       // c.or
            (0, 3) => enc_r(0, rs2, rd, 7, rd, OP),       // c.and
            (1, 0) => enc_r(0x20, rs2, rd, 0, rd, OP_32), // c.subw
            (1, 1) => enc_r(0, rs2, rd, 0, rd, OP_32),    // c.addw
            // 100111 x 10/11 is reserved (Zcb in later specs).
            _ => return None,
        },
    })
}

/// Quadrant 2: stack-pointer-based loads/stores, shifts, moves, jumps, ebreak.
fn expand_q2(insn: u16, funct3: u32) -> Option<u32> {
    let rd = rd_full(insn);
    let rs2 = rs2_full(insn);
    Some(match funct3 {
        // c.slli (rd = x0 is a HINT).
        0 => enc_i(shamt_ci(insn) as i32, rd, 1, rd, OP_IMM),
        1 => enc_i(uimm_ldsp(insn), 2, 3, rd, OP_LOAD_FP), // c.fldsp
        // c.lwsp / c.ldsp; rd = x0 is reserved.
        2 if rd != 0 => enc_i(uimm_lwsp(insn), 2, 2, rd, OP_LOAD),
        3 if rd != 0 => enc_i(uimm_ldsp(insn), 2, 3, rd, OP_LOAD),
        2 | 3 => return None,
        4 => match (bits(insn, 12, 12), rd, rs2) {
            (0, 0, 0) => return None,                  // c.jr with rs1 = x0: reserved
            (0, _, 0) => enc_i(0, rd, 0, 0, OP_JALR),  // c.jr
            (0, _, _) => enc_r(0, rs2, 0, 0, rd, OP),  // c.mv (rd = x0: HINT)
            (_, 0, 0) => EBREAK,                       // c.ebreak
            (_, _, 0) => enc_i(0, rd, 0, 1, OP_JALR),  // c.jalr
            (_, _, _) => enc_r(0, rs2, rd, 0, rd, OP), // c.add (rd = x0: HINT)
        },
        5 => enc_s(uimm_sdsp(insn), rs2, 2, 3, OP_STORE_FP), // c.fsdsp
        6 => enc_s(uimm_swsp(insn), rs2, 2, 2, OP_STORE),    // c.swsp
        _ => enc_s(uimm_sdsp(insn), rs2, 2, 3, OP_STORE),    // c.sdsp
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::riscv::decode::decode;

    /// (compressed, 32-bit equivalent) pairs: each compressed instruction assembled with
    /// binutils 2.40 (`.option rvc`) next to the same instruction written out in its
    /// expanded form (`.option norvc`).
    const PAIRS: &[(u16, u32)] = &[
        (0x0040, 0x00410413), // c.addi4spn x8, x2, 4
        (0x1ffc, 0x3fc10793), // c.addi4spn x15, x2, 1020
        (0x3fe0, 0x0f87b407), // c.fld f8, 248(x15)
        (0x5d64, 0x07c52483), // c.lw x9, 124(x10)
        (0x4144, 0x00452483), // c.lw x9, 4(x10)
        (0x7e6c, 0x0f863583), // c.ld x11, 248(x12)
        (0xa714, 0x00d73427), // c.fsd f13, 8(x14)
        (0xc03c, 0x04f42023), // c.sw x15, 64(x8)
        (0xe0c0, 0x0884b023), // c.sd x8, 128(x9)
        (0x0001, 0x00000013), // c.nop
        (0x1281, 0xfe028293), // c.addi x5, -32
        (0x0ffd, 0x01ff8f93), // c.addi x31, 31
        (0x337d, 0xfff3031b), // c.addiw x6, -1
        (0x5381, 0xfe000393), // c.li x7, -32
        (0x40c5, 0x01100093), // c.li x1, 17
        (0x7101, 0xe0010113), // c.addi16sp x2, -512
        (0x617d, 0x1f010113), // c.addi16sp x2, 496
        (0x6141, 0x01010113), // c.addi16sp x2, 16
        (0x7181, 0xfffe01b7), // c.lui x3, 0xfffe0
        (0x6205, 0x00001237), // c.lui x4, 1
        (0x62fd, 0x0001f2b7), // c.lui x5, 31
        (0x907d, 0x03f45413), // c.srli x8, 63
        (0x9481, 0x4204d493), // c.srai x9, 32
        (0x8485, 0x4014d493), // c.srai x9, 1
        (0x997d, 0xfff57513), // c.andi x10, -1
        (0x8915, 0x00557513), // c.andi x10, 5
        (0x8d91, 0x40c585b3), // c.sub x11, x12
        (0x8eb9, 0x00e6c6b3), // c.xor x13, x14
        (0x8fc1, 0x0087e7b3), // c.or x15, x8
        (0x8c65, 0x00947433), // c.and x8, x9
        (0x9d0d, 0x40b5053b), // c.subw x10, x11
        (0x9e35, 0x00d6063b), // c.addw x12, x13
        (0xaffd, 0x7fe0006f), // c.j .+2046
        (0xb001, 0x801ff06f), // c.j .-2048
        (0xa009, 0x0020006f), // c.j .+2
        (0xcc7d, 0x0e040f63), // c.beqz x8, .+254
        (0xf381, 0xf00790e3), // c.bnez x15, .-256
        (0xe099, 0x00049363), // c.bnez x9, .+6
        (0x10fe, 0x03f09093), // c.slli x1, 63
        (0x0f86, 0x001f9f93), // c.slli x31, 1
        (0x30fe, 0x1f813087), // c.fldsp f1, 504(x2)
        (0x517e, 0x0fc12103), // c.lwsp x2, 252(x2)
        (0x4192, 0x00412183), // c.lwsp x3, 4(x2)
        (0x727e, 0x1f813203), // c.ldsp x4, 504(x2)
        (0x6222, 0x00813203), // c.ldsp x4, 8(x2)
        (0x8082, 0x00008067), // c.jr x1
        (0x829a, 0x006002b3), // c.mv x5, x6
        (0x9002, 0x00100073), // c.ebreak
        (0x9382, 0x000380e7), // c.jalr x7
        (0x9426, 0x00940433), // c.add x8, x9
        (0xbfaa, 0x1ea13c27), // c.fsdsp f10, 504(x2)
        (0xdfae, 0x0eb12e23), // c.swsp x11, 252(x2)
        (0xffb2, 0x1ec13c23), // c.sdsp x12, 504(x2)
        (0xe432, 0x00c13423), // c.sdsp x12, 8(x2)
    ];

    #[test]
    fn expands_like_the_assembler() {
        for &(c, full) in PAIRS {
            assert_eq!(expand(c), Some(full), "{c:#06x}");
            assert!(decode(full).is_some(), "{full:#010x} does not decode");
        }
    }

    /// Reserved encodings of RV64C (Unprivileged ISA Table 16.5 and §16.3–16.5).
    #[test]
    fn reserved_encodings_are_illegal() {
        for c in [
            0x0000u16, // all-zero halfword (c.addi4spn with nzuimm = 0)
            0x0004,    // c.addi4spn nzuimm = 0, rd' = x9
            0x8000,    // quadrant 0 funct3 = 100 (reserved)
            0x9c41,    // funct6 100111, funct2 10: reserved CA op
            0x9c61,    // funct6 100111, funct2 11: reserved CA op
            0x2001,    // c.addiw with rd = x0
            0x6101,    // c.addi16sp with nzimm = 0
            0x6281,    // c.lui x5 with nzimm = 0
            0x4002,    // c.lwsp with rd = x0
            0x6002,    // c.ldsp with rd = x0
            0x8002,    // c.jr with rs1 = x0
        ] {
            assert_eq!(expand(c), None, "{c:#06x}");
        }
    }

    /// Every 16-bit encoding expands to nothing or to a word that decodes; HINTs expand to
    /// no-op 32-bit forms rather than being rejected.
    #[test]
    fn every_expansion_decodes() {
        let mut expanded = 0;
        for c in 0..=u16::MAX {
            if c & 3 == 3 {
                continue;
            }
            if let Some(full) = expand(c) {
                expanded += 1;
                assert!(decode(full).is_some(), "{c:#06x} -> {full:#010x}");
            }
        }
        assert!(expanded > 45_000, "{expanded}");
        // HINTs: c.li x0, 1 and c.mv x0, x1 and c.slli x0, 1.
        assert_eq!(expand(0x4005), Some(0x0010_0013));
        assert_eq!(expand(0x8006), Some(0x0010_0033));
        assert_eq!(expand(0x0006), Some(0x0010_1013));
    }
}
