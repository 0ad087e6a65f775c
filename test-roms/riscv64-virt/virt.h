/* Shared helpers of the virt bare-metal programs: UART0 (NS16550A at 0x10000000) output and
 * the virtio-mmio transports (VIRTIO 1.2 §4.2.2 register layout, version 2). */
#ifndef VIRT_H
#define VIRT_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

#define UART0 0x10000000UL
#define VIRTIO0 0x10001000UL
#define VIRTIO_STRIDE 0x1000UL
#define VIRTIO_COUNT 8

/* virtio-mmio registers (§4.2.2). */
#define MMIO_MAGIC 0x000
#define MMIO_VERSION 0x004
#define MMIO_DEVICE_ID 0x008
#define MMIO_DEVICE_FEATURES 0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES 0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_QUEUE_SEL 0x030
#define MMIO_QUEUE_NUM_MAX 0x034
#define MMIO_QUEUE_NUM 0x038
#define MMIO_QUEUE_READY 0x044
#define MMIO_QUEUE_NOTIFY 0x050
#define MMIO_INTERRUPT_STATUS 0x060
#define MMIO_INTERRUPT_ACK 0x064
#define MMIO_STATUS 0x070
#define MMIO_QUEUE_DESC_LOW 0x080
#define MMIO_QUEUE_DESC_HIGH 0x084
#define MMIO_QUEUE_DRIVER_LOW 0x090
#define MMIO_QUEUE_DRIVER_HIGH 0x094
#define MMIO_QUEUE_DEVICE_LOW 0x0a0
#define MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define MMIO_CONFIG 0x100

/* Device status bits (§2.1). */
#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8

static inline u32 rd32(u64 a) { return *(volatile u32 *)a; }
static inline void wr32(u64 a, u32 v) { *(volatile u32 *)a = v; }
static inline void wr8(u64 a, u8 v) { *(volatile u8 *)a = v; }
static inline u8 rd8(u64 a) { return *(volatile u8 *)a; }
static inline void fence(void) { __asm__ volatile("fence iorw, iorw" ::: "memory"); }

static inline void putc_(char c) {
    while (!(rd8(UART0 + 5) & 0x20)) /* LSR.THRE */
        ;
    wr8(UART0, (u8)c);
}

static inline void puts_(const char *s) {
    while (*s)
        putc_(*s++);
}

static inline void putu(u64 v) {
    char buf[24];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        putc_(buf[--n]);
}

/* The base of the first virtio-mmio transport with this DeviceID, or 0. */
static inline u64 virtio_find(u32 device_id) {
    for (u64 i = 0; i < VIRTIO_COUNT; i++) {
        u64 base = VIRTIO0 + i * VIRTIO_STRIDE;
        if (rd32(base + MMIO_MAGIC) == 0x74726976 && rd32(base + MMIO_VERSION) == 2 &&
            rd32(base + MMIO_DEVICE_ID) == device_id)
            return base;
    }
    return 0;
}

#endif
