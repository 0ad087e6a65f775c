# RVC (unprivileged spec chapter 16): every RV64C instruction, written with its c. mnemonic so
# the assembler cannot substitute a 32-bit form; link values of c.jal-less RV64 (c.jalr links
# pc + 2), c.ebreak, and the all-zero parcel as an illegal instruction (16.8).
#include "test_macros.h"

RVTEST_CODE_BEGIN
        .option push
        .option rvc
        la sp, cdata
        # CIW / CL / CS formats (registers x8-x15)
        TEST_CASE(2, s0, 0, c.addi4spn s0, sp, 16; la x15, cdata + 16; sub s0, s0, x15)
        TEST_CASE(3, a0, 0xffffffff80000001, mv s1, sp; c.lw a0, 0(s1))
        TEST_CASE(4, a1, 0x0123456789abcdef, mv s1, sp; c.ld a1, 8(s1))
        TEST_CASE(5, a2, 0x55aa55aa, mv s1, sp; li a3, 0x55aa55aa; c.sw a3, 24(s1); lwu a2, 24(s1))
        TEST_CASE(6, a2, 0x1122334455667788, mv s1, sp; li a3, 0x1122334455667788; c.sd a3, 32(s1); ld a2, 32(s1))
        TEST_CASE(7, a2, 0x3ff0000000000000, mv s1, sp; li a3, 0x3ff0000000000000; sd a3, 40(s1); c.fld fa0, 40(s1); fmv.x.d a2, fa0)
        TEST_CASE(8, a2, 0x4000000000000000, mv s1, sp; li a3, 0x4000000000000000; fmv.d.x fa1, a3; c.fsd fa1, 48(s1); ld a2, 48(s1))
        # CI format
        TEST_CASE(10, a0, 0, c.nop; li a0, 0)
        TEST_CASE(11, a0, 0xffffffffffffffe1, li a0, 1; c.addi a0, -32)
        TEST_CASE(12, a0, 0x20, li a0, 1; c.addi a0, 31)
        TEST_CASE(13, a0, 0xffffffff80000000, li a0, 0x7fffffff; c.addiw a0, 1)
        TEST_CASE(14, a0, 0x0000000000000005, li a0, 0x1234500000005; c.addiw a0, 0)
        TEST_CASE(15, a0, 0xffffffffffffffe0, c.li a0, -32)
        TEST_CASE(16, x14, 31, c.li x14, 31)
        TEST_CASE(17, a0, 0, mv s0, sp; c.addi16sp sp, -512; sub a0, s0, sp; addi a0, a0, -512; mv sp, s0)
        TEST_CASE(18, a0, 0, mv s0, sp; c.addi16sp sp, 496; sub a0, sp, s0; addi a0, a0, -496; mv sp, s0)
        TEST_CASE(19, a0, 0xfffffffffffe0000, c.lui a0, 0xfffe0)
        TEST_CASE(20, a0, 0x000000000001f000, c.lui a0, 0x1f)
        TEST_CASE(21, x14, 0x8000000000000000, li x14, 1; c.slli x14, 63)
        TEST_CASE(22, a0, 0x0000000000000001, li a0, 0x8000000000000000; c.srli a0, 63)
        TEST_CASE(23, a0, 0xffffffff80000000, li a0, 0x8000000000000000; c.srai a0, 32)
        TEST_CASE(24, a0, 0xffffffffffffffe0, li a0, -1; c.andi a0, -32)
        TEST_CASE(25, a0, 0x1e, li a0, 0xfe; c.andi a0, 0x1f)
        TEST_CASE(26, a0, 0xfe, li a0, 0xfe; c.andi a0, -1)
        # CR / CA formats
        TEST_CASE(30, a0, 0xffffffff00000001, li a0, 0xffffffff00000003; li a1, 2; c.sub a0, a1)
        TEST_CASE(31, a0, 0xf00ff00f, li a0, 0xff00ff00; li a1, 0x0f0f0f0f; c.xor a0, a1)
        TEST_CASE(32, a0, 0xff0fff0f, li a0, 0xff00ff00; li a1, 0x0f0f0f0f; c.or a0, a1)
        TEST_CASE(33, a0, 0x0f000f00, li a0, 0xff00ff00; li a1, 0x0f0f0f0f; c.and a0, a1)
        TEST_CASE(34, a0, 0x000000007fffffff, li a0, 0x80000000; li a1, 1; c.subw a0, a1)
        TEST_CASE(35, a0, 0xffffffff80000000, li a0, 0x7fffffff; li a1, 1; c.addw a0, a1)
        TEST_CASE(36, x14, 0x1234, li x20, 0x1234; c.mv x14, x20)
        TEST_CASE(37, x14, 0x2468, li x14, 0x1234; li x20, 0x1234; c.add x14, x20)
        # stack-pointer-relative loads and stores
        TEST_CASE(40, x14, 0xffffffff80000001, c.lwsp x14, 0(sp))
        TEST_CASE(41, x14, 0x0123456789abcdef, c.ldsp x14, 8(sp))
        TEST_CASE(42, x14, 0x0123456789abcdef, c.fldsp f20, 8(sp); fmv.x.d x14, f20)
        TEST_CASE(43, x14, 0x99887766, li x20, 0x99887766; c.swsp x20, 56(sp); lwu x14, 56(sp))
        TEST_CASE(44, x14, 0x8877665544332211, li x20, 0x8877665544332211; c.sdsp x20, 64(sp); ld x14, 64(sp))
        TEST_CASE(45, x14, 0x8877665544332211, li x20, 0x8877665544332211; fmv.d.x f21, x20; c.fsdsp f21, 72(sp); ld x14, 72(sp))
        # control transfer
        TEST_CASE(50, x14, 1, li x14, 0; c.j 1f; j fail; 1: li x14, 1)
        TEST_CASE(51, x14, 1, li x14, 0; li a0, 0; c.beqz a0, 1f; j fail; 1: li x14, 1)
        TEST_CASE(52, x14, 1, li x14, 0; li a0, 1; c.beqz a0, fail; li x14, 1)
        TEST_CASE(53, x14, 1, li x14, 0; li a0, -1; c.bnez a0, 1f; j fail; 1: li x14, 1)
        TEST_CASE(54, x14, 1, li x14, 0; li a0, 0; c.bnez a0, fail; li x14, 1)
        TEST_CASE(55, x14, 1, li x14, 0; la x20, 1f; c.jr x20; j fail; 1: li x14, 1)
        # c.jalr links pc + 2
        TEST_CASE(56, x14, 0, la x20, 2f; la x21, 1f; c.jalr x20; 1: j fail; 2: sub x14, ra, x21)
        # backward c.beqz/c.bnez loop
        TEST_CASE(57, a0, 0, li a0, 10; 1: c.addi a0, -1; c.bnez a0, 1b)
        # c.ebreak raises a breakpoint with mepc at the c.ebreak
        TEST_TRAP(60, CAUSE_BREAKPOINT, 1: c.ebreak)
        CHECK_EPC_LABEL(61, 1b)
        # the all-zero parcel is illegal (and mtval holds the instruction bits: 0)
        TEST_TRAP(62, CAUSE_ILLEGAL_INSTRUCTION, .2byte 0)
        # an RVC instruction at an odd halfword position followed by a 32-bit one crossing it
        TEST_CASE(63, x14, 3, li x14, 0; .balign 4; c.addi x14, 1; addi x14, x14, 2)
        .option pop
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
        .align 6
cdata:  .word 0x80000001, 0
        .dword 0x0123456789abcdef
        .fill 64, 8, 0
RVTEST_DATA_END
