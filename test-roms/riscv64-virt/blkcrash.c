/* Crash-safety writer for tests/disk_crash.rs and scripts/disk-crash.sh.
 *
 * Block 0 of the virtio-blk disk (written by the host) holds the run's parameters:
 *   u64 magic "EMUCRASH", u64 generation, u64 block count N.
 * For i = 1..N the program writes 4 KiB block i (sectors 8i..8i+7):
 *   u64 magic "EMUBLOCK", u64 i, u64 generation, u64 FNV-1a-64 of the 4064-byte payload,
 *   payload = xorshift64 stream seeded from (generation, i),
 * then issues VIRTIO_BLK_T_FLUSH and prints "FLUSHED i" on UART0 only once the flush completed
 * with VIRTIO_BLK_S_OK. A failed request prints "IOERR i" and ends with exit code 2. After N
 * blocks it prints "DONE" and powers off (exit 0). Polling only: no interrupts.
 *
 * virtio-blk requests (VIRTIO 1.2 §5.2.6): header {le32 type, le32 reserved, le64 sector},
 * data, status byte; split virtqueue (§2.7) of 4 descriptors. */
#include "virt.h"

#define BLOCK 4096
#define HEADER 32
#define QSIZE 4

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

#define MAGIC_PARAMS 0x4853415243554d45UL /* "EMUCRASH" little-endian */
#define MAGIC_BLOCK 0x4b434f4c42554d45UL  /* "EMUBLOCK" little-endian */

struct virtq_desc {
    u64 addr;
    u32 len;
    u16 flags;
    u16 next;
};
struct virtq_avail {
    u16 flags;
    u16 idx;
    u16 ring[QSIZE];
};
struct virtq_used_elem {
    u32 id;
    u32 len;
};
struct virtq_used {
    u16 flags;
    u16 idx;
    struct virtq_used_elem ring[QSIZE];
};
struct blk_req {
    u32 type;
    u32 reserved;
    u64 sector;
};

static struct virtq_desc desc[QSIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(2)));
static struct virtq_used used __attribute__((aligned(4)));
static struct blk_req req;
static volatile u8 req_status;
static u64 buf[BLOCK / 8];
static u16 last_used;
static u64 blk;

