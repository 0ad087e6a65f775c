# qemu: skip -- expected values from the specifications, not QEMU 7.2.
# Zicond 1.0 (czero.eqz / czero.nez), which QEMU 7.2 lacks, emitted with .insn because
# binutils 2.40 does not know it; and the Zbb checks where QEMU 7.2 disagrees with the spec
# (ctzw counts only the low 32 bits: ctzw of 0x8000000000000000 is 32, QEMU 7.2 returns 63).
#include "test_macros.h"

/* czero.eqz rd, rs1, rs2: rd = rs2 == 0 ? 0 : rs1 (OP opcode, funct3 101, funct7 0000111). */
#define CZERO_EQZ(rd, rs1, rs2) .insn r OP, 5, 7, rd, rs1, rs2
/* czero.nez rd, rs1, rs2: rd = rs2 != 0 ? 0 : rs1 (funct3 111). */
#define CZERO_NEZ(rd, rs1, rs2) .insn r OP, 7, 7, rd, rs1, rs2

RVTEST_CODE_BEGIN
        TEST_CASE(3, x14, 0x1234, li x1, 0x1234; li x2, 1; CZERO_EQZ(x14, x1, x2))
        TEST_CASE(4, x14, 0, li x1, 0x1234; li x2, 0; CZERO_EQZ(x14, x1, x2))
        TEST_CASE(5, x14, 0xffffffffffffffff, li x1, -1; li x2, 0x8000000000000000; CZERO_EQZ(x14, x1, x2))
        TEST_CASE(6, x14, 0, li x1, 0x1234; li x2, 1; CZERO_NEZ(x14, x1, x2))
        TEST_CASE(7, x14, 0x1234, li x1, 0x1234; li x2, 0; CZERO_NEZ(x14, x1, x2))
        TEST_CASE(8, x14, 0, li x1, -1; li x2, 0x8000000000000000; CZERO_NEZ(x14, x1, x2))
        # rd == rs2: the condition is read before the write
        TEST_CASE(9, x2, 0x55, li x1, 0x55; li x2, 7; CZERO_EQZ(x2, x1, x2))
        TEST_CASE(10, x2, 0, li x1, 0x55; li x2, 7; CZERO_NEZ(x2, x1, x2))
        # rs1 == x0 gives 0 either way; the select idiom (cond ? a : b)
        TEST_CASE(11, x14, 0, li x2, 0; CZERO_NEZ(x14, x0, x2))
        TEST_CASE(12, x14, 111, li x1, 111; li x4, 222; li x2, 5; CZERO_EQZ(x5, x1, x2); CZERO_NEZ(x6, x4, x2); or x14, x5, x6)
        TEST_CASE(13, x14, 222, li x1, 111; li x4, 222; li x2, 0; CZERO_EQZ(x5, x1, x2); CZERO_NEZ(x6, x4, x2); or x14, x5, x6)
        # Zbb ctzw: low 32 bits only
        TEST_R_OP(20, ctzw, 32, 0x8000000000000000)
        TEST_R_OP(21, ctzw, 32, 0xffffffff00000000)
        TEST_R_OP(22, clzw, 32, 0xffffffff00000000)
        CHECK_NO_TRAPS(100)
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END
