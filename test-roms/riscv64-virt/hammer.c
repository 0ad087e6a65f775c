/* MMIO and doorbell hammer for tests/resource_bounds.rs: for ROUNDS rounds, write and read the
 * UART0 scratch and interrupt-enable registers, ring every virtio-mmio transport's QueueNotify
 * (on a device whose queue is not set up, and on empty transports), write Status with nonsense,
 * and claim/complete PLIC context 0 — none of which may make emu's memory grow. Prints
 * "HAMMER DONE" and powers off. */
#include "virt.h"

#define PLIC 0x0c000000UL
#define PLIC_CLAIM0 (PLIC + 0x200004UL)
#ifndef ROUNDS
#define ROUNDS 400000UL
#endif

int main(void) {
    u64 sum = 0;
    for (u64 r = 0; r < ROUNDS; r++) {
        wr8(UART0 + 7, (u8)r); /* SCR */
        sum += rd8(UART0 + 7);
        wr8(UART0 + 1, 0x0f); /* IER: every interrupt */
        wr8(UART0 + 1, 0);
        for (u64 i = 0; i < VIRTIO_COUNT; i++) {
            u64 base = VIRTIO0 + i * VIRTIO_STRIDE;
            wr32(base + MMIO_QUEUE_NOTIFY, (u32)r);
            wr32(base + MMIO_QUEUE_SEL, (u32)r);
            sum += rd32(base + MMIO_QUEUE_NUM_MAX);
            wr32(base + MMIO_INTERRUPT_ACK, 0xffffffff);
        }
        u32 id = rd32(PLIC_CLAIM0);
        wr32(PLIC_CLAIM0, id);
    }
    puts_("HAMMER DONE ");
    putu(sum & 0xff);
    puts_("\n");
    return 0;
}
