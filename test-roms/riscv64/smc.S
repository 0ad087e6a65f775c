# Self-modifying code (unprivileged spec 3.1 "Zifencei"): stores into code that has already
# run, followed by fence.i, must be seen by the next fetch: a patched function called in a loop,
# an instruction patched later in the same basic block, a 16-bit (RVC) patch, a patch written by
# an AMO, and a routine copied into a buffer, run, then overwritten by another and run again.
#include "test_macros.h"

/* addi a0, zero, imm */
#define ADDI_A0(imm) ((((imm) & 0xfff) << 20) | (10 << 7) | 0x13)
/* c.li a0, imm (imm in -32..31) */
#define C_LI_A0(imm) (0x4001 | (10 << 7) | ((((imm) >> 5) & 1) << 12) | (((imm) & 0x1f) << 2))

RVTEST_CODE_BEGIN
        TEST_CASE(2, a0, 1, call smc_fn)
        # patch the function 20 times, calling it after each patch
        li TESTNUM, 3
        li s0, 0
1:      addi s0, s0, 1
        li t0, 0xfff; and t1, s0, t0; slli t1, t1, 20; li t0, (10 << 7) | 0x13; or t1, t1, t0
        la t0, smc_fn; sw t1, 0(t0)
        fence.i
        call smc_fn
        bne a0, s0, fail
        li t0, 20; blt s0, t0, 1b

        # patch an instruction later in the block that is running now
        TEST_CASE(4, a0, 77, la x1, 2f; li x2, ADDI_A0(77); sw x2, 0(x1); fence.i; .option push; .option norvc; 2: li a0, 5; .option pop)
        # and again, so the block now holding 77 must be retranslated too
        TEST_CASE(5, a0, 99, la x1, 2f; li x2, ADDI_A0(99); sw x2, 0(x1); fence.i; .option push; .option norvc; 2: li a0, 5; .option pop)
        # a 16-bit patch of an RVC instruction
        TEST_CASE(6, a0, 0, call smc_rvc; addi a0, a0, -3)
        TEST_CASE(7, a0, 17, la x1, smc_rvc; li x2, C_LI_A0(17); sh x2, 0(x1); fence.i; call smc_rvc)
        TEST_CASE(8, a0, 0xffffffffffffffe0, la x1, smc_rvc; li x2, C_LI_A0(-32); sh x2, 0(x1); fence.i; call smc_rvc)
        # a patch written by an AMO
        TEST_CASE(9, a0, 1234, la x1, smc_fn; li x2, ADDI_A0(1234); amoswap.w x0, x2, (x1); fence.i; call smc_fn)
        # copy routine A into a buffer, run it, overwrite it with routine B, run it
        la a0, code_buf; la a1, routine_a; la a2, routine_a_end; call copy_code
        fence.i
        TEST_CASE(10, a0, 0x600, li a0, 3; la t0, code_buf; jalr t0)
        la a0, code_buf; la a1, routine_b; la a2, routine_b_end; call copy_code
        fence.i
        TEST_CASE(11, a0, 0xfffffffffffffffd, li a0, 3; la t0, code_buf; jalr t0)
        # the routine in the buffer runs many times (hot) before being replaced
        la a0, code_buf; la a1, routine_a; la a2, routine_a_end; call copy_code
        fence.i
        li TESTNUM, 12
        li s0, 2000
1:      li a0, 1; la t0, code_buf; jalr t0; li t1, 0x200; bne a0, t1, fail
        addi s0, s0, -1; bnez s0, 1b
        la a0, code_buf; la a1, routine_b; la a2, routine_b_end; call copy_code
        fence.i
        TEST_CASE(13, a0, 0xffffffffffffffff, li a0, 1; la t0, code_buf; jalr t0)
        j pass

/* copies [a1, a2) to a0, a word at a time */
copy_code:
1:      lw t0, 0(a1)
        sw t0, 0(a0)
        addi a1, a1, 4
        addi a0, a0, 4
        bltu a1, a2, 1b
        ret

        .balign 4
smc_fn:
        .option push
        .option norvc
        li a0, 1
        .option pop
        ret
        .balign 4
smc_rvc:
        .option push
        .option rvc
        c.li a0, 3
        .option pop
        ret

        .balign 4
        .option push
        .option norvc
routine_a:              /* a0 << 9 */
        slli a0, a0, 9
        ret
        .balign 4
routine_a_end:
routine_b:              /* -a0 */
        sub a0, zero, a0
        nop
        nop
        ret
        .balign 4
routine_b_end:
        .option pop
RVTEST_CODE_END

RVTEST_DATA_BEGIN
        .align 6
code_buf: .fill 16, 4, 0
RVTEST_DATA_END
