# A user program under a small supervisor (privileged spec 4.1, 4.3): M-mode delegates user
# ecalls and page faults (medeleg) and enters S; the S-mode kernel builds Sv39 page tables, maps
# a user program's data at 0x40_0000 and its text at 0x40_1000, and runs it in U-mode. The kernel serves write(64)
# and exit(93) system calls (reading the user buffer with SUM = 1, printing through HTIF), and
# demand-pages the user's heap at 0x50_0000 from a pool on store/load page faults, retrying the
# faulting instruction. exit is passed to M-mode by an S-mode ecall. Output: sv-kernel.expected.
#include "test_macros.h"

#define USER_VA 0x400000
#define HEAP_VA 0x500000
#define HEAP_PAGES 4
#define SYS_WRITE 64
#define SYS_EXIT 93

/* a5 = leaf/non-leaf PTE for the physical address in a4 */
#define PTE_OF(flags) srli a5, a4, 12; slli a5, a5, 10; ori a5, a5, flags

RVTEST_CODE_BEGIN
        li TESTNUM, 2
        li t0, (1 << CAUSE_USER_ECALL) | (1 << CAUSE_LOAD_PAGE_FAULT) | (1 << CAUSE_STORE_PAGE_FAULT) | (1 << CAUSE_FETCH_PAGE_FAULT)
        csrw medeleg, t0
        # the kernel's exit ecall resumes M-mode at m_done
        la t5, trap_save; la t6, m_done; sd t6, TS_RESUME(t5)
        li t0, MSTATUS_MPP; csrc mstatus, t0
        li t0, MSTATUS_MPP_S; csrs mstatus, t0
        la t0, kernel_entry; csrw mepc, t0
        mret
m_done:
        li TESTNUM, 3
        la t5, trap_save; ld t6, TS_CAUSE(t5)
        li t5, CAUSE_SUPERVISOR_ECALL; bne t5, t6, fail
        # a0 = the user's exit code, or the kernel's complaint
        addi TESTNUM, a0, 100
        bnez a0, fail
        j pass

        # ---------------- the supervisor ----------------
kernel_entry:
        la t0, kernel_trap; csrw stvec, t0
        la t0, kernel_save; csrw sscratch, t0
        # root[2]: kernel gigapage 0x8000_0000, identity, supervisor only
        la s0, k_root
        li a4, 0x80000000; PTE_OF(PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D); sd a5, 2 * 8(s0)
        # root[0] -> l1; l1[2] -> l0 (VA 0x40_0000..0x5f_ffff)
        la a4, k_l1; PTE_OF(PTE_V); sd a5, 0(s0)
        la s1, k_l1
        la a4, k_l0; PTE_OF(PTE_V); sd a5, 2 * 8(s1)
        la s2, k_l0
        la a4, user_data; PTE_OF(PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D); sd a5, 0(s2)
        la a4, user_text; PTE_OF(PTE_V | PTE_R | PTE_X | PTE_U | PTE_A); sd a5, 8(s2)
        srli t0, s0, 12
        li t1, SATP_MODE_SV39
        or t0, t0, t1
        csrw satp, t0
        sfence.vma
        # enter the user program: SPP = U, SPIE = 0
        li t0, MSTATUS_SPP | MSTATUS_SPIE; csrc sstatus, t0
        li t0, USER_VA + 0x1000; csrw sepc, t0
        sret

        .align 4
kernel_trap:
        csrrw tp, sscratch, tp
        sd ra, 0(tp); sd t0, 8(tp); sd t1, 16(tp); sd t2, 24(tp)
        sd a1, 32(tp); sd a2, 40(tp); sd a3, 48(tp); sd a4, 56(tp); sd a5, 64(tp)
        csrr t0, scause
        li t1, CAUSE_USER_ECALL; beq t0, t1, k_syscall
        li t1, CAUSE_STORE_PAGE_FAULT; beq t0, t1, k_page_fault
        li t1, CAUSE_LOAD_PAGE_FAULT; beq t0, t1, k_page_fault
        # anything else: tell M-mode (exit code 40 + cause)
        addi a0, t0, 40
        ecall

k_syscall:
        csrr t0, sepc; addi t0, t0, 4; csrw sepc, t0
        li t1, SYS_WRITE; beq a7, t1, k_write
        li t1, SYS_EXIT; beq a7, t1, k_exit
        li a0, -38                       # ENOSYS
        j k_return
k_write:                                 # write(fd = a0, buf = a1, len = a2)
        li t0, MSTATUS_SUM; csrs sstatus, t0
        mv a3, a1
        add a4, a1, a2
