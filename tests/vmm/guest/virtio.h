/* virtio-mmio (virtio 1.2 §4.2.2 register layout) and a polled virtio-blk reader for the test
 * guest. */
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

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_VSOCK 19

/* Reads sector 0 of the virtio-blk device at `base` into `out` (512 bytes). Returns NULL on
 * success or a description of what went wrong. */
const char* virtio_blk_read_sector0(uint64_t base, uint8_t* out);

/* Connects the virtio-vsock device at `base` to host (CID 2) port `port`, sends `message`,
 * and copies the first data the host sends back into `reply` (NUL-terminated, at most
 * cap - 1 bytes); stores the guest CID in *cid. Returns NULL or what went wrong. */
const char* virtio_vsock_echo(uint64_t base, uint32_t port, const char* message, char* reply,
                              uint32_t cap, uint64_t* cid);

/* Accepts one host-initiated connection to guest port `port` on the virtio-vsock device at
 * `base`, copies what the host sends first into `received` (NUL-terminated), answers
 * "echo: <it>", and waits for the host to close. Returns NULL or what went wrong. */
const char* virtio_vsock_serve(uint64_t base, uint32_t port, char* received, uint32_t cap,
                               uint64_t* cid);
