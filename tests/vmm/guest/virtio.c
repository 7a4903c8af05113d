/* Polled virtio drivers for the test guest (virtio 1.2 §2.7 split virtqueues, §3.1 device
 * initialization): virtio-blk (§5.2) reads one sector, virtio-vsock (§5.10) runs one stream
 * connection to the host. Interrupts stay off; the guest polls the used rings. */
#include "virtio.h"

#include <stddef.h>
#include <stdint.h>

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

struct vq {
  struct virtq_desc desc[QUEUE_SIZE] __attribute__((aligned(16)));
  struct virtq_avail avail __attribute__((aligned(2)));
  volatile struct virtq_used used __attribute__((aligned(4)));
  uint16_t last_used;
};

static struct vq blkq, rxq, txq, evq;
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

static const char* begin(uint64_t base) {
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
  return NULL;
}

static const char* setup_queue(uint64_t base, uint32_t index, struct vq* q) {
  wr(base, VIRTIO_MMIO_QUEUE_SEL, index);
  if (rd(base, VIRTIO_MMIO_QUEUE_NUM_MAX) < QUEUE_SIZE) return "queue too small";
  wr(base, VIRTIO_MMIO_QUEUE_NUM, QUEUE_SIZE);
  set_queue_addr(base, VIRTIO_MMIO_QUEUE_DESC_LOW, q->desc);
  set_queue_addr(base, VIRTIO_MMIO_QUEUE_DRIVER_LOW, &q->avail);
  set_queue_addr(base, VIRTIO_MMIO_QUEUE_DEVICE_LOW, &q->used);
  wr(base, VIRTIO_MMIO_QUEUE_READY, 1);
  return NULL;
}