1:      bgeu a3, a4, 2f
        lbu t0, 0(a3)
        la t1, tohost
        li t2, (1 << 56) | (1 << 48)
        or t2, t2, t0
        sd t2, 0(t1)
3:      ld t2, 0(t1); bnez t2, 3b
        addi a3, a3, 1
        j 1b
2:      li t0, MSTATUS_SUM; csrc sstatus, t0
        mv a0, a2
        j k_return
k_exit:                                  # exit(code = a0): the kernel checks its own books first
        la t0, k_faults; ld t0, 0(t0)
        li t1, HEAP_PAGES
        beq t0, t1, 1f
        li a0, 60                        # wrong number of demand-paging faults
1:      ecall                            # to M-mode; does not return

k_page_fault:                            # map a fresh zeroed page at stval if it is in the heap
        csrr t0, stval
        li t1, HEAP_VA; bltu t0, t1, 9f
        li t1, HEAP_VA + HEAP_PAGES * 4096; bgeu t0, t1, 9f
        srli t0, t0, 12; slli t0, t0, 12
        # the next pool page
        la t1, k_faults; ld t2, 0(t1); addi a1, t2, 1; sd a1, 0(t1)
        slli t2, t2, 12
        la a4, pool; add a4, a4, t2
        # zero it (through the kernel's identity mapping)
        mv a1, a4; li a2, 4096
2:      sd zero, 0(a1); addi a1, a1, 8; addi a2, a2, -8; bnez a2, 2b
        PTE_OF(PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D)
        # l0 index = (va >> 12) & 511
        srli t1, t0, 12; andi t1, t1, 511; slli t1, t1, 3
        la t2, k_l0; add t2, t2, t1; sd a5, 0(t2)
        sfence.vma t0
        j k_return                        # retry the faulting instruction
9:      li a0, 70                         # a fault outside the heap
        ecall

k_return:
        ld ra, 0(tp); ld t0, 8(tp); ld t1, 16(tp); ld t2, 24(tp)
        ld a1, 32(tp); ld a2, 40(tp); ld a3, 48(tp); ld a4, 56(tp); ld a5, 64(tp)
        csrrw tp, sscratch, tp
        sret
RVTEST_CODE_END

        # ---------------- the user program: data at USER_VA, text at USER_VA + 0x1000 ----------
        .section .user, "ax", @progbits
        /* no linker relaxation here: it would move user_text off its page (the .org below) */
        .option push
        .option norelax
        .align 12
user_data:
msg_hello: .ascii "hello from user mode under an Sv39 supervisor\n"
msg_hello_end:
msg_ok: .ascii "demand paging ok\n"
msg_ok_end:
        .align 3
counter: .dword 0
        .org user_data + 0x1000
user_text:
        li a0, 1; la a1, msg_hello; la a2, msg_hello_end; sub a2, a2, a1; li a7, SYS_WRITE; ecall
        li a6, 1; bne a0, a2, user_fail
        # touch the heap: every page faults once, then reads back
        li t0, HEAP_VA; li t1, HEAP_PAGES
1:      sw t1, 8(t0); li t2, 4096; add t0, t0, t2; addi t1, t1, -1; bnez t1, 1b
        li t0, HEAP_VA; li t1, HEAP_PAGES; li a3, 0
2:      lw t2, 8(t0); add a3, a3, t2; ld t2, 16(t0); add a3, a3, t2
        li t2, 4096; add t0, t0, t2; addi t1, t1, -1; bnez t1, 2b
        li a6, 2; li t0, 10; bne a3, t0, user_fail
        # the data page is writable, the text page is not reachable for stores (U RX)
        la t0, counter; ld t1, 0(t0); addi t1, t1, 5; sd t1, 0(t0); ld t1, 0(t0)
        li a6, 3; li t0, 5; bne t1, t0, user_fail
        li a0, 1; la a1, msg_ok; la a2, msg_ok_end; sub a2, a2, a1; li a7, SYS_WRITE; ecall
        li a7, 12345; ecall
        li a6, 4; li t0, -38; bne a0, t0, user_fail
        li a0, 0; li a7, SYS_EXIT; ecall
user_fail:
        mv a0, a6; li a7, SYS_EXIT; ecall
        .org user_text + 0x1000
        .option pop

RVTEST_DATA_BEGIN
        .align 3
k_faults: .dword 0
kernel_save: .fill 16, 8, 0
        .bss
        .align 12
k_root: .skip 4096
k_l1:   .skip 4096
k_l0:   .skip 4096
pool:   .skip 4096 * HEAP_PAGES
RVTEST_DATA_END
