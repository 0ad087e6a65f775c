# Decoder corner cases: reserved encodings raise illegal instruction with mtval = the bits
# (RVC reserved forms, unprivileged spec 16.8 Table 16.5 notes; W shifts with shamt[5] = 1;
# reserved funct3/funct7/fmt values; removed uret/dret outside debug mode; lr with rs2 != 0),
# and the encodings that must execute as no-ops: fence variants, fence.tso, pause, HINTs
# (writes to x0, spec 2.9 and 16.7), fence.i, sfence.vma in M-mode.
#include "test_macros.h"

#define ILLEGAL16(n, bits) TEST_TRAP(n, CAUSE_ILLEGAL_INSTRUCTION, .2byte bits) CHECK_TVAL(n + 100, bits)
#define ILLEGAL32(n, bits) TEST_TRAP(n, CAUSE_ILLEGAL_INSTRUCTION, .word bits) CHECK_TVAL(n + 100, bits)
/* Executes `bits` and checks that it neither traps nor changes x1 (nor any register it names). */
#define NOP32(n, bits) TEST_TRAP(n, CAUSE_NONE, li x1, 0x1234; .word bits) TEST_CASE(n + 100, x1, 0x1234, nop)
#define NOP16(n, bits) TEST_TRAP(n, CAUSE_NONE, li x1, 0x1234; .2byte bits; .2byte 0x0001) TEST_CASE(n + 100, x1, 0x1234, nop)

RVTEST_CODE_BEGIN
        # RVC reserved encodings
        ILLEGAL16(2, 0x0000)            /* all zero */
        ILLEGAL16(3, 0x0004)            /* c.addi4spn with nzuimm = 0 */
        ILLEGAL16(4, 0x6101)            /* c.addi16sp with nzimm = 0 */
        ILLEGAL16(5, 0x6081)            /* c.lui x1 with nzimm = 0 */
        ILLEGAL16(6, 0x8002)            /* c.jr x0 */
        ILLEGAL16(7, 0x4002)            /* c.lwsp x0 */
        ILLEGAL16(8, 0x6002)            /* c.ldsp x0 */
        # RV64I: W shifts with shamt[5] = 1 are reserved
        ILLEGAL32(10, 0x0200101b)       /* slliw x0, x0, 32 */
        ILLEGAL32(11, 0x0200509b)       /* srliw x1, x0, 32 */
        ILLEGAL32(12, 0x4200d09b)       /* sraiw x1, x1, 32 */
        # reserved funct3 / funct7 / fmt
        ILLEGAL32(13, 0x00007003)       /* LOAD funct3 7 */
        ILLEGAL32(14, 0x00007023)       /* STORE funct3 7 */
        ILLEGAL32(15, 0x06000033)       /* OP funct7 3 */
        ILLEGAL32(16, 0x00002063)       /* BRANCH funct3 2 */
        ILLEGAL32(17, 0x00001067)       /* JALR funct3 1 */
        ILLEGAL32(18, 0x0400000b)       /* custom-0 */
        ILLEGAL32(19, 0x04000053)       /* fadd with fmt 2 (half: no Zfh) */
        ILLEGAL32(20, 0x06000053)       /* fadd with fmt 3 (quad: no Q) */
        ILLEGAL32(21, 0x1000202f | (1 << 20))   /* lr.w with rs2 != 0 */
        ILLEGAL32(22, 0x00200073)       /* uret (the N extension is gone) */
        ILLEGAL32(23, 0x7b200073)       /* dret outside debug mode */
        ILLEGAL32(24, 0x7c002073)       /* csrrs x0, 0x7c0: no such CSR */
        # executes as a no-op
        NOP32(30, 0x0ff0000f)           /* fence iorw, iorw */
        NOP32(31, 0x8330000f)           /* fence.tso */
        NOP32(32, 0x0100000f)           /* pause */
        NOP32(33, 0x0000100f)           /* fence.i */
        NOP32(34, 0x00500013)           /* addi x0, x0, 5: HINT */
        NOP32(35, 0x00109013)           /* slli x0, x1, 1: HINT */
        NOP32(36, 0x00208033)           /* add x0, x1, x2: HINT */
        NOP32(37, 0x12345037)           /* lui x0, 0x12345: HINT */
        NOP32(38, 0x12000073)           /* sfence.vma in M-mode */
        NOP32(39, 0x0000000f)           /* fence with empty sets */
        NOP16(40, 0x0015)               /* c.nop with imm 5: HINT */
        NOP16(41, 0x0082)               /* c.slli x1 with shamt 0: HINT on RV64 */
        NOP16(42, 0x8006)               /* c.mv x0, x1: HINT */
        NOP16(43, 0x9006)               /* c.add x0, x1: HINT */
        NOP16(44, 0x4005)               /* c.li x0, 1: HINT */
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END
