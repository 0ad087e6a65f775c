# RV64M: mul/mulh/mulhsu/mulhu in all sign combinations, W forms, division by zero (quotient all
# ones, remainder = dividend) and signed overflow (quotient = dividend, remainder 0), per the
# unprivileged spec 13.2, Table 13.1.
#include "test_macros.h"

RVTEST_CODE_BEGIN
        TEST_RR_OP(2, mul, 0x11b800, 0x7e00, 0x24)
        TEST_RR_OP(3, mul, 0xfffffffffffffffe, 2, -1)
        TEST_RR_OP(4, mul, 0x0000000000000001, -1, -1)
        TEST_RR_OP(5, mul, 0x8000000000000000, 0x8000000000000000, -1)
        TEST_RR_OP(6, mul, 0xabcdf00111111010, 0x123456789abcdef0, 0x10000000f)
        # mulh: signed x signed
        TEST_RR_OP(10, mulh, 0xffffffffffffffff, -1, 1)
        TEST_RR_OP(11, mulh, 0x0000000000000000, -1, -1)
        TEST_RR_OP(12, mulh, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000)
        TEST_RR_OP(13, mulh, 0xc000000000000000, 0x8000000000000000, 0x7fffffffffffffff)
        TEST_RR_OP(14, mulh, 0x3fffffffffffffff, 0x7fffffffffffffff, 0x7fffffffffffffff)
        # mulhsu: signed x unsigned
        TEST_RR_OP(20, mulhsu, 0xffffffffffffffff, -1, 1)
        TEST_RR_OP(21, mulhsu, 0xffffffffffffffff, -1, -1)
        TEST_RR_OP(22, mulhsu, 0xc000000000000000, 0x8000000000000000, 0x8000000000000000)
        TEST_RR_OP(23, mulhsu, 0x7ffffffffffffffe, 0x7fffffffffffffff, -1)
        TEST_RR_OP(24, mulhsu, 0, 1, -1)
        # mulhu: unsigned x unsigned
        TEST_RR_OP(30, mulhu, 0xfffffffffffffffe, -1, -1)
        TEST_RR_OP(31, mulhu, 0x0000000000000000, -1, 1)
        TEST_RR_OP(32, mulhu, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000)
        TEST_RR_OP(33, mulhu, 0x0000000000000001, 0x8000000000000000, 2)
        # mulw: low 32 bits, sign-extended
        TEST_RR_OP(40, mulw, 0xffffffff80000000, 0x40000000, 2)
        TEST_RR_OP(41, mulw, 0x0000000000000001, 0xffffffffffffffff, 0x00000000ffffffff)
        TEST_RR_OP(42, mulw, 0, 0x100000000, 0x100000000)
        # div / divu / rem / remu
        TEST_RR_OP(50, div, 3, 20, 6)
        TEST_RR_OP(51, div, -3, -20, 6)
        TEST_RR_OP(52, div, -3, 20, -6)
        TEST_RR_OP(53, div, 3, -20, -6)
        TEST_RR_OP(54, div, -1, 20, 0)
        TEST_RR_OP(55, div, 0x8000000000000000, 0x8000000000000000, -1)
        TEST_RR_OP(56, divu, 3, 20, 6)
        TEST_RR_OP(57, divu, 0x2aaaaaaaaaaaaaa7, -20, 6)
        TEST_RR_OP(58, divu, -1, 20, 0)
        TEST_RR_OP(59, divu, 0, 0x8000000000000000, -1)
        TEST_RR_OP(60, rem, 2, 20, 6)
        TEST_RR_OP(61, rem, -2, -20, 6)
        TEST_RR_OP(62, rem, 2, 20, -6)
        TEST_RR_OP(63, rem, -2, -20, -6)
        TEST_RR_OP(64, rem, 20, 20, 0)
        TEST_RR_OP(65, rem, 0, 0x8000000000000000, -1)
        TEST_RR_OP(66, remu, 2, 20, 6)
        TEST_RR_OP(67, remu, 2, -20, 6)
        TEST_RR_OP(68, remu, -20, -20, 0)
        TEST_RR_OP(69, remu, 0x8000000000000000, 0x8000000000000000, -1)
        # W forms: operate on the low 32 bits, sign-extend the 32-bit result
        TEST_RR_OP(70, divw, -3, 0xffffffffffffffec, 6)
        TEST_RR_OP(71, divw, -1, 20, 0x100000000)
        TEST_RR_OP(72, divw, 0xffffffff80000000, 0x80000000, -1)
        TEST_RR_OP(73, divuw, 0x2aaaaaa7, 0xffffffec, 6)
        TEST_RR_OP(74, divuw, -1, 20, 0)
        TEST_RR_OP(75, divuw, 0xffffffff80000000, 0x80000000, 1)
        TEST_RR_OP(76, remw, -2, 0xffffffffffffffec, 6)
        TEST_RR_OP(77, remw, 0, 0x80000000, -1)
        TEST_RR_OP(78, remw, 0xffffffff80000000, 0x1280000000 | 0x80000000, 0)
        TEST_RR_OP(79, remuw, 2, 0xffffffec, 6)
        TEST_RR_OP(80, remuw, 0xffffffff80000000, 0x80000000, 0)
        TEST_RR_OP(81, remuw, 0xffffffffffffffec, 0x00000000ffffffec, 0x100000000)
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END