static void driver_ok(uint64_t base) {
  wr(base, VIRTIO_MMIO_STATUS,
     STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
}

/* Makes descriptor chain `head` available on queue `index` and notifies the device. */
static void publish(uint64_t base, uint32_t index, struct vq* q, uint16_t head) {
  q->avail.ring[q->avail.idx % QUEUE_SIZE] = head;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  q->avail.idx++;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  wr(base, VIRTIO_MMIO_QUEUE_NOTIFY, index);
}

/* Waits for the next used element of `q`: 0 on timeout, else 1 with *id and *len. */
static int wait_used(struct vq* q, uint32_t* id, uint32_t* len) {
  for (uint32_t spins = 0; q->used.idx == q->last_used; ++spins)
    if (spins == 20000000) return 0;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  *id = q->used.ring[q->last_used % QUEUE_SIZE].id;
  *len = q->used.ring[q->last_used % QUEUE_SIZE].len;
  q->last_used++;
  return 1;
}

/* ---- virtio-blk ---- */
const char* virtio_blk_read_sector0(uint64_t base, uint8_t* out) {
  const char* error = begin(base);
  if (!error) error = setup_queue(base, 0, &blkq);
  if (error) return error;
  driver_ok(base);
  header.type = VIRTIO_BLK_T_IN;
  header.sector = 0;
  status_byte = 0xff;
  blkq.desc[0] =
      (struct virtq_desc){(uint64_t)(uintptr_t)&header, sizeof header, VIRTQ_DESC_F_NEXT, 1};
  blkq.desc[1] =
      (struct virtq_desc){(uint64_t)(uintptr_t)out, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2};
  blkq.desc[2] = (struct virtq_desc){(uint64_t)(uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0};
  publish(base, 0, &blkq, 0);
  uint32_t id, len;
  if (!wait_used(&blkq, &id, &len)) return "no completion in the used ring";
  wr(base, VIRTIO_MMIO_INTERRUPT_ACK, rd(base, VIRTIO_MMIO_INTERRUPT_STATUS));
  if (status_byte != 0) return "request failed (status byte not VIRTIO_BLK_S_OK)";
  return NULL;
}

/* ---- virtio-vsock ---- */
#define VSOCK_HDR 44
#define VSOCK_HOST_CID 2
#define VSOCK_GUEST_PORT 1024
#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RST 3
#define VSOCK_OP_SHUTDOWN 4
#define VSOCK_OP_RW 5
#define RX_BUFFERS 4
#define RX_BUFFER_SIZE 256

static uint8_t rxbuf[RX_BUFFERS][RX_BUFFER_SIZE];
static uint8_t txbuf[VSOCK_HDR + 128];
static uint64_t vsock_cid;
static uint32_t vsock_received;

static void put_le(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

static uint32_t vsock_local_port; /* set per connection (.bss only: see firmware.ld) */

static const char* vsock_send(uint64_t base, uint32_t port, uint16_t op, uint32_t flags,
                              const char* data, uint32_t len) {
  for (int i = 0; i < VSOCK_HDR; ++i) txbuf[i] = 0;
  put_le(txbuf + 0, vsock_cid, 8);
  put_le(txbuf + 8, VSOCK_HOST_CID, 8);
  put_le(txbuf + 16, vsock_local_port, 4);
  put_le(txbuf + 20, port, 4);
  put_le(txbuf + 24, len, 4);
  put_le(txbuf + 28, 1, 2); /* VIRTIO_VSOCK_TYPE_STREAM */
  put_le(txbuf + 30, op, 2);
  put_le(txbuf + 32, flags, 4);
  put_le(txbuf + 36, RX_BUFFERS * RX_BUFFER_SIZE, 4); /* buf_alloc */
  put_le(txbuf + 40, vsock_received, 4);              /* fwd_cnt */
  for (uint32_t i = 0; i < len; ++i) txbuf[VSOCK_HDR + i] = (uint8_t)data[i];
  txq.desc[0] = (struct virtq_desc){(uint64_t)(uintptr_t)txbuf, VSOCK_HDR + len, 0, 0};
  publish(base, 1, &txq, 0);
  uint32_t id, used_len;
  if (!wait_used(&txq, &id, &used_len)) return "the device did not take a tx packet";
  return NULL;
}

/* Waits for the next rx packet; copies its header op and payload, then re-posts the buffer. */
static const char* vsock_receive(uint64_t base, uint16_t* op, char* payload, uint32_t cap,
                                 uint32_t* len, uint32_t* peer_port, uint32_t* local_port) {
  uint32_t id, used_len;
  if (!wait_used(&rxq, &id, &used_len)) return "no packet from the host";
  if (id >= RX_BUFFERS || used_len < VSOCK_HDR) return "malformed rx completion";
  const uint8_t* p = rxbuf[id];
  *op = (uint16_t)get_le(p + 30, 2);
  *len = (uint32_t)get_le(p + 24, 4);
  *peer_port = (uint32_t)get_le(p + 16, 4);
  *local_port = (uint32_t)get_le(p + 20, 4);
  if (*len > used_len - VSOCK_HDR) *len = used_len - VSOCK_HDR;
  if (*op == VSOCK_OP_RW) vsock_received += *len;
  uint32_t n = *len < cap ? *len : cap;
  for (uint32_t i = 0; i < n; ++i) payload[i] = (char)p[VSOCK_HDR + i];
  *len = n;
  rxq.desc[id] =
      (struct virtq_desc){(uint64_t)(uintptr_t)rxbuf[id], RX_BUFFER_SIZE, VIRTQ_DESC_F_WRITE, 0};
  publish(base, 0, &rxq, (uint16_t)id);
  return NULL;
}

static const char* vsock_init(uint64_t base, uint64_t* cid) {
  const char* error = begin(base);
  if (!error) error = setup_queue(base, 0, &rxq);
  if (!error) error = setup_queue(base, 1, &txq);
  if (!error) error = setup_queue(base, 2, &evq);
  if (error) return error;
  driver_ok(base);
  vsock_cid = rd(base, 0x100) | ((uint64_t)rd(base, 0x104) << 32);
  *cid = vsock_cid;
  for (uint16_t i = 0; i < RX_BUFFERS; ++i) {
    rxq.desc[i] =
        (struct virtq_desc){(uint64_t)(uintptr_t)rxbuf[i], RX_BUFFER_SIZE, VIRTQ_DESC_F_WRITE, 0};
    publish(base, 0, &rxq, i);
  }
  return NULL;
}

const char* virtio_vsock_echo(uint64_t base, uint32_t port, const char* message, char* reply,
                              uint32_t cap, uint64_t* cid) {
  const char* error = vsock_init(base, cid);
  if (error) return error;
  vsock_local_port = VSOCK_GUEST_PORT;
  uint16_t op;
  uint32_t len, peer, local, message_len = 0;
  while (message[message_len]) ++message_len;
  if ((error = vsock_send(base, port, VSOCK_OP_REQUEST, 0, NULL, 0))) return error;
  if ((error = vsock_receive(base, &op, reply, cap, &len, &peer, &local))) return error;
  if (op == VSOCK_OP_RST) return "the host refused the connection";
  if (op != VSOCK_OP_RESPONSE) return "unexpected answer to the connection request";
  if ((error = vsock_send(base, port, VSOCK_OP_RW, 0, message, message_len))) return error;
  do {
    if ((error = vsock_receive(base, &op, reply, cap - 1, &len, &peer, &local))) return error;
  } while (op != VSOCK_OP_RW && op != VSOCK_OP_RST && op != VSOCK_OP_SHUTDOWN);
  if (op != VSOCK_OP_RW) return "the host closed the connection without answering";
  reply[len] = 0;
  return vsock_send(base, port, VSOCK_OP_SHUTDOWN, 3, NULL, 0);
}

const char* virtio_vsock_serve(uint64_t base, uint32_t port, char* received, uint32_t cap,
                               uint64_t* cid) {
  const char* error = vsock_init(base, cid);
  if (error) return error;
  uint16_t op;
  uint32_t len, peer = 0, local = 0;
  vsock_local_port = port;
  do { /* wait for a connection request to our port; refuse others */
    if ((error = vsock_receive(base, &op, received, cap, &len, &peer, &local))) return error;
    if (op == VSOCK_OP_REQUEST && local != port &&
        (error = vsock_send(base, peer, VSOCK_OP_RST, 0, NULL, 0)))
      return error;
  } while (op != VSOCK_OP_REQUEST || local != port);
  if ((error = vsock_send(base, peer, VSOCK_OP_RESPONSE, 0, NULL, 0))) return error;
  do {
    if ((error = vsock_receive(base, &op, received, cap - 1, &len, &peer, &local))) return error;
  } while (op != VSOCK_OP_RW && op != VSOCK_OP_RST && op != VSOCK_OP_SHUTDOWN);
  if (op != VSOCK_OP_RW) return "the host closed the connection without sending anything";
  received[len] = 0;
  static char answer[128] = {0};
  const char prefix[] = "echo: ";
  uint32_t n = 0;
  for (; prefix[n]; ++n) answer[n] = prefix[n];
  for (uint32_t i = 0; i < len && n < sizeof answer; ++i) answer[n++] = received[i];
  if ((error = vsock_send(base, peer, VSOCK_OP_RW, 0, answer, n))) return error;
  do { /* the host closes: SHUTDOWN from the device, answered with RST */
    if ((error = vsock_receive(base, &op, answer, sizeof answer, &len, &peer, &local)))
      return error;
  } while (op != VSOCK_OP_SHUTDOWN && op != VSOCK_OP_RST);
  return op == VSOCK_OP_SHUTDOWN ? vsock_send(base, peer, VSOCK_OP_RST, 0, NULL, 0) : NULL;
}
