# CPU-bound benchmark for MIPS measurements (not run by the test runner): bitwise CRC-32
# (polynomial 0xEDB88320) over a 4 KiB LCG-filled buffer, 1100 passes chained, about 200 million
# instructions; exits 0 only if the final CRC is 0xd85d1b6a (computed independently in Python).
#include "test_macros.h"

#define PASSES 1100
#define BUF_SIZE 4096

/* one CRC bit step on a2 (poly in a4) */
#define CRC_BIT andi t0, a2, 1; neg t0, t0; srli a2, a2, 1; and t0, t0, a4; xor a2, a2, t0

RVTEST_CODE_BEGIN
        li TESTNUM, 2
        # fill the buffer: x = x * 1103515245 + 12345 (mod 2^32), byte = (x >> 16) & 0xff
        la a0, buffer
        li a1, BUF_SIZE
        li t1, 12345
        li t2, 1103515245
        li t3, 0xffffffff
1:      mul t1, t1, t2
        addi t1, t1, 12345 & 0x7ff
        li t4, 12345 - (12345 & 0x7ff)
        add t1, t1, t4
        and t1, t1, t3
        srli t4, t1, 16
        sb t4, 0(a0)
        addi a0, a0, 1
        addi a1, a1, -1
        bnez a1, 1b

        li a2, 0xffffffff          # crc
        li a4, 0xedb88320          # polynomial
        li a5, PASSES
2:      la a0, buffer
        li a1, BUF_SIZE
3:      lbu t1, 0(a0)
        xor a2, a2, t1
        CRC_BIT; CRC_BIT; CRC_BIT; CRC_BIT
        CRC_BIT; CRC_BIT; CRC_BIT; CRC_BIT
        addi a0, a0, 1
        addi a1, a1, -1
        bnez a1, 3b
        addi a5, a5, -1
        bnez a5, 2b
        li t0, 0xd85d1b6a
        bne a2, t0, fail
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
        .bss
        .align 6
buffer: .skip BUF_SIZE
RVTEST_DATA_END
