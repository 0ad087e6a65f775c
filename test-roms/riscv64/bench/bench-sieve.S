# CPU-bound benchmark for MIPS measurements (not run by the test runner): sieve of Eratosthenes
# over 1,000,000 bytes, 12 passes, with the outer-loop test in a called function so that
# call/ret (indirect jumps through the jump cache) are as hot as the loops; about 200 million
# instructions. Exits 0 only if every pass counts 78498 primes below 1,000,000.
#include "test_macros.h"

#define N 1000000
#define PASSES 12
#define PRIMES_BELOW_N 78498

RVTEST_CODE_BEGIN
        li TESTNUM, 2
        li s0, PASSES
pass_loop:
        # clear the array
        la a0, sieve
        li t0, N / 8
1:      sd zero, 0(a0)
        addi a0, a0, 8
        addi t0, t0, -1
        bnez t0, 1b
        # sieve
        la s1, sieve
        li s2, N
        li s3, 2              # i
        li s4, 0              # count
outer:
        mv a0, s3
        call is_composite
        bnez a0, next
        addi s4, s4, 1
        mul t1, s3, s3        # j = i * i
        bgeu t1, s2, next
        add t2, s1, t1
        add t3, s1, s2
        li t4, 1
2:      sb t4, 0(t2)
        add t2, t2, s3
        bltu t2, t3, 2b
next:
        addi s3, s3, 1
        bltu s3, s2, outer
        li t0, PRIMES_BELOW_N
        li TESTNUM, 3
        bne s4, t0, fail
        addi s0, s0, -1
        bnez s0, pass_loop
        j pass

/* a0 = sieve[a0] */
is_composite:
        la t0, sieve
        add t0, t0, a0
        lbu a0, 0(t0)
        ret
RVTEST_CODE_END

RVTEST_DATA_BEGIN
        .bss
        .align 6
sieve:  .skip N
RVTEST_DATA_END
