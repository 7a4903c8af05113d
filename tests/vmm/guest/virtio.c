/* Polled virtio drivers for the test guest (virtio 1.2 §2.7 split virtqueues, §3.1 device
 * initialization): virtio-blk (§5.2) reads one sector, virtio-vsock (§5.10) runs one stream
 * connection to the host. Interrupts stay off; the guest polls the used rings. */
#include "virtio.h"

#include <stddef.h>
#include <stdint.h>

#include "le.h"

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

static struct vq blkq, rxq, txq, evq, netrxq, nettxq;
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

/* Resets the device and negotiates VERSION_1 plus the features of `want` (bits 0-31) the
 * device offers; stores those in *got when got is not NULL. */
static const char* begin_with(uint64_t base, uint32_t want, uint32_t* got) {
  if (rd(base, VIRTIO_MMIO_VERSION) != 2) return "not a virtio 1.x (version 2) transport";
  wr(base, VIRTIO_MMIO_STATUS, 0);
  wr(base, VIRTIO_MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
  wr(base, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  if (!(rd(base, VIRTIO_MMIO_DEVICE_FEATURES) & VIRTIO_F_VERSION_1_WORD1))
    return "device does not offer VIRTIO_F_VERSION_1";
  wr(base, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  const uint32_t accepted = rd(base, VIRTIO_MMIO_DEVICE_FEATURES) & want;
  if (got) *got = accepted;
  wr(base, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  wr(base, VIRTIO_MMIO_DRIVER_FEATURES, accepted);
  wr(base, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  wr(base, VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_F_VERSION_1_WORD1);
  wr(base, VIRTIO_MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
  if (!(rd(base, VIRTIO_MMIO_STATUS) & STATUS_FEATURES_OK)) return "device refused our features";
  return NULL;
}

static const char* begin(uint64_t base) {
  return begin_with(base, 0, NULL);
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

/* Waits for the next used element of `q`, polling at most `spins` times (0: for as long as it
 * takes): 0 on timeout, else 1 with *id and *len. */
#define WAIT_SPINS 20000000u
static int wait_used(struct vq* q, uint32_t* id, uint32_t* len, uint32_t spins) {
  for (uint32_t n = 1; q->used.idx == q->last_used; ++n)
    if (spins != 0 && n == spins) return 0;
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
  return virtio_blk_read_sector(base, 0, out);
}

const char* virtio_blk_read_sector(uint64_t base, uint64_t sector, uint8_t* out) {
  header.type = VIRTIO_BLK_T_IN;
  header.sector = sector;
  status_byte = 0xff;
  blkq.desc[0] =
      (struct virtq_desc){(uint64_t)(uintptr_t)&header, sizeof header, VIRTQ_DESC_F_NEXT, 1};
  blkq.desc[1] =
      (struct virtq_desc){(uint64_t)(uintptr_t)out, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2};
  blkq.desc[2] = (struct virtq_desc){(uint64_t)(uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0};
  publish(base, 0, &blkq, 0);
  uint32_t id, len;
  if (!wait_used(&blkq, &id, &len, WAIT_SPINS)) return "no completion in the used ring";
  wr(base, VIRTIO_MMIO_INTERRUPT_ACK, rd(base, VIRTIO_MMIO_INTERRUPT_STATUS));
  if (status_byte != 0) return "request failed (status byte not VIRTIO_BLK_S_OK)";
  return NULL;
}

/* ---- virtio-vsock: one stream connection at a time (virtio 1.2 §5.10.6) ---- */
#define VSOCK_HDR 44
#define VSOCK_HOST_CID 2
#define VSOCK_GUEST_PORT 1024
#define VSOCK_TYPE_STREAM 1
#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RST 3
#define VSOCK_OP_SHUTDOWN 4
#define VSOCK_OP_RW 5
#define VSOCK_OP_CREDIT_UPDATE 6
#define VSOCK_OP_CREDIT_REQUEST 7
#define VSOCK_SHUTDOWN_BOTH 3 /* VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND */
#define RX_BUFFERS 8
#define RX_BUFFER_SIZE 1024
#define TX_MAX_PAYLOAD 4096
/* What the guest buffers per connection (buf_alloc): received bytes wait here until read. */
#define STREAM_BUFFER 4096

#define EVENT_BUFFERS 4
#define VSOCK_EVENT_SIZE 4 /* struct virtio_vsock_event { le32 id; } */

static uint8_t rxbuf[RX_BUFFERS][RX_BUFFER_SIZE];
static uint8_t evbuf[EVENT_BUFFERS][VSOCK_EVENT_SIZE];
static uint8_t txbuf[VSOCK_HDR + TX_MAX_PAYLOAD];

/* The connection (.bss only: see firmware.ld). Byte counters wrap, as the spec's do. */
static struct {
  uint64_t base, cid;
  uint32_t local_port, peer_port;
  int listening, connecting, connected, reset;
  uint32_t peer_shutdown; /* VIRTIO_VSOCK_SHUTDOWN_* flags the host sent */
  uint8_t ring[STREAM_BUFFER];
  uint32_t ring_in, ring_out; /* ring_out is our fwd_cnt */
  uint32_t fwd_cnt_sent;      /* the fwd_cnt the host last heard */
  uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
} conn;

static const char* vsock_send_to(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t flags,
                                 const void* data, uint32_t len) {
  const uint8_t* bytes = data;
  for (int i = 0; i < VSOCK_HDR; ++i) txbuf[i] = 0;
  le_put(txbuf + 0, conn.cid, 8);
  le_put(txbuf + 8, VSOCK_HOST_CID, 8);
  le_put(txbuf + 16, src_port, 4);
  le_put(txbuf + 20, dst_port, 4);
  le_put(txbuf + 24, len, 4);
  le_put(txbuf + 28, VSOCK_TYPE_STREAM, 2);
  le_put(txbuf + 30, op, 2);
  le_put(txbuf + 32, flags, 4);
  le_put(txbuf + 36, STREAM_BUFFER, 4); /* buf_alloc */
  le_put(txbuf + 40, conn.ring_out, 4); /* fwd_cnt */
  for (uint32_t i = 0; i < len; ++i) txbuf[VSOCK_HDR + i] = bytes[i];
  txq.desc[0] = (struct virtq_desc){(uint64_t)(uintptr_t)txbuf, VSOCK_HDR + len, 0, 0};
  publish(conn.base, 1, &txq, 0);
  uint32_t id, used_len;
  if (!wait_used(&txq, &id, &used_len, WAIT_SPINS)) return "the device did not take a tx packet";
  conn.fwd_cnt_sent = conn.ring_out;
  if (op == VSOCK_OP_RW) conn.tx_cnt += len;
  return NULL;
}

static const char* vsock_send(uint16_t op, uint32_t flags, const void* data, uint32_t len) {
  return vsock_send_to(conn.local_port, conn.peer_port, op, flags, data, len);
}

/* Handles one packet addressed to the connection (or, while listening, asking for it). */
static const char* vsock_handle(const uint8_t* p, uint32_t payload_len) {
  const uint16_t op = (uint16_t)le_get(p + 30, 2);
  const uint32_t src_port = (uint32_t)le_get(p + 16, 4);
  if (op == VSOCK_OP_REQUEST && conn.listening) {
    conn.listening = 0;
    conn.connected = 1;
    conn.peer_port = src_port;
  } else if (!(conn.connecting || conn.connected) || src_port != conn.peer_port) {
    return NULL; /* a stale packet of an earlier connection */
  }
  conn.peer_buf_alloc = (uint32_t)le_get(p + 36, 4);
  conn.peer_fwd_cnt = (uint32_t)le_get(p + 40, 4);
  if (conn.connecting) { /* the answer to our request */
    conn.connecting = 0;
    conn.connected = op == VSOCK_OP_RESPONSE;
    conn.reset = op == VSOCK_OP_RST;
    return NULL;
  }
  switch (op) {
    case VSOCK_OP_REQUEST:
      return vsock_send(VSOCK_OP_RESPONSE, 0, NULL, 0);
    case VSOCK_OP_RW:
      if (payload_len > STREAM_BUFFER - (conn.ring_in - conn.ring_out))
        return "the host sent more than the receive window allows";
      for (uint32_t i = 0; i < payload_len; ++i)
        conn.ring[conn.ring_in++ % STREAM_BUFFER] = p[VSOCK_HDR + i];
      return NULL;
    case VSOCK_OP_CREDIT_REQUEST:
      return vsock_send(VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
    case VSOCK_OP_SHUTDOWN:
      conn.peer_shutdown |= (uint32_t)le_get(p + 32, 4);
      return NULL;
    case VSOCK_OP_RST:
      conn.reset = 1;
      conn.connected = 0;
      return NULL;
    default: /* CREDIT_UPDATE: the credit above is all it carries */
      return NULL;
  }
}

/* Waits for the next rx packet (polling at most `spins` times, 0: no limit), handles it and
 * re-posts its buffer. Connection requests to other ports are refused. */
static const char* vsock_poll(uint32_t spins) {
  uint32_t id, used_len;
  if (!wait_used(&rxq, &id, &used_len, spins)) return "no packet from the host";
  if (id >= RX_BUFFERS || used_len < VSOCK_HDR || used_len > RX_BUFFER_SIZE)
    return "malformed rx completion";
  const uint8_t* p = rxbuf[id];
  uint32_t len = (uint32_t)le_get(p + 24, 4);
  if (len > used_len - VSOCK_HDR) len = used_len - VSOCK_HDR;
  const char* error = NULL;
  if ((uint32_t)le_get(p + 20, 4) == conn.local_port) {
    error = vsock_handle(p, len);
  } else if (le_get(p + 30, 2) == VSOCK_OP_REQUEST) {
    error = vsock_send_to((uint32_t)le_get(p + 20, 4), (uint32_t)le_get(p + 16, 4), VSOCK_OP_RST, 0,
                          NULL, 0);
  }
  rxq.desc[id] =
      (struct virtq_desc){(uint64_t)(uintptr_t)rxbuf[id], RX_BUFFER_SIZE, VIRTQ_DESC_F_WRITE, 0};
  publish(conn.base, 0, &rxq, (uint16_t)id);
  return error;
}

static const char* vsock_init(uint64_t base, uint32_t local_port, uint64_t* cid) {
  const char* error = begin(base);
  if (!error) error = setup_queue(base, 0, &rxq);
  if (!error) error = setup_queue(base, 1, &txq);
  if (!error) error = setup_queue(base, 2, &evq);
  if (error) return error;
  driver_ok(base);
  __builtin_memset(&conn, 0, sizeof conn);
  conn.base = base;
  conn.cid = rd(base, 0x100) | ((uint64_t)rd(base, 0x104) << 32);
  conn.local_port = local_port;
  *cid = conn.cid;
  for (uint16_t i = 0; i < RX_BUFFERS; ++i) {
    rxq.desc[i] =
        (struct virtq_desc){(uint64_t)(uintptr_t)rxbuf[i], RX_BUFFER_SIZE, VIRTQ_DESC_F_WRITE, 0};
    publish(base, 0, &rxq, i);
  }
  for (uint16_t i = 0; i < EVENT_BUFFERS; ++i) {
    evq.desc[i] =
        (struct virtq_desc){(uint64_t)(uintptr_t)evbuf[i], VSOCK_EVENT_SIZE, VIRTQ_DESC_F_WRITE, 0};
    publish(base, 2, &evq, i);
  }
  return NULL;
}

const char* vsock_wait_event(uint32_t* event, uint64_t* cid) {
  uint32_t id, len;
  wait_used(&evq, &id, &len, 0);
  if (id >= EVENT_BUFFERS || len < VSOCK_EVENT_SIZE) return "malformed event completion";
  *event = (uint32_t)le_get(evbuf[id], 4);
  /* After a transport reset the CID may have changed (virtio 1.2 §5.10.6.8). */
  conn.cid = rd(conn.base, 0x100) | ((uint64_t)rd(conn.base, 0x104) << 32);
  *cid = conn.cid;
  publish(conn.base, 2, &evq, (uint16_t)id);
  return NULL;
}

static uint32_t vsock_available(void) {
  return conn.ring_in - conn.ring_out;
}

/* Polls until data is waiting or the host closed or reset the connection, at most `spins`
 * times per packet (0: for as long as it takes). */
static const char* vsock_wait_data_for(uint32_t spins) {
  const char* error = NULL;
  while (!error && vsock_available() == 0 && !conn.reset && !conn.peer_shutdown)
    error = vsock_poll(spins);
  return error;
}

static const char* vsock_wait_data(void) {
  return vsock_wait_data_for(WAIT_SPINS);
}

/* Moves up to `cap` received bytes to `out`; tells the host about the freed window once half of
 * it is free again. */
static const char* vsock_take(void* out, uint32_t cap, uint32_t* len) {
  uint8_t* o = out;
  uint32_t n = vsock_available() < cap ? vsock_available() : cap;
  for (uint32_t i = 0; i < n; ++i) o[i] = conn.ring[conn.ring_out++ % STREAM_BUFFER];
  *len = n;
  if (conn.connected && conn.ring_out - conn.fwd_cnt_sent >= STREAM_BUFFER / 2)
    return vsock_send(VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
  return NULL;
}

const char* vsock_listen(uint64_t base, uint32_t port, uint64_t* cid) {
  const char* error = vsock_init(base, port, cid);
  conn.listening = !error;
  return error;
}

const char* vsock_accept(uint32_t spins) {
  const char* error = NULL;
  while (!error && !conn.connected) error = vsock_poll(spins);
  return error;
}

const char* vsock_read_exact(void* buf, uint32_t len) {
  uint8_t* out = buf;
  for (uint32_t done = 0; done < len;) {
    const char* error = vsock_wait_data();
    if (error) return error;
    if (vsock_available() == 0) return "the host closed the connection early";
    uint32_t n;
    if ((error = vsock_take(out + done, len - done, &n))) return error;
    done += n;
  }
  return NULL;
}

/* How many packets the host may send while the guest waits for room in its window. */
#define CREDIT_WAIT_PACKETS 64

const char* vsock_write(const void* data, uint32_t len) {
  const uint8_t* p = data;
  uint32_t waited = 0;
  while (len > 0) {
    if (conn.reset || (conn.peer_shutdown & 1)) return "the host closed the connection";
    const uint32_t credit = conn.peer_buf_alloc - (conn.tx_cnt - conn.peer_fwd_cnt);
    const char* error;
    if (credit == 0 || credit > conn.peer_buf_alloc) { /* window full (or nonsense): ask */
      if (++waited > CREDIT_WAIT_PACKETS) return "the host's receive window stayed full";
      if ((error = vsock_send(VSOCK_OP_CREDIT_REQUEST, 0, NULL, 0))) return error;
      if ((error = vsock_poll(WAIT_SPINS))) return error;
      continue;
    }
    waited = 0;
    uint32_t n = len < credit ? len : credit;
    if (n > TX_MAX_PAYLOAD) n = TX_MAX_PAYLOAD;
    if ((error = vsock_send(VSOCK_OP_RW, 0, p, n))) return error;
    p += n;
    len -= n;
  }
  return NULL;
}

const char* vsock_close(void) {
  const char* error = vsock_send(VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_BOTH, NULL, 0);
  while (!error && !conn.reset && conn.peer_shutdown != VSOCK_SHUTDOWN_BOTH)
    error = vsock_poll(WAIT_SPINS);
  if (!error && !conn.reset) error = vsock_send(VSOCK_OP_RST, 0, NULL, 0);
  conn.connected = 0;
  return error;
}

const char* virtio_vsock_echo(uint64_t base, uint32_t port, const char* message, char* reply,
                              uint32_t cap, uint64_t* cid) {
  const char* error = vsock_init(base, VSOCK_GUEST_PORT, cid);
  if (error) return error;
  uint32_t message_len = 0, len;
  while (message[message_len]) ++message_len;
  conn.peer_port = port;
  conn.connecting = 1;
  if ((error = vsock_send(VSOCK_OP_REQUEST, 0, NULL, 0))) return error;
  if ((error = vsock_poll(WAIT_SPINS))) return error;
  if (conn.reset) return "the host refused the connection";
  if (!conn.connected) return "unexpected answer to the connection request";
  if ((error = vsock_write(message, message_len))) return error;
  if ((error = vsock_wait_data())) return error;
  if (vsock_available() == 0) return "the host closed the connection without answering";
  if ((error = vsock_take(reply, cap - 1, &len))) return error;
  reply[len] = 0;
  return vsock_send(VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_BOTH, NULL, 0);
}

const char* virtio_vsock_serve(char* received, uint32_t cap) {
  const char* error = vsock_accept(WAIT_SPINS);
  uint32_t len;
  if (!error) error = vsock_wait_data();
  if (error) return error;
  if (vsock_available() == 0) return "the host closed the connection without sending anything";
  if ((error = vsock_take(received, cap - 1, &len))) return error;
  received[len] = 0;
  static char answer[128];
  const char prefix[] = "echo: ";
  uint32_t n = 0;
  for (; prefix[n]; ++n) answer[n] = prefix[n];
  for (uint32_t i = 0; i < len && n < sizeof answer; ++i) answer[n++] = received[i];
  if ((error = vsock_write(answer, n))) return error;
  while (!error && !conn.reset && !conn.peer_shutdown) error = vsock_poll(WAIT_SPINS);
  if (error || conn.reset) return error;
  return vsock_send(VSOCK_OP_RST, 0, NULL, 0); /* the host closed: SHUTDOWN, answered with RST */
}

const char* virtio_vsock_echo_stream(uint64_t* echoed) {
  static uint8_t chunk[TX_MAX_PAYLOAD];
  const char* error = vsock_accept(0);
  *echoed = 0;
  while (!error) {
    if ((error = vsock_wait_data_for(0))) break;
    if (conn.reset) return "the host reset the connection";
    if (vsock_available() == 0) return vsock_close(); /* the host shut the stream down */
    uint32_t len;
    if ((error = vsock_take(chunk, sizeof chunk, &len))) break;
    for (uint32_t done = 0; done < len && !error;) {
      /* The host announces room it frees (CREDIT_UPDATE); until then only a packet can help. */
      const uint32_t credit = conn.peer_buf_alloc - (conn.tx_cnt - conn.peer_fwd_cnt);
      if (conn.reset) return "the host reset the connection";
      if (credit == 0 || credit > conn.peer_buf_alloc) {
        error = vsock_poll(0);
        continue;
      }
      const uint32_t n = len - done < credit ? len - done : credit;
      error = vsock_send(VSOCK_OP_RW, 0, chunk + done, n);
      done += n;
    }
    if (!error) *echoed += len;
  }
  return error;
}

/* ---- virtio-net ---- */
#define VIRTIO_NET_F_MAC (1u << 5)
#define NET_HDR 12 /* struct virtio_net_hdr with num_buffers (VERSION_1) */
#define NET_FRAME_MAX 1514
#define NET_ETHERTYPE 0x88b5 /* IEEE 802 local experimental */

static uint8_t net_rx_buf[NET_HDR + NET_FRAME_MAX];
static uint8_t net_tx_buf[NET_HDR + NET_FRAME_MAX];
static uint8_t net_mac[6]; /* the device's, else 02:00:00:00:00:01 */

static void net_post_rx(uint64_t base) {
  netrxq.desc[0] = (struct virtq_desc){(uint64_t)(uintptr_t)net_rx_buf, sizeof net_rx_buf,
                                       VIRTQ_DESC_F_WRITE, 0};
  publish(base, 0, &netrxq, 0);
}

const char* virtio_net_exchange(uint64_t base, const char* message, uint8_t mac[6], char* reply,
                                uint32_t cap) {
  uint32_t features = 0;
  const char* error = begin_with(base, VIRTIO_NET_F_MAC, &features);
  if (!error) error = setup_queue(base, 0, &netrxq);
  if (!error) error = setup_queue(base, 1, &nettxq);
  if (error) return error;
  net_mac[0] = 0x02;
  net_mac[5] = 0x01;
  if (features & VIRTIO_NET_F_MAC) {
    const uint32_t lo = rd(base, 0x100), hi = rd(base, 0x104);
    for (int i = 0; i < 4; ++i) net_mac[i] = (uint8_t)(lo >> (8 * i));
    net_mac[4] = (uint8_t)hi;
    net_mac[5] = (uint8_t)(hi >> 8);
  }
  for (int i = 0; i < 6; ++i) mac[i] = net_mac[i];
  driver_ok(base);
  net_post_rx(base);

  /* Broadcast, from our MAC, the local experimental EtherType, then the message. */
  uint8_t* frame = net_tx_buf + NET_HDR;
  for (int i = 0; i < NET_HDR; ++i) net_tx_buf[i] = 0;
  for (int i = 0; i < 6; ++i) {
    frame[i] = 0xff;
    frame[6 + i] = net_mac[i];
  }
  frame[12] = NET_ETHERTYPE >> 8;
  frame[13] = NET_ETHERTYPE & 0xff;
  uint32_t n = 0;
  while (message[n] && 14 + n < NET_FRAME_MAX) {
    frame[14 + n] = (uint8_t)message[n];
    ++n;
  }
  uint32_t len = 14 + n < 60 ? 60 : 14 + n; /* pad to Ethernet's minimum */
  for (uint32_t i = 14 + n; i < len; ++i) frame[i] = 0;
  nettxq.desc[0] = (struct virtq_desc){(uint64_t)(uintptr_t)net_tx_buf, NET_HDR + len, 0, 0};
  publish(base, 1, &nettxq, 0);
  uint32_t id, used;
  if (!wait_used(&nettxq, &id, &used, WAIT_SPINS)) return "the device did not take the frame";

  /* The host may send other frames first (IPv6 neighbour discovery when the TAP comes up):
   * skip them until one of ours arrives. */
  for (int frames = 0; frames < 64; ++frames) {
    int got = 0;
    for (int waits = 0; waits < 200 && !got; ++waits)
      got = wait_used(&netrxq, &id, &used, WAIT_SPINS);
    if (!got) return "no frame arrived";
    const uint8_t* in = net_rx_buf + NET_HDR;
    const uint32_t in_len = used > NET_HDR ? used - NET_HDR : 0;
    if (in_len >= 14 && in[12] == (NET_ETHERTYPE >> 8) && in[13] == (NET_ETHERTYPE & 0xff)) {
      uint32_t k = 0;
      while (14 + k < in_len && in[14 + k] && k + 1 < cap) {
        reply[k] = (char)in[14 + k];
        ++k;
      }
      reply[k] = 0;
      return NULL;
    }
    net_post_rx(base);
  }
  return "64 frames arrived, none of ours";
}
