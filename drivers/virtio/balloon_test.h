/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the KUnit suites beside the driver share: a balloon whose virtio
 * device exists only in memory.
 */
#ifndef _VIRTIO_BALLOON_TEST_H
#define _VIRTIO_BALLOON_TEST_H

#include <kunit/test.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

#include "virtio_balloon_internal.h"

/* The first member of a suite's context: a balloon on a device in memory. */
struct vb_test_balloon {
	struct virtio_device vdev;
	struct vb_device *vb;
};

/*
 * Make the test's context, @size zeroed bytes that start with a struct
 * vb_test_balloon, whose balloon sits on a virtio 1.0 device (little-endian
 * on every guest); it becomes test->priv and is freed with the test. NULL if
 * there is no memory.
 */
static inline void *vb_test_context(struct kunit *test, size_t size)
{
	struct vb_test_balloon *tb = kunit_kzalloc(test, size, GFP_KERNEL);

	if (!tb)
		return NULL;
	tb->vb = kunit_kzalloc(test, sizeof(*tb->vb), GFP_KERNEL);
	if (!tb->vb)
		return NULL;
	tb->vdev.features = BIT_ULL(VIRTIO_F_VERSION_1);
	tb->vb->vdev = &tb->vdev;
	test->priv = tb;
	return tb;
}

#endif /* _VIRTIO_BALLOON_TEST_H */
