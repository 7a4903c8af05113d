/* virtio-mmio (virtio 1.2 §4.2.2 register layout), a polled virtio-blk reader and a polled
 * virtio-vsock stream for the test guest. */
#pragma once
#include <stdint.h>

#define VIRTIO_MMIO_MAGIC 0x74726976u /* "virt" */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_VSOCK 19

/* Reads sector 0 of the virtio-blk device at `base` into `out` (512 bytes). Returns NULL on
 * success or a description of what went wrong. */
const char* virtio_blk_read_sector0(uint64_t base, uint8_t* out);

/* After virtio_blk_read_sector0: reads sector `sector` into `out` (512 bytes) with one more
 * request on the same queue. Returns NULL or what went wrong. */
const char* virtio_blk_read_sector(uint64_t base, uint64_t sector, uint8_t* out);

/* Connects the virtio-vsock device at `base` to host (CID 2) port `port`, sends `message`,
 * and copies the first data the host sends back into `reply` (NUL-terminated, at most
 * cap - 1 bytes); stores the guest CID in *cid. Returns NULL or what went wrong. */
const char* virtio_vsock_echo(uint64_t base, uint32_t port, const char* message, char* reply,
                              uint32_t cap, uint64_t* cid);

/* After vsock_listen: accepts one host-initiated connection, copies what the host sends first
 * into `received` (NUL-terminated), answers "echo: <it>", and waits for the host to close.
 * Returns NULL or what went wrong. */
const char* virtio_vsock_serve(char* received, uint32_t cap);

/* After vsock_listen: accepts one host-initiated connection and sends back every byte it
 * receives, waiting for as long as the host's window stays full, until the host closes the
 * connection (NULL) or resets it ("the host reset the connection"). Stores the bytes echoed in
 * *echoed. */
const char* virtio_vsock_echo_stream(uint64_t* echoed);

/* One vsock stream at a time, accepted from the host. Credit-based flow control both ways
 * (virtio 1.2 §5.10.6.3): the guest buffers up to 4 KiB it has not read yet and tells the host
 * when half of that is free again; it sends at most what the host's window allows, in packets of
 * up to 4 KiB. Every function returns NULL or what went wrong. */

/* Initializes the virtio-vsock device at `base` and listens on guest port `port`: a host
 * connection request that arrives from now on waits for vsock_accept, requests to other ports
 * are refused. Announce "listening" to the host only after this returns: the device reset it
 * does drops connections the host opened before. */
const char* vsock_listen(uint64_t base, uint32_t port, uint64_t* cid);

/* Waits for a host connection to the port vsock_listen opened, polling the rx queue at most
 * `spins` times per packet (0: waits for as long as it takes). */
const char* vsock_accept(uint32_t spins);

/* After vsock_listen: waits (for as long as it takes) for the device to use one of the event
 * buffers vsock_listen posted, stores the event's id in *event and the CID the device reports
 * afterwards in *cid, and posts the buffer again. */
const char* vsock_wait_event(uint32_t* event, uint64_t* cid);

/* Reads exactly `len` bytes of the stream. */
const char* vsock_read_exact(void* buf, uint32_t len);

/* Sends `len` bytes. */
const char* vsock_write(const void* data, uint32_t len);

/* Shuts the connection down both ways and waits for the host to close it. */
const char* vsock_close(void);

/* Brings up the virtio-net device at `base` (taking its MAC when it offers one), broadcasts one
 * Ethernet frame of EtherType 0x88b5 carrying `message`, and copies the payload of the first
 * 0x88b5 frame that arrives into `reply` (NUL-terminated, at most cap - 1 bytes), skipping
 * others. Stores the MAC used in mac. Returns NULL or what went wrong. */
const char* virtio_net_exchange(uint64_t base, const char* message, uint8_t mac[6], char* reply,
                                uint32_t cap);
