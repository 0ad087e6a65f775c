# RV64I register-register and register-immediate arithmetic, logic, shifts (shift amounts are
# masked to 6 bits, 5 for W forms: unprivileged spec 4.2.1), W forms with sign extension,
# lui/auipc, slt/sltu edge cases, writes to x0.
#include "test_macros.h"

RVTEST_CODE_BEGIN
        # add / sub / W forms
        TEST_RR_OP(2, add, 0x00000000, 0x00000000, 0x00000000)
        TEST_RR_OP(3, add, 0x8000000000000000, 0x7fffffffffffffff, 1)
        TEST_RR_OP(4, add, 0xfffffffffffffffe, 0xffffffffffffffff, 0xffffffffffffffff)
        TEST_RR_OP(5, sub, 0xffffffffffffffff, 0, 1)
        TEST_RR_OP(6, sub, 0x7fffffffffffffff, 0x8000000000000000, 1)
        TEST_RR_OP(7, addw, 0xffffffff80000000, 0x7fffffff, 1)
        TEST_RR_OP(8, addw, 0, 0xffffffff00000000, 0x123400000000)
        TEST_RR_OP(9, subw, 0x000000007fffffff, 0x80000000, 1)
        TEST_RR_OP(10, subw, 0xffffffffffffffff, 0x100000000, 1)
        TEST_IMM_OP(11, addi, 0xffffffffffffffff, 0, -1)
        TEST_IMM_OP(12, addi, 0x00000000000007ff, 0, 0x7ff)
        TEST_IMM_OP(13, addi, 0xfffffffffffff800, 0, -0x800)
        TEST_IMM_OP(14, addiw, 0xffffffff80000000, 0x7fffffff, 1)
        TEST_IMM_OP(15, addiw, 0x000000007fffffff, 0x17fffffff, 0)
        TEST_IMM_OP(16, addiw, 0xfffffffffffff800, 0x100000000, -0x800)
        TEST_RR_SRC1_EQ_DEST(17, add, 24, 13, 11)
        TEST_RR_ZERODEST(18, add, 13, 11)
        # logic
        TEST_RR_OP(20, and, 0x0f000f00, 0xff00ff00, 0x0f0f0f0f)
        TEST_RR_OP(21, or, 0xff0fff0f, 0xff00ff00, 0x0f0f0f0f)
        TEST_RR_OP(22, xor, 0xf00ff00f, 0xff00ff00, 0x0f0f0f0f)
        TEST_IMM_OP(23, andi, 0xff00ff00, 0xff00ff00, -1)
        TEST_IMM_OP(24, andi, 0x00000000000000f0, 0xfffffffffffff0f0, 0x0f0)
        TEST_IMM_OP(25, ori, 0xffffffffffffff0f, 0x0000000000000f00, -0xf1)
        TEST_IMM_OP(26, xori, 0xffffffffff00f0ff, 0x0000000000ff0ff0, -0xf1)
        TEST_IMM_OP(27, xori, 0xffffffffffffffff, 0, -1)
        # slt / sltu / slti / sltiu
        TEST_RR_OP(30, slt, 1, 0x8000000000000000, 0)
        TEST_RR_OP(31, slt, 0, 0, 0x8000000000000000)
        TEST_RR_OP(32, slt, 0, 5, 5)
        TEST_RR_OP(33, sltu, 0, 0x8000000000000000, 0)
        TEST_RR_OP(34, sltu, 1, 0, 0x8000000000000000)
        TEST_RR_OP(35, sltu, 1, 0, 1)
        TEST_IMM_OP(36, slti, 1, -1, 0)
        TEST_IMM_OP(37, slti, 0, 0x7ff, 0x7ff)
        TEST_IMM_OP(38, slti, 1, 0x8000000000000000, -0x800)
        TEST_IMM_OP(39, sltiu, 1, 0x7fffffffffffffff, -1)
        TEST_IMM_OP(40, sltiu, 0, 0xffffffffffffffff, -1)
        TEST_IMM_OP(41, sltiu, 1, 0, 1)
        TEST_IMM_OP(42, sltiu, 0, 1, 1)
        # shifts, register amount masked to 6 bits
        TEST_RR_OP(50, sll, 0x8000000000000000, 1, 63)
        TEST_RR_OP(51, sll, 2, 1, 65)
        TEST_RR_OP(52, sll, 0x0000000100000000, 1, 0xffffffffffffffe0)
        TEST_RR_OP(53, srl, 1, 0x8000000000000000, 63)
        TEST_RR_OP(54, srl, 0x4000000000000000, 0x8000000000000000, 0x41)
        TEST_RR_OP(55, sra, 0xffffffffffffffff, 0x8000000000000000, 63)
        TEST_RR_OP(56, sra, 0xc000000000000000, 0x8000000000000000, 0x41)
        TEST_RR_OP(57, sra, 0x0000000000000001, 0x7fffffffffffffff, 62)
        TEST_IMM_OP(58, slli, 0x8000000000000000, 1, 63)
        TEST_IMM_OP(59, slli, 0xffffffff00000000, 0xffffffffffffffff, 32)
        TEST_IMM_OP(60, srli, 0x00000000ffffffff, 0xffffffffffffffff, 32)
        TEST_IMM_OP(61, srai, 0xffffffffffffffff, 0x8000000000000000, 63)
        TEST_IMM_OP(62, srai, 0x0000000000000000, 0x7fffffffffffffff, 63)
        TEST_IMM_OP(63, srai, 0xffffffff80000000, 0x8000000000000000, 32)
        # W shifts: 5-bit amount, 32-bit result sign-extended
        TEST_RR_OP(70, sllw, 0xffffffff80000000, 1, 31)
        TEST_RR_OP(71, sllw, 0x0000000000000002, 1, 33)
        TEST_RR_OP(72, sllw, 0x0000000000000000, 0xffffffff00000000, 0)
        TEST_RR_OP(73, srlw, 0x0000000000000001, 0x80000000, 31)
        TEST_RR_OP(74, srlw, 0x0000000040000000, 0xffffffff80000000, 33)
        TEST_RR_OP(75, srlw, 0xffffffff80000000, 0x1234567880000000 | 0x80000000, 0)
        TEST_RR_OP(76, sraw, 0xffffffffffffffff, 0x80000000, 31)
        TEST_RR_OP(77, sraw, 0xffffffffc0000000, 0x80000000, 33)
        TEST_RR_OP(78, sraw, 0x0000000000000001, 0xffffffff7fffffff, 30)
        TEST_IMM_OP(79, slliw, 0xffffffff80000000, 0x1, 31)
        TEST_IMM_OP(80, slliw, 0x0000000012345678, 0xabcdef0012345678, 0)
        TEST_IMM_OP(81, srliw, 0x0000000000000001, 0xffffffff80000000, 31)
        TEST_IMM_OP(82, srliw, 0xffffffffffffffff, 0x00000000ffffffff, 0)
        TEST_IMM_OP(83, sraiw, 0xffffffffffffffff, 0x80000000, 31)
        TEST_IMM_OP(84, sraiw, 0x0000000000000fff, 0x7fffffff, 19)
        # lui / auipc
        TEST_CASE(90, x14, 0xffffffff80000000, lui x14, 0x80000)
        TEST_CASE(91, x14, 0x000000007ffff000, lui x14, 0x7ffff)
        TEST_CASE(92, x14, 0, lui x14, 0)
        TEST_CASE(93, x14, 0xfffffffffffff000, lui x14, 0xfffff; addi x14, x14, 0x7ff; addi x14, x14, 1; addi x14, x14, -0x800)
        TEST_CASE(94, x14, 0x10000, 1: auipc x14, 0x10; la x15, 1b; sub x14, x14, x15)
        TEST_CASE(95, x14, -0x80000000, 1: auipc x14, 0x80000; la x15, 1b; sub x14, x14, x15)
        TEST_CASE(96, x14, 0, 1: auipc x14, 0; la x15, 1b; sub x14, x14, x15)
        # x0 is hard-wired to zero
        TEST_CASE(97, x0, 0, li x0, 5; addi x0, x0, 7; lui x0, 0x12345)
        TEST_CASE(98, x14, 0, addi x14, x0, 0)
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END
