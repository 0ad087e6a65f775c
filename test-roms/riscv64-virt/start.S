# Entry of the virt bare-metal programs: hart 0 gets a stack and calls main(); other harts park.
# main's return value goes to the sifive_test finisher (0x100000): 0 is a pass (0x5555),
# anything else a fail with that code (code << 16 | 0x3333), as QEMU's virt board defines.
    .section .text.start
    .globl _start
_start:
    csrr    t0, mhartid
    bnez    t0, park
    la      sp, _stack_top
    # .bss is not cleared: the virt board starts with zeroed RAM.
    call    main
    li      t0, 0x100000
    beqz    a0, pass
    slli    a0, a0, 16
    li      t1, 0x3333
    or      a0, a0, t1
    sw      a0, 0(t0)
    j       park
pass:
    li      t1, 0x5555
    sw      t1, 0(t0)
park:
    wfi
    j       park
