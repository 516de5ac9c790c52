// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: deflate on OOM (VIRTIO_BALLOON_F_DEFLATE_ON_OOM).
 *
 * When the device allows it, the balloon gives pages back to a guest that is
 * about to kill a task for memory. The OOM notifier runs before the OOM killer
 * picks a victim; each call releases up to VB_OOM_PAGES, and the allocation
 * that ran out retries. Balloon pages stay in the guest's managed page count
 * under this feature, so the guest's view of its memory does not shrink.
 */

#include <linux/oom.h>
#include <linux/virtio_config.h>

#include "virtio_balloon_internal.h"

/* 4 KiB units returned per OOM notification: 1 MiB. */
#define VB_OOM_PAGES		256
/* Run before other OOM notifiers that free less precious memory. */
#define VB_OOM_PRIORITY		80

static int vb_oom_notify(struct notifier_block *nb, unsigned long unused,
			 void *parm)
{
	struct vb_device *vb = container_of(nb, struct vb_device, oom_nb);
	unsigned long *freed = parm;
	unsigned int n;

	n = vb_deflate(vb, VB_OOM_PAGES);
	if (n)
		vb_report_actual(vb);
	*freed += n / VB_PAGES_PER_PAGE;
	return NOTIFY_OK;
}

int vb_oom_init(struct vb_device *vb)
{
	if (!virtio_has_feature(vb->vdev, VIRTIO_BALLOON_F_DEFLATE_ON_OOM))
		return 0;
	vb->oom_nb.notifier_call = vb_oom_notify;
	vb->oom_nb.priority = VB_OOM_PRIORITY;
	return register_oom_notifier(&vb->oom_nb);
}

void vb_oom_exit(struct vb_device *vb)
{
	if (virtio_has_feature(vb->vdev, VIRTIO_BALLOON_F_DEFLATE_ON_OOM))
		unregister_oom_notifier(&vb->oom_nb);
}
