# RV64I loads and stores: every width, sign and zero extension, positive/negative offsets,
# store sub-word into a dword, and misaligned loads/stores (which succeed, as on QEMU: the
# privileged spec allows either emulation or a misaligned trap; emu follows QEMU).
#include "test_macros.h"

RVTEST_CODE_BEGIN
        TEST_LD_OP(2, lb, 0xffffffffffffff80, 0, data_a)
        TEST_LD_OP(3, lbu, 0x80, 0, data_a)
        TEST_LD_OP(4, lb, 0x7f, 1, data_a)
        TEST_LD_OP(5, lh, 0xffffffffffff8001, 0, data_h)
        TEST_LD_OP(6, lhu, 0x8001, 0, data_h)
        TEST_LD_OP(7, lw, 0xffffffff80000001, 0, data_w)
        TEST_LD_OP(8, lwu, 0x80000001, 0, data_w)
        TEST_LD_OP(9, ld, 0x8000000000000001, 0, data_d)
        TEST_LD_OP(10, ld, 0x0123456789abcdef, 8, data_d)
        TEST_LD_OP(11, lw, 0x00000001, -8, data_d + 8)
        TEST_LD_OP(12, lbu, 0xef, 8, data_d)
        TEST_LD_OP(13, lhu, 0x0123, 14, data_d)
        TEST_LD_OP(14, lh, 0x0123, -2, data_d + 16)
        TEST_ST_OP(20, ld, sd, 0xdeadbeefcafef00d, 0xdeadbeefcafef00d, 0, scratch)
        TEST_ST_OP(21, lb, sb, 0xffffffffffffffaa, 0xaa, 1, scratch)
        TEST_ST_OP(22, lh, sh, 0xffffffffffffbeef, 0x1234beef, 2, scratch)
        TEST_ST_OP(23, lw, sw, 0xffffffff87654321, 0x87654321, 4, scratch)
        TEST_ST_OP(24, lwu, sw, 0x87654321, 0x87654321, -4, scratch + 8)
        # the sub-word stores above left the other bytes alone
        TEST_CASE(25, x14, 0x87654321beefaa0d, la x1, scratch; ld x14, 0(x1))
        # x0 as store data and as load destination
        TEST_CASE(26, x14, 0, la x1, scratch; sd x0, 0(x1); ld x0, 0(x1); ld x14, 0(x1))
        # misaligned accesses complete (no trap on QEMU, and on emu)
        TEST_CASE(30, x14, 0x000123456789abcd, la x1, data_d; ld x14, 9(x1))
        TEST_CASE(31, x14, 0xef800000, la x1, data_d; lwu x14, 5(x1))
        TEST_CASE(32, x14, 0xffffffffffffabcd, la x1, data_d; lh x14, 9(x1))
        TEST_CASE(33, x14, 0x1122334455667788, la x1, scratch; li x2, 0x1122334455667788; sd x2, 3(x1); ld x14, 3(x1))
        TEST_CASE(34, x14, 0xffffffff99aabbcc, la x1, scratch; li x2, 0x99aabbcc; sw x2, 7(x1); lw x14, 7(x1))
        TEST_CASE(35, x14, 0x7788, la x1, scratch; li x2, 0x7788; sh x2, 15(x1); lhu x14, 15(x1))
        TEST_CASE(36, x0, 0, la t5, trap_save; ld x14, TS_COUNT(t5); bnez x14, fail)
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
        .align 4
data_a: .byte 0x80, 0x7f
        .align 4
data_h: .half 0x8001
        .align 4
data_w: .word 0x80000001
        .align 4
data_d: .dword 0x8000000000000001, 0x0123456789abcdef
        .align 4
scratch: .dword 0, 0, 0, 0
RVTEST_DATA_END
