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

/*
 * A zeroed balloon on @vdev, which becomes a virtio 1.0 device (little-endian
 * on every guest); freed with the test. NULL if there is no memory.
 */
static inline struct vb_device *vb_test_device(struct kunit *test,
					       struct virtio_device *vdev)
{
	struct vb_device *vb = kunit_kzalloc(test, sizeof(*vb), GFP_KERNEL);

	if (!vb)
		return NULL;
	vdev->features = BIT_ULL(VIRTIO_F_VERSION_1);
	vb->vdev = vdev;
	return vb;
}

#endif /* _VIRTIO_BALLOON_TEST_H */
