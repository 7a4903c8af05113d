/* A polled, single-request virtio-blk driver (virtio 1.2 §2.7 split virtqueues, §3.1 device
 * initialization, §5.2 block device). Interrupts stay off; the guest polls the used ring. */
#include <stddef.h>
#include <stdint.h>

#include "virtio.h"

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define VIRTIO_F_VERSION_1_WORD1 (1u << 0) /* feature bit 32 */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTIO_BLK_T_IN 0
#define QUEUE_SIZE 8

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
struct virtq_avail {
  uint16_t flags;
  uint16_t idx;
  uint16_t ring[QUEUE_SIZE];
};
struct virtq_used_elem {
  uint32_t id;
  uint32_t len;
};
struct virtq_used {
  uint16_t flags;
  uint16_t idx;
  struct virtq_used_elem ring[QUEUE_SIZE];
};
struct blk_req_header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

static struct virtq_desc desc[QUEUE_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(2)));
static volatile struct virtq_used used __attribute__((aligned(4)));
static struct blk_req_header header;
static volatile uint8_t status_byte;

static inline uint32_t rd(uint64_t base, uint32_t off) {
  return *(volatile uint32_t*)(base + off);
}
static inline void wr(uint64_t base, uint32_t off, uint32_t v) {
  *(volatile uint32_t*)(base + off) = v;
}

static void set_queue_addr(uint64_t base, uint32_t low_reg, const volatile void* p) {
  uint64_t a = (uint64_t)(uintptr_t)p;
  wr(base, low_reg, (uint32_t)a);
  wr(base, low_reg + 4, (uint32_t)(a >> 32));
}

const char* virtio_blk_read_sector0(uint64_t base, uint8_t* out) {
  if (rd(base, VIRTIO_MMIO_VERSION) != 2) return "not a virtio 1.x (version 2) transport";
  wr(base, VIRTIO_MMIO_STATUS, 0);
  wr(base, VIRTIO_MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
  wr(base, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  if (!(rd(base, VIRTIO_MMIO_DEVICE_FEATURES) & VIRTIO_F_VERSION_1_WORD1))
    return "device does not offer VIRTIO_F_VERSION_1";
  wr(base, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  wr(base, VIRTIO_MMIO_DRIVER_FEATURES, 0);
  wr(base, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  wr(base, VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_F_VERSION_1_WORD1);
  wr(base, VIRTIO_MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
  if (!(rd(base, VIRTIO_MMIO_STATUS) & STATUS_FEATURES_OK)) return "device refused our features";

  wr(base, VIRTIO_MMIO_QUEUE_SEL, 0);
  if (rd(base, VIRTIO_MMIO_QUEUE_NUM_MAX) < QUEUE_SIZE) return "queue 0 too small";
  wr(base, VIRTIO_MMIO_QUEUE_NUM, QUEUE_SIZE);
  set_queue_addr(base, VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
  set_queue_addr(base, VIRTIO_MMIO_QUEUE_DRIVER_LOW, &avail);
  set_queue_addr(base, VIRTIO_MMIO_QUEUE_DEVICE_LOW, &used);
  wr(base, VIRTIO_MMIO_QUEUE_READY, 1);
  wr(base, VIRTIO_MMIO_STATUS,
     STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);

  header.type = VIRTIO_BLK_T_IN;
  header.sector = 0;
  status_byte = 0xff;
  desc[0] = (struct virtq_desc){(uint64_t)(uintptr_t)&header, sizeof header, VIRTQ_DESC_F_NEXT, 1};
  desc[1] =
      (struct virtq_desc){(uint64_t)(uintptr_t)out, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2};
  desc[2] = (struct virtq_desc){(uint64_t)(uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0};
  avail.ring[0] = 0;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  avail.idx = 1;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  wr(base, VIRTIO_MMIO_QUEUE_NOTIFY, 0);

  for (uint32_t spins = 0; used.idx == 0; ++spins)
    if (spins == 10000000) return "no completion in the used ring";
  wr(base, VIRTIO_MMIO_INTERRUPT_ACK, rd(base, VIRTIO_MMIO_INTERRUPT_STATUS));
  if (status_byte != 0) return "request failed (status byte not VIRTIO_BLK_S_OK)";
  return NULL;
}