void *memset(void *d, int c, unsigned long n) {
    u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, unsigned long n) {
    u8 *p = d;
    const u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

static int blk_init(void) {
    blk = virtio_find(VIRTIO_ID_BLOCK);
    if (!blk)
        return 10;
    /* §3.1.1 driver initialization. */
    wr32(blk + MMIO_STATUS, 0);
    wr32(blk + MMIO_STATUS, STATUS_ACKNOWLEDGE);
    wr32(blk + MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    wr32(blk + MMIO_DEVICE_FEATURES_SEL, 0);
    u32 lo = rd32(blk + MMIO_DEVICE_FEATURES);
    wr32(blk + MMIO_DEVICE_FEATURES_SEL, 1);
    u32 hi = rd32(blk + MMIO_DEVICE_FEATURES);
    if (!(lo & (1u << VIRTIO_BLK_F_FLUSH)) || !(hi & (1u << (VIRTIO_F_VERSION_1 - 32))))
        return 11;
    wr32(blk + MMIO_DRIVER_FEATURES_SEL, 0);
    wr32(blk + MMIO_DRIVER_FEATURES, 1u << VIRTIO_BLK_F_FLUSH);
    wr32(blk + MMIO_DRIVER_FEATURES_SEL, 1);
    wr32(blk + MMIO_DRIVER_FEATURES, 1u << (VIRTIO_F_VERSION_1 - 32));
    wr32(blk + MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if (!(rd32(blk + MMIO_STATUS) & STATUS_FEATURES_OK))
        return 12;
    /* §4.2.3.2 virtqueue configuration. */
    wr32(blk + MMIO_QUEUE_SEL, 0);
    if (rd32(blk + MMIO_QUEUE_NUM_MAX) < QSIZE)
        return 13;
    wr32(blk + MMIO_QUEUE_NUM, QSIZE);
    wr32(blk + MMIO_QUEUE_DESC_LOW, (u32)(u64)desc);
    wr32(blk + MMIO_QUEUE_DESC_HIGH, (u32)((u64)desc >> 32));
    wr32(blk + MMIO_QUEUE_DRIVER_LOW, (u32)(u64)&avail);
    wr32(blk + MMIO_QUEUE_DRIVER_HIGH, (u32)((u64)&avail >> 32));
    wr32(blk + MMIO_QUEUE_DEVICE_LOW, (u32)(u64)&used);
    wr32(blk + MMIO_QUEUE_DEVICE_HIGH, (u32)((u64)&used >> 32));
    wr32(blk + MMIO_QUEUE_READY, 1);
    wr32(blk + MMIO_STATUS,
         STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    return 0;
}

/* One request: FLUSH has no data; IN and OUT move one 4 KiB block at `sector`.
 * Returns the status byte (0 = VIRTIO_BLK_S_OK), or 0xff if the device never answered. */
static int blk_request(u32 type, u64 sector) {
    req.type = type;
    req.reserved = 0;
    req.sector = sector;
    req_status = 0xff;
    desc[0] = (struct virtq_desc){(u64)&req, sizeof req, VIRTQ_DESC_F_NEXT, 1};
    u16 st = 1;
    if (type != VIRTIO_BLK_T_FLUSH) {
        u16 f = VIRTQ_DESC_F_NEXT | (type == VIRTIO_BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0);
        desc[1] = (struct virtq_desc){(u64)buf, BLOCK, f, 2};
        st = 2;
    }
    desc[st] = (struct virtq_desc){(u64)&req_status, 1, VIRTQ_DESC_F_WRITE, 0};
    avail.ring[avail.idx % QSIZE] = 0;
    fence();
    avail.idx++;
    fence();
    wr32(blk + MMIO_QUEUE_NOTIFY, 0);
    for (u64 spin = 0; *(volatile u16 *)&used.idx == last_used; spin++)
        if (spin > 100000000UL)
            return 0xff;
    fence();
    last_used++;
    wr32(blk + MMIO_INTERRUPT_ACK, rd32(blk + MMIO_INTERRUPT_STATUS));
    return req_status;
}

static u64 fnv1a(const u8 *p, u64 n) {
    u64 h = 0xcbf29ce484222325UL;
    while (n--) {
        h ^= *p++;
        h *= 0x100000001b3UL;
    }
    return h;
}

int main(void) {
    int e = blk_init();
    if (e) {
        puts_("NO DISK\n");
        return e;
    }
    if (blk_request(VIRTIO_BLK_T_IN, 0) != 0 || buf[0] != MAGIC_PARAMS) {
        puts_("NO PARAMS\n");
        return 3;
    }
    u64 gen = buf[1], n = buf[2];
    puts_("GEN ");
    putu(gen);
    puts_("\n");
    for (u64 i = 1; i <= n; i++) {
        buf[0] = MAGIC_BLOCK;
        buf[1] = i;
        buf[2] = gen;
        u64 x = (gen * 0x9e3779b97f4a7c15UL) ^ (i * 0xbf58476d1ce4e5b9UL) ^ 1;
        for (u64 k = HEADER / 8; k < BLOCK / 8; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[k] = x;
        }
        buf[3] = fnv1a((const u8 *)buf + HEADER, BLOCK - HEADER);
        if (blk_request(VIRTIO_BLK_T_OUT, i * (BLOCK / 512)) != 0 ||
            blk_request(VIRTIO_BLK_T_FLUSH, 0) != 0) {
            puts_("IOERR ");
            putu(i);
            puts_("\n");
            return 2;
        }
        puts_("FLUSHED ");
        putu(i);
        puts_("\n");
    }
    puts_("DONE\n");
    return 0;
}
