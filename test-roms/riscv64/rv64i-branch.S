# RV64I control transfer: every branch taken and not taken (signed vs unsigned compares at the
# extremes), forward and backward; jal/jalr link values, jalr clearing bit 0 of the target
# (unprivileged spec 2.5.1), jalr with rd == rs1.
#include "test_macros.h"

RVTEST_CODE_BEGIN
        TEST_BR2_TAKEN(2, beq, 0, 0)
        TEST_BR2_TAKEN(3, beq, -1, -1)
        TEST_BR2_NOT_TAKEN(4, beq, 0, 1)
        TEST_BR2_NOT_TAKEN(5, beq, 0x100000000, 0)
        TEST_BR2_TAKEN(6, bne, 0, 1)
        TEST_BR2_TAKEN(7, bne, 0x100000000, 0)
        TEST_BR2_NOT_TAKEN(8, bne, -1, -1)
        TEST_BR2_TAKEN(9, blt, -1, 0)
        TEST_BR2_TAKEN(10, blt, 0x8000000000000000, 0x7fffffffffffffff)
        TEST_BR2_NOT_TAKEN(11, blt, 0, -1)
        TEST_BR2_NOT_TAKEN(12, blt, 5, 5)
        TEST_BR2_TAKEN(13, bge, 0, -1)
        TEST_BR2_TAKEN(14, bge, 5, 5)
        TEST_BR2_TAKEN(15, bge, 0x7fffffffffffffff, 0x8000000000000000)
        TEST_BR2_NOT_TAKEN(16, bge, -1, 0)
        TEST_BR2_TAKEN(17, bltu, 0, -1)
        TEST_BR2_TAKEN(18, bltu, 0x7fffffffffffffff, 0x8000000000000000)
        TEST_BR2_NOT_TAKEN(19, bltu, -1, 0)
        TEST_BR2_NOT_TAKEN(20, bltu, 5, 5)
        TEST_BR2_TAKEN(21, bgeu, -1, 0)
        TEST_BR2_TAKEN(22, bgeu, 5, 5)
        TEST_BR2_NOT_TAKEN(23, bgeu, 0, -1)
        TEST_BR2_NOT_TAKEN(24, bgeu, 0x7fffffffffffffff, 0x8000000000000000)
        # jal link value = pc + 4
        TEST_CASE(30, x14, 0, la x15, 1f; jal x14, 2f; 1: j fail; 2: sub x14, x14, x15)
        # jal x0 does not link; a long forward jump over a block
        TEST_CASE(31, x14, 7, li x14, 7; jal x0, 1f; li x14, 0; .skip 4096; 1: nop)
        # jalr: target = (rs1 + imm) & ~1, link = pc + 4
        TEST_CASE(32, x14, 0, la x1, 2f - 3; la x15, 1f; jalr x14, 3(x1); 1: j fail; 2: sub x14, x14, x15)
        TEST_CASE(33, x14, 0, la x1, 2f + 1; la x15, 1f; jalr x14, -1(x1); 1: j fail; 2: sub x14, x14, x15)
        TEST_CASE(34, x14, 0, la x1, 2f; addi x1, x1, 1; la x15, 1f; jalr x14, 0(x1); 1: j fail; 2: sub x14, x14, x15)
        # rd == rs1: the target uses the old value
        TEST_CASE(35, x1, 0, la x1, 2f; la x15, 1f; jalr x1, 0(x1); 1: j fail; 2: sub x1, x1, x15)
        # call / ret round trip through a function
        TEST_CASE(36, x10, 42, li x10, 40; call add_two)
        # backward branch loop: sum 1..100
        TEST_CASE(37, x14, 5050, li x14, 0; li x1, 100; 1: add x14, x14, x1; addi x1, x1, -1; bnez x1, 1b)
        # branches to the instruction right after (offset 4) and with a taken-not-taken mix in a block
        TEST_CASE(38, x14, 3, li x14, 0; li x1, 1; beq x1, x1, 1f; 1: addi x14, x14, 1; bne x1, x1, fail; addi x14, x14, 2)
        j pass

add_two:
        addi x10, x10, 2
        ret
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END
